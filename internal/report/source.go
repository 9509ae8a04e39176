package report

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"arcbench/shared/clients"
	"arcbench/shared/store"
)

// ObjectGetter is the part of the S3 API a report reads with.
type ObjectGetter interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// StageSource reads a run from a stage's tables and bucket.
type StageSource struct {
	*store.Store
	S3     ObjectGetter
	Bucket string
}

var _ Source = StageSource{}

// maxObjectBytes bounds what a report reads of one task's data or submission.
const maxObjectBytes = 16 << 20

// Object reads one object of the bucket; nil when there is none.
func (s StageSource) Object(ctx context.Context, key string) ([]byte, error) {
	out, err := s.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
	if _, missing := clients.NoObject(err); missing {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", s.Bucket, key, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, maxObjectBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read s3://%s/%s: %w", s.Bucket, key, err)
	}
	if len(body) > maxObjectBytes {
		return nil, nil // not task-sized: shown as unreadable
	}
	return body, nil
}
