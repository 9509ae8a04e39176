package iam

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
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
	Other      Service = ""
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
		c.Request = Request{Action: "cloudwatch:PutMetricData", Resources: []string{"*"},
			Context: map[string]string{"cloudwatch:namespace": put.Namespace}}
		return c, nil
	case r.Header.Get("X-Amz-Target") == "" && !strings.Contains(r.Header.Get("Content-Type"), "x-amz-json"):
		c.Service = S3
		req, err := s3Request(r)
		c.Request = req
		return c, err
	}
	return c, fmt.Errorf("the local IAM check does not know the request %s %s (target %q)", r.Method, r.URL.Path, r.Header.Get("X-Amz-Target"))
}

// dynamoDB classifies a DynamoDB JSON request: dynamodb:<Operation> on the
// table (or index) it names; a batch names every table it touches.
func dynamoDB(r *http.Request, body []byte, tableARN string) (Request, error) {
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "DynamoDB_20120810.")
	var in struct {
		TableName    string
		IndexName    string
		RequestItems map[string]json.RawMessage
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return Request{}, fmt.Errorf("DynamoDB %s: %w", op, err)
	}
	req := Request{Action: "dynamodb:" + op}
	switch {
	case strings.HasPrefix(op, "Transact"), op == "ExecuteStatement", op == "BatchExecuteStatement", op == "ExecuteTransaction":
		return Request{}, fmt.Errorf("the local IAM check does not know DynamoDB %s (its resources are inside the items)", op)
	case in.RequestItems != nil:
		for table := range in.RequestItems {
			req.Resources = append(req.Resources, tableARN+table)
		}
	case op == "ListTables":
		req.Resources = []string{"*"}
	case in.TableName == "":
		return Request{}, fmt.Errorf("DynamoDB %s names no table", op)
	case in.IndexName != "":
		req.Resources = []string{tableARN + in.TableName + "/index/" + in.IndexName}
	default:
		req.Resources = []string{tableARN + in.TableName}
	}
	return req, nil
}

// s3Request classifies a path-style S3 REST request (/bucket/key?query).
func s3Request(r *http.Request) (Request, error) {
	path := strings.TrimPrefix(r.URL.EscapedPath(), "/")
	bucket, key, _ := strings.Cut(path, "/")
	if k, err := url.PathUnescape(key); err == nil {
		key = k
	}
	q := r.URL.Query()
	q.Del("x-id") // the Go SDK names its operation there; S3 ignores it
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
	return Request{}, fmt.Errorf("the local IAM check does not know the S3 request %s /%s?%s", r.Method, path, r.URL.RawQuery)
}
