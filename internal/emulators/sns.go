package emulators

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// SNS stands in for the SNS API, which no local server here serves. It
// decodes the SDK's real Publish request (the AWS Query protocol: a
// form-encoded POST of Action=Publish&Version=2010-03-31&TopicArn=...),
// checks it as SNS does, keeps every Publish it accepts and answers SNS's
// XML (a PublishResponse with a MessageId, or an ErrorResponse). It serves
// Publish only; any other action is answered with an error. Set Fail to
// answer every Publish with SNS's InternalError.
type SNS struct {
	Fail bool

	mu        sync.Mutex
	published []Publish
	bad       []string
	topics    map[string]bool
}

// Publish is a Publish request the stand-in accepted.
type Publish struct {
	TopicArn string
	Subject  string
	Message  string
	// MessageStructure is "json" when Message holds one message per
	// protocol, "" otherwise.
	MessageStructure  string
	MessageAttributes map[string]MessageAttribute
	// MessageID is the id the stand-in answered with.
	MessageID string
}

// MessageAttribute is one of a Publish's message attributes.
type MessageAttribute struct {
	DataType    string // String, Number, Binary or String.Array, with an optional ".custom" suffix
	StringValue string
	BinaryValue []byte
}

// SNSError is an error as SNS answers it: an HTTP status and an error code.
type SNSError struct {
	Status  int
	Code    string
	Message string
}

func (e *SNSError) Error() string { return "SNS " + e.Code + ": " + e.Message }

// The SNS API's version (the Version of every request) and the XML namespace
// of its answers, as the SDK's service model names them.
const (
	snsVersion   = "2010-03-31"
	snsNamespace = "http://sns.amazonaws.com/doc/2010-03-31/"
)

// Publish's limits (API reference, Publish): a message is "at most 256 KiB in
// size (262,144 bytes, not 262,144 characters)" by default, message and
// attributes counted together; a subject is "UTF-8 text with no line breaks
// or control characters, and less than 100 characters long".
const (
	maxMessageBytes = 262144
	maxSubjectRunes = 99
)

// IsSNS tells an SNS request from others at the shared endpoint: by the
// service its SigV4 signature is scoped to (Credential=AKID/date/region/sns/
// aws4_request), as every SDK signs SNS requests. The body is not looked at:
// the Query protocol's form (Content-Type application/x-www-form-urlencoded,
// Action=...) is also CloudFormation's, STS's and IAM's, and an S3 request
// may carry any body and Content-Type, so the form alone does not tell SNS
// apart, and reading it would consume the body of requests for other
// services. An unsigned request is not SNS's.
func IsSNS(r *http.Request) bool { return SigningService(r) == "sns" }

// SigningService is the service a SigV4 (or SigV4a) Authorization header's
// credential scope names, "" for an unsigned request.
func SigningService(r *http.Request) string {
	_, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential=")
	if !ok {
		return ""
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(strings.TrimSpace(cred), "/")
	// AKID/date/region/service/aws4_request (SigV4a: AKID/date/service/aws4_request)
	if len(parts) < 4 || parts[len(parts)-1] != "aws4_request" {
		return ""
	}
	return parts[len(parts)-2]
}

// CreateTopic makes topicARN a topic the stand-in knows. Once it knows one,
// a Publish to any other is answered as SNS answers a Publish to a topic that
// does not exist (404 NotFound); until then every topic ARN is taken.
func (s *SNS) CreateTopic(topicARN string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.topics == nil {
		s.topics = map[string]bool{}
	}
	s.topics[topicARN] = true
}

// Published returns the Publish requests accepted so far, in order.
func (s *SNS) Published() []Publish {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Publish(nil), s.published...)
}

// Malformed lists the requests answered with an error (other than Fail's),
// with why.
func (s *SNS) Malformed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.bad...)
}

func (s *SNS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	pub, err := s.publish(r)
	if err != nil {
		s.mu.Lock()
		s.bad = append(s.bad, err.Error())
		s.mu.Unlock()
		WriteSNSError(w, err.Status, err.Code, err.Message)
		return
	}
	if s.Fail {
		WriteSNSError(w, http.StatusInternalServerError, "InternalError", "stand-in told to fail")
		return
	}
	pub.MessageID = newUUID()
	s.mu.Lock()
	s.published = append(s.published, pub)
	s.mu.Unlock()
	requestID := newUUID()
	w.Header().Set("X-Amzn-Requestid", requestID)
	writeSNSXML(w, http.StatusOK, struct {
		XMLName   xml.Name `xml:"PublishResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		MessageID string   `xml:"PublishResult>MessageId"`
		RequestID string   `xml:"ResponseMetadata>RequestId"`
	}{Xmlns: snsNamespace, MessageID: pub.MessageID, RequestID: requestID})
}

func (s *SNS) publish(r *http.Request) (Publish, *SNSError) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return Publish{}, invalid("the request body could not be read: " + err.Error())
	}
	req, err := DecodeSNSRequest(r, body)
	if err != nil {
		return Publish{}, asSNSError(err)
	}
	if req.Action != "Publish" {
		return Publish{}, &SNSError{http.StatusBadRequest, "InvalidAction",
			"The local SNS stand-in serves Publish only, not " + req.Action + "."}
	}
	pub, err := DecodePublish(req)
	if err != nil {
		return Publish{}, asSNSError(err)
	}
	s.mu.Lock()
	unknown := s.topics != nil && !s.topics[pub.TopicArn]
	s.mu.Unlock()
	if unknown {
		return Publish{}, &SNSError{http.StatusNotFound, "NotFound", "Topic does not exist"}
	}
	return pub, nil
}

// SNSRequest is an SNS API request as SNS reads it: its action and its
// parameters, each given once.
type SNSRequest struct {
	Action string
	Params map[string]string
}

// DecodeSNSRequest reads an SNS request as the SDK sends it (the AWS Query
// protocol): a POST to / with the parameters form-encoded in the body, none
// in the URL, Version 2010-03-31 and an Action. A parameter given twice, or
// whose name is Action's or Version's but for its case, is refused: which
// one SNS would act on is not documented. Errors are *SNSError.
func DecodeSNSRequest(r *http.Request, body []byte) (SNSRequest, error) {
	if r.Method != http.MethodPost {
		return SNSRequest{}, invalid(fmt.Sprintf("a %s request: the SDK POSTs SNS requests", r.Method))
	}
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/x-www-form-urlencoded" {
		return SNSRequest{}, invalid(fmt.Sprintf("Content-Type %q, not application/x-www-form-urlencoded", r.Header.Get("Content-Type")))
	}
	if r.URL.Path != "/" || r.URL.RawQuery != "" {
		return SNSRequest{}, invalid(fmt.Sprintf("parameters in the URL (%s): the SDK sends them in the body only", r.URL.RequestURI()))
	}
	values, err := url.ParseQuery(string(body))
	if err != nil {
		return SNSRequest{}, invalid("the body is not a form: " + err.Error())
	}
	params := make(map[string]string, len(values))
	for name, vs := range values {
		if len(vs) > 1 {
			return SNSRequest{}, invalid(fmt.Sprintf("parameter %s is given %d times", name, len(vs)))
		}
		for _, known := range []string{"Action", "Version"} {
			if name != known && strings.EqualFold(name, known) {
				return SNSRequest{}, invalid(fmt.Sprintf("parameter %q is %s but for its case", name, known))
			}
		}
		params[name] = vs[0]
	}
	action, version := params["Action"], params["Version"]
	delete(params, "Action")
	delete(params, "Version")
	switch {
	case action == "":
		return SNSRequest{}, &SNSError{http.StatusBadRequest, "InvalidAction", "The request names no Action."}
	case version != snsVersion:
		return SNSRequest{}, &SNSError{http.StatusBadRequest, "InvalidAction",
			fmt.Sprintf("Could not find operation %s for version %q (SNS's API version is %s).", action, version, snsVersion)}
	}
	return SNSRequest{Action: action, Params: params}, nil
}

// publishParams are Publish's parameters, but its message attributes.
var publishParams = []string{"TopicArn", "TargetArn", "PhoneNumber", "Message", "Subject", "MessageStructure",
	"MessageDeduplicationId", "MessageGroupId"}

// attributeParam is one member of a message attribute entry, as the Query
// protocol flattens a map: MessageAttributes.entry.N.Name and
// MessageAttributes.entry.N.Value.DataType (StringValue, BinaryValue).
var attributeParam = regexp.MustCompile(`^MessageAttributes\.entry\.([1-9][0-9]{0,5})\.(Name|Value\.DataType|Value\.StringValue|Value\.BinaryValue)$`)

// PublishTopic is the topic a Publish request publishes to: its TopicArn,
// exactly as given. A request with another parameter whose name differs from
// one of Publish's only in case is refused (what SNS makes of it is not
// documented), as is one that publishes to an endpoint or a phone number
// (TargetArn, PhoneNumber), which the stand-in does not serve.
func (req SNSRequest) PublishTopic() (string, error) {
	for name := range req.Params {
		if slices.Contains(publishParams, name) || attributeParam.MatchString(name) {
			continue
		}
		for _, known := range publishParams {
			if strings.EqualFold(name, known) {
				return "", invalid(fmt.Sprintf("parameter %q is %s but for its case", name, known))
			}
		}
		if strings.HasPrefix(strings.ToLower(name), "messageattributes.") {
			return "", invalid(fmt.Sprintf("parameter %q is not a message attribute entry's member", name))
		}
		return "", invalid(fmt.Sprintf("Publish takes no parameter %q", name))
	}
	for _, other := range []string{"TargetArn", "PhoneNumber"} {
		if _, ok := req.Params[other]; ok {
			return "", invalid(other + " (the local SNS stand-in publishes to topics only)")
		}
	}
	topic, ok := req.Params["TopicArn"]
	if !ok {
		return "", invalid("TopicArn (Publish names no topic)")
	}
	return topic, nil
}

// DecodePublish reads a Publish request and checks it as SNS does: a topic
// ARN, a message that is not empty, valid UTF-8 and within 256 KiB with its
// attributes, a subject without control characters and under 100
// characters, well-formed message attributes. Errors are *SNSError.
func DecodePublish(req SNSRequest) (Publish, error) {
	if req.Action != "Publish" {
		return Publish{}, &SNSError{http.StatusBadRequest, "InvalidAction", "not a Publish request: " + req.Action}
	}
	topic, err := req.PublishTopic()
	if err != nil {
		return Publish{}, err
	}
	if !strings.HasPrefix(topic, "arn:") {
		return Publish{}, invalid(fmt.Sprintf("TopicArn Reason: %s does not start with arn", topic))
	}
	p := req.Params
	pub := Publish{TopicArn: topic, Subject: p["Subject"], Message: p["Message"], MessageStructure: p["MessageStructure"]}
	switch {
	case pub.Message == "":
		return Publish{}, invalid("Empty message")
	case !utf8.ValidString(pub.Message):
		return Publish{}, invalid("Message (not UTF-8)")
	}
	if _, ok := p["Subject"]; ok {
		if n := utf8.RuneCountInString(pub.Subject); n == 0 || n > maxSubjectRunes || !utf8.ValidString(pub.Subject) ||
			strings.ContainsFunc(pub.Subject, unicode.IsControl) {
			return Publish{}, invalid("Subject")
		}
	}
	switch pub.MessageStructure {
	case "":
	case "json":
		var m map[string]any
		if json.Unmarshal([]byte(pub.Message), &m) != nil {
			return Publish{}, invalid("Message Structure - JSON message body failed to parse")
		}
		if _, ok := m["default"].(string); !ok {
			return Publish{}, invalid("Message Structure - No default entry in JSON message body")
		}
	default:
		return Publish{}, invalid("MessageStructure")
	}
	// A FIFO topic's name ends in .fifo; only its messages have a group
	// (required) and a deduplication id (API reference, Publish).
	fifo := strings.HasSuffix(topic, ".fifo")
	if _, ok := p["MessageDeduplicationId"]; ok && !fifo {
		return Publish{}, invalid("MessageDeduplicationId (the topic is not a FIFO topic)")
	}
	if _, ok := p["MessageGroupId"]; !ok && fifo {
		return Publish{}, invalid("MessageGroupId (required for a FIFO topic)")
	}
	attrs, size, err := messageAttributes(p)
	if err != nil {
		return Publish{}, err
	}
	if len(attrs) > 0 {
		pub.MessageAttributes = attrs
	}
	if len(pub.Message)+size > maxMessageBytes {
		return Publish{}, invalid("Message too long")
	}
	return pub, nil
}

// messageAttributes gathers a Publish's message attributes from their flat
// parameters, and their size in bytes (names, types and values).
func messageAttributes(p map[string]string) (map[string]MessageAttribute, int, error) {
	type entry struct{ name, dataType, str, bin *string }
	entries := map[int]*entry{}
	for k, v := range p {
		m := attributeParam.FindStringSubmatch(k)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		e := entries[n]
		if e == nil {
			e = &entry{}
			entries[n] = e
		}
		switch m[2] {
		case "Name":
			e.name = &v
		case "Value.DataType":
			e.dataType = &v
		case "Value.StringValue":
			e.str = &v
		case "Value.BinaryValue":
			e.bin = &v
		}
	}
	nums := make([]int, 0, len(entries))
	for n := range entries {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	attrs := map[string]MessageAttribute{}
	size := 0
	for i, n := range nums {
		e := entries[n]
		if n != i+1 {
			return nil, 0, invalidValue(fmt.Sprintf("message attribute entries are numbered from 1 without gaps; entry %d follows %d", n, i))
		}
		if e.name == nil || *e.name == "" {
			return nil, 0, invalidValue(fmt.Sprintf("message attribute entry %d has no name", n))
		}
		name := *e.name
		if _, dup := attrs[name]; dup {
			return nil, 0, invalidValue(fmt.Sprintf("The message attribute '%s' is given twice.", name))
		}
		if e.dataType == nil || *e.dataType == "" {
			return nil, 0, invalidValue(fmt.Sprintf("The message attribute '%s' must contain non-empty message attribute type.", name))
		}
		a := MessageAttribute{DataType: *e.dataType}
		base, _, _ := strings.Cut(a.DataType, ".")
		if a.DataType == "String.Array" {
			base = "String.Array"
		}
		switch base {
		case "String", "Number", "String.Array":
			if e.str == nil || *e.str == "" || e.bin != nil {
				return nil, 0, invalidValue(fmt.Sprintf("The message attribute '%s' must contain non-empty message attribute value for message attribute type '%s'.", name, base))
			}
			a.StringValue = *e.str
			if base == "Number" {
				if _, err := strconv.ParseFloat(a.StringValue, 64); err != nil {
					return nil, 0, invalidValue(fmt.Sprintf("Could not cast message attribute '%s' value to number.", name))
				}
			}
			var list []any
			if base == "String.Array" && json.Unmarshal([]byte(a.StringValue), &list) != nil {
				return nil, 0, invalidValue(fmt.Sprintf("The message attribute '%s' is not a JSON array.", name))
			}
		case "Binary":
			if e.bin == nil || *e.bin == "" || e.str != nil {
				return nil, 0, invalidValue(fmt.Sprintf("The message attribute '%s' must contain non-empty message attribute value for message attribute type 'Binary'.", name))
			}
			b, err := base64.StdEncoding.DecodeString(*e.bin)
			if err != nil {
				return nil, 0, invalidValue(fmt.Sprintf("The message attribute '%s' has a BinaryValue that is not base64.", name))
			}
			a.BinaryValue = b
		default:
			return nil, 0, invalidValue(fmt.Sprintf("The message attribute '%s' has an invalid message attribute type, the set of supported type prefixes is Binary, Number, and String.", name))
		}
		attrs[name] = a
		size += len(name) + len(a.DataType) + len(a.StringValue) + len(a.BinaryValue)
	}
	return attrs, size, nil
}

// asSNSError is err as SNS answers it: InvalidParameter unless it says
// otherwise.
func asSNSError(err error) *SNSError {
	var e *SNSError
	if errors.As(err, &e) {
		return e
	}
	return invalid(err.Error())
}

// invalid is SNS's InvalidParameter ("Invalid parameter: <what>").
func invalid(what string) *SNSError {
	return &SNSError{http.StatusBadRequest, "InvalidParameter", "Invalid parameter: " + what}
}

// invalidValue is SNS's InvalidParameterValue, whose code is
// ParameterValueInvalid.
func invalidValue(msg string) *SNSError {
	return &SNSError{http.StatusBadRequest, "ParameterValueInvalid", msg}
}

// WriteSNSError answers with SNS's XML error (the Query protocol's
// ErrorResponse): Type is Sender for a 4xx status, Receiver for a 5xx.
func WriteSNSError(w http.ResponseWriter, status int, code, message string) {
	fault := "Sender"
	if status >= 500 {
		fault = "Receiver"
	}
	requestID := newUUID()
	w.Header().Set("X-Amzn-Requestid", requestID)
	writeSNSXML(w, status, struct {
		XMLName   xml.Name `xml:"ErrorResponse"`
		Xmlns     string   `xml:"xmlns,attr"`
		Type      string   `xml:"Error>Type"`
		Code      string   `xml:"Error>Code"`
		Message   string   `xml:"Error>Message"`
		RequestID string   `xml:"RequestId"`
	}{Xmlns: snsNamespace, Type: fault, Code: code, Message: message, RequestID: requestID})
}

func writeSNSXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(b)
}

// newUUID is a random (version 4) UUID, the form of SNS's message and
// request ids.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
