package iam

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"arcbench/internal/emulators"
)

// Service names a request's wire protocol, for its access-denied answer.
type Service string

// The services whose requests the local endpoint serves and checks.
const (
	DynamoDB   Service = "dynamodb"
	S3         Service = "s3"
	CloudWatch Service = "cloudwatch"
	SNS        Service = "sns"
	// StepFunctions is the Step Functions API the local runner serves.
	StepFunctions Service = "states"
	Other         Service = ""
)

// Call is a classified HTTP request: who signed it and what it asks.
type Call struct {
	AccessKey string
	Region    string
	Service   Service
	Request
}

// AccessKey is the access key id of a SigV4-signed request ("" unsigned).
func AccessKey(r *http.Request) (key, region string) {
	auth := r.Header.Get("Authorization")
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return "", ""
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(cred, "/") // AKID/date/region/service/aws4_request
	if len(parts) < 3 {
		return parts[0], ""
	}
	return parts[0], parts[2]
}

// Classify tells what a request to the local endpoint asks for, as IAM
// sees it: its action, resources and condition keys. body is the request's
// body, already read. A request it cannot classify is an error naming it:
// the check never lets an unknown call through.
func Classify(r *http.Request, body []byte, account string) (Call, error) {
	key, region := AccessKey(r)
	c := Call{AccessKey: key, Region: region}
	switch {
	case strings.HasPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_"):
		c.Service = DynamoDB
		req, err := dynamoDB(r, body, "arn:aws:dynamodb:"+region+":"+account+":table/")
		c.Request = req
		return c, err
	case emulators.IsCloudWatch(r):
		c.Service = CloudWatch
		put, err := emulators.DecodePutMetricData(r, body)
		if err != nil {
			return c, err
		}
		// Namespace is required: without one, CloudWatch refuses the call,
		// and what its context would hold is unknown.
		if put.Namespace == "" {
			return c, errors.New("CloudWatch PutMetricData names no namespace")
		}
		c.Request = Request{Action: "cloudwatch:PutMetricData", Resources: []string{"*"},
			Context: map[string]string{"cloudwatch:namespace": put.Namespace}}
		return c, nil
	case strings.HasPrefix(r.Header.Get("X-Amz-Target"), stepFunctionsTarget):
		c.Service = StepFunctions
		req, err := stepFunctions(r, body)
		c.Request = req
		return c, err
	case emulators.IsSNS(r):
		c.Service = SNS
		req, err := snsRequest(r, body)
		c.Request = req
		return c, err
	case r.Header.Get("X-Amz-Target") == "" && !strings.Contains(r.Header.Get("Content-Type"), "x-amz-json"):
		c.Service = S3
		req, err := s3Request(r)
		c.Request = req
		return c, err
	}
	return c, fmt.Errorf("the local IAM check does not know the request %s %s (target %q)", r.Method, r.URL.Path, r.Header.Get("X-Amz-Target"))
}

// snsRequest classifies an SNS request (signed for sns): a Publish is
// sns:Publish on the topic its TopicArn names, exactly as given (the topic
// is Publish's one resource, Service Authorization Reference, Amazon SNS).
// The request is read as the SNS stand-in reads it (the Query protocol's
// form, each parameter once); any other action, a Publish to an endpoint or a
// phone number, or a request that cannot be read is refused. The Publish's
// other members (message, subject, attributes) are SNS's to check, after
// authorization: the stand-in answers them as SNS does.
func snsRequest(r *http.Request, body []byte) (Request, error) {
	req, err := emulators.DecodeSNSRequest(r, body)
	if err != nil {
		return Request{}, fmt.Errorf("an SNS request the local IAM check cannot read: %w", err)
	}
	if req.Action != "Publish" {
		return Request{}, fmt.Errorf("the local IAM check does not know SNS %s", req.Action)
	}
	topic, err := req.PublishTopic()
	if err != nil {
		return Request{}, fmt.Errorf("SNS Publish: %w", err)
	}
	return Request{Action: "sns:Publish", Resources: []string{topic}}, nil
}

// stepFunctionsTarget prefixes the X-Amz-Target of Step Functions' API.
const stepFunctionsTarget = "AWSStepFunctions."

// stepFunctions classifies the Step Functions calls the local runner serves
// (Service Authorization Reference, AWS Step Functions): StartExecution on
// the state machine, DescribeExecution and StopExecution on the execution,
// each ARN exactly as the request names it.
func stepFunctions(r *http.Request, body []byte) (Request, error) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), stepFunctionsTarget)
	var in struct {
		StateMachineArn string `json:"stateMachineArn"`
		ExecutionArn    string `json:"executionArn"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return Request{}, fmt.Errorf("a Step Functions %s request the local IAM check cannot read: %w", op, err)
	}
	resource := in.ExecutionArn
	switch op {
	case "StartExecution":
		resource = in.StateMachineArn
	case "DescribeExecution", "StopExecution":
	default:
		return Request{}, fmt.Errorf("the local IAM check does not know Step Functions %s", op)
	}
	if resource == "" {
		return Request{}, fmt.Errorf("a Step Functions %s request names no ARN", op)
	}
	return Request{Action: "states:" + op, Resources: []string{resource}}, nil
}

// dynamoDBTarget prefixes the X-Amz-Target of DynamoDB's current API
// version, the one the SDKs speak. dynalite also answers DynamoDB_20111205,
// whose requests are shaped otherwise: refused.
const dynamoDBTarget = "DynamoDB_20120810."

// dynamoDBResources is how an operation's request names what it acts on.
type dynamoDBResources int

const (
	inTableName  dynamoDBResources = iota // the table TableName names
	tableOrIndex                          // the index IndexName names, else the table (Query, Scan)
	inBatch                               // every table RequestItems names
	noResource                            // "*" (ListTables)
)

// dynamoDBOperations are the operations the check classifies: those dynalite
// serves whose resources the request's top-level members name (its
// TagResource, UntagResource and ListTagsOfResource take an ARN, and are not
// needed), with the members each reads. dynalite drops the members an
// operation does not take, so IndexName counts for Query and Scan only, and
// RequestItems for the batch operations only.
var dynamoDBOperations = map[string]dynamoDBResources{
	"GetItem": inTableName, "PutItem": inTableName, "UpdateItem": inTableName, "DeleteItem": inTableName,
	"Query": tableOrIndex, "Scan": tableOrIndex,
	"BatchGetItem": inBatch, "BatchWriteItem": inBatch,
	"CreateTable": inTableName, "DescribeTable": inTableName, "UpdateTable": inTableName, "DeleteTable": inTableName,
	"DescribeTimeToLive": inTableName,
	"ListTables":         noResource,
}

// dynamoDBMembers are the members the classifier reads.
var dynamoDBMembers = []string{"TableName", "IndexName", "RequestItems"}

// dynamoDBName is a table or index name as DynamoDB allows it (Developer
// Guide, "Supported data types and naming rules": "Table names and index
// names must be between 3 and 255 characters long, and can contain only the
// following characters: a-z A-Z 0-9 _ (underscore) - (dash) . (dot)"). Any
// other (an ARN, which DynamoDB now takes as TableName and dynalite does not,
// a name with a slash that would read as an index) is refused, not guessed.
var dynamoDBName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)

// dynamoDB classifies a DynamoDB JSON request: dynamodb:<Operation> on the
// table (or index) it names; a batch names every table it touches. The
// members are read as DynamoDB and dynalite read them: by their exact names
// ("All names must be encoded using UTF-8, and are case-sensitive", same
// page), where encoding/json would also take "tablename" for TableName and
// keep the last of two. What DynamoDB does with a member given twice, or
// with a case variant of one it reads, is not documented (dynalite's
// JSON.parse keeps the last duplicate and drops the variant): such a body is
// refused.
func dynamoDB(r *http.Request, body []byte, tableARN string) (Request, error) {
	targets := r.Header.Values("X-Amz-Target")
	if len(targets) != 1 {
		return Request{}, fmt.Errorf("a DynamoDB request with %d X-Amz-Target headers", len(targets))
	}
	op, ok := strings.CutPrefix(targets[0], dynamoDBTarget)
	shape, known := dynamoDBOperations[op]
	if !ok || !known {
		return Request{}, fmt.Errorf("the local IAM check does not know DynamoDB %s", targets[0])
	}
	members, err := jsonObject(body)
	if err != nil {
		return Request{}, fmt.Errorf("DynamoDB %s: %w", op, err)
	}
	for name := range members {
		for _, m := range dynamoDBMembers {
			if name != m && strings.EqualFold(name, m) {
				return Request{}, fmt.Errorf("DynamoDB %s: member %q is %s but for its case", op, name, m)
			}
		}
	}
	name := func(member string) (string, error) {
		var s string
		raw, ok := members[member]
		if !ok || string(raw) == "null" {
			return "", nil
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("DynamoDB %s: %s is not a string", op, member)
		}
		if !dynamoDBName.MatchString(s) {
			return "", fmt.Errorf("DynamoDB %s: %s %q is not a table or index name", op, member, s)
		}
		return s, nil
	}
	req := Request{Action: "dynamodb:" + op}
	switch shape {
	case noResource:
		req.Resources = []string{"*"}
		return req, nil
	case inBatch:
		raw, ok := members["RequestItems"]
		if !ok {
			return Request{}, fmt.Errorf("DynamoDB %s has no RequestItems", op)
		}
		items, err := jsonObject(raw)
		if err != nil {
			return Request{}, fmt.Errorf("DynamoDB %s RequestItems: %w", op, err)
		}
		for table := range items {
			if !dynamoDBName.MatchString(table) {
				return Request{}, fmt.Errorf("DynamoDB %s: RequestItems names %q, not a table name", op, table)
			}
			req.Resources = append(req.Resources, tableARN+table)
		}
		if len(req.Resources) == 0 {
			return Request{}, fmt.Errorf("DynamoDB %s names no table", op)
		}
		sort.Strings(req.Resources)
		return req, nil
	}
	table, err := name("TableName")
	if err != nil {
		return Request{}, err
	}
	if table == "" {
		return Request{}, fmt.Errorf("DynamoDB %s names no table", op)
	}
	req.Resources = []string{tableARN + table}
	if shape == tableOrIndex {
		index, err := name("IndexName")
		if err != nil {
			return Request{}, err
		}
		if index != "" {
			req.Resources = []string{tableARN + table + "/index/" + index}
		}
	}
	return req, nil
}

// jsonObject reads a JSON object's members, refusing one given twice (and
// anything but one object).
func jsonObject(body []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("the body is not a JSON object")
	}
	out := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("member %q is given twice", key)
		}
		out[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return out, nil
}

// s3Request classifies a path-style S3 REST request (/bucket/key?query).
// The bucket and key are those the local S3 server acts on: gofakes3 splits
// the decoded path (r.URL.Path) at its first slash, and so does the check.
//
// The request context holds s3:prefix, the listing's prefix, in a ListBucket
// that names one (IAM User Guide, "Condition operators", of its ListBucket
// example: "The policy allows the specified actions on an S3 bucket as long
// as the s3:prefix matches any one of the specified patterns."). A request
// on an object has no such key ("Many condition keys describe
// information about a certain type of resource and only exist when
// accessing that type of resource", User Guide, "Condition operators"). For
// the other requests on a bucket (a ListBucket without a prefix, or with two:
// absent, empty, which one?) the guide does not say, and s3:prefix is
// Unknown.
func s3Request(r *http.Request) (Request, error) {
	path := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ := strings.Cut(path, "/")
	if err := s3Names(r, bucket, key); err != nil {
		return Request{}, err
	}
	q := r.URL.Query()
	q.Del("x-id") // the Go SDK names its operation there; S3 ignores it
	req, err := s3Action(r, q, bucket, key)
	if err != nil || key != "" || bucket == "" {
		return req, err
	}
	if req.Action == "s3:ListBucket" && r.Method == http.MethodGet && len(q["prefix"]) == 1 {
		req.Context = map[string]string{"s3:prefix": q.Get("prefix")}
	} else {
		req.Unknown = []string{"s3:prefix"}
	}
	return req, nil
}

// s3Action names an S3 request's action and resource.
func s3Action(r *http.Request, q url.Values, bucket, key string) (Request, error) {
	object := "arn:aws:s3:::" + bucket + "/" + key
	bucketARN := "arn:aws:s3:::" + bucket
	one := func(action, res string) (Request, error) {
		return Request{Action: "s3:" + action, Resources: []string{res}}, nil
	}
	switch {
	case bucket == "":
		if r.Method == http.MethodGet {
			return one("ListAllMyBuckets", "*")
		}
	case key == "":
		switch r.Method {
		case http.MethodGet:
			switch {
			case q.Has("uploads"):
				return one("ListBucketMultipartUploads", bucketARN)
			case q.Has("location"):
				return one("GetBucketLocation", bucketARN)
			case q.Has("versions"):
				return one("ListBucketVersions", bucketARN)
			case len(q) == 0 || q.Has("list-type") || q.Has("prefix") || q.Has("delimiter") || q.Has("marker") || q.Has("max-keys"):
				return one("ListBucket", bucketARN)
			}
		case http.MethodHead:
			return one("ListBucket", bucketARN)
		case http.MethodPut:
			if len(q) == 0 {
				return one("CreateBucket", bucketARN)
			}
		case http.MethodDelete:
			if len(q) == 0 {
				return one("DeleteBucket", bucketARN)
			}
		}
	default:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			if q.Has("uploadId") {
				return one("ListMultipartUploadParts", object)
			}
			if len(q) == 0 || q.Has("partNumber") || q.Has("versionId") {
				return one("GetObject", object)
			}
		case http.MethodPut:
			if r.Header.Get("X-Amz-Copy-Source") != "" {
				break // a copy is two actions (read one object, write another): not needed, not checked
			}
			if len(q) == 0 || q.Has("uploadId") {
				return one("PutObject", object)
			}
		case http.MethodPost:
			if q.Has("uploads") || q.Has("uploadId") {
				return one("PutObject", object)
			}
		case http.MethodDelete:
			if q.Has("uploadId") {
				return one("AbortMultipartUpload", object)
			}
			if len(q) == 0 {
				return one("DeleteObject", object)
			}
		}
	}
	return Request{}, fmt.Errorf("the local IAM check does not know the S3 request %s %s?%s", r.Method, r.URL.EscapedPath(), r.URL.RawQuery)
}

// s3Names refuses a request whose bucket or key the local S3 server would not
// keep as S3 keeps it. S3 keys are flat names (User Guide, "Naming Amazon S3
// objects": "The Amazon S3 data model is a flat structure: You create a
// bucket, and the bucket stores objects. There is no hierarchy of subbuckets
// or subfolders."), so S3 stores runs/x/../../tasks/t.json as written, while
// the local server's folder backend joins the key into a file path, which
// resolves "." and ".." segments and empty ones ("//", a leading or trailing
// slash): the key the check would authorize is not the object written. The
// key is checked decoded, as the server reads it, so %2e%2e and %2F count as
// the dots and slashes they decode to. An encoded slash in the bucket segment
// (/bkt%2Fkey) is refused too: the server reads it as a bucket and a key,
// S3 as one (invalid) bucket name.
func s3Names(r *http.Request, bucket, key string) error {
	rawBucket, _, _ := strings.Cut(strings.TrimPrefix(r.URL.EscapedPath(), "/"), "/")
	if b, err := url.PathUnescape(rawBucket); err != nil || b != bucket {
		return fmt.Errorf("S3 request %s %s: its bucket segment %q is not a bucket name the local S3 server reads as S3 does", r.Method, r.URL.EscapedPath(), rawBucket)
	}
	if bucket == "." || bucket == ".." {
		return fmt.Errorf("S3 request %s %s: bucket %q", r.Method, r.URL.EscapedPath(), bucket)
	}
	if bucket == "" && key != "" {
		return fmt.Errorf("S3 request %s %s: key %q in no bucket", r.Method, r.URL.EscapedPath(), key)
	}
	if key == "" {
		return nil
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("S3 key %q (bucket %s) has a %q segment, which S3 keeps as written and the local S3 server would resolve: the local IAM check refuses it", key, bucket, seg)
		}
	}
	return nil
}
