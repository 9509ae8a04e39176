package clients

import (
	"errors"

	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// NoObject tells whether an S3 read failed because its object is not there,
// as far as the caller can tell, and how S3 said so: NoSuchKey, or
// AccessDenied, which S3 answers for a missing key to a caller without
// s3:ListBucket on the bucket (no role of the stage has it).
func NoObject(err error) (why string, ok bool) {
	var noKey *s3types.NoSuchKey
	var api smithy.APIError
	switch {
	case errors.As(err, &noKey):
		return "does not exist", true
	case errors.As(err, &api) && api.ErrorCode() == "AccessDenied":
		return "does not exist or may not be read (S3 answered AccessDenied)", true
	}
	return "", false
}
