package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awss3"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Storage is the bucket of task data (tasks/), worker submissions and
// aggregated results (runs/); the layout is in shared/model.
type Storage struct {
	Bucket awss3.Bucket
}

// NewStorage creates the bucket: private, TLS only, encrypted at rest. A
// retained stage keeps object versions, as its tables keep point-in-time
// recovery.
func NewStorage(scope constructs.Construct, id string, stage Stage) *Storage {
	c := constructs.NewConstruct(scope, &id)
	// No BucketName: bucket names are global across accounts, so CloudFormation
	// derives a unique one from the stack name (arc-benchmark-<stage>).
	b := awss3.NewBucket(c, jsii.String("Bucket"), &awss3.BucketProps{
		BlockPublicAccess: awss3.BlockPublicAccess_BLOCK_ALL(),
		EnforceSSL:        jsii.Bool(true),
		MinimumTLSVersion: jsii.Number(1.2),
		Encryption:        awss3.BucketEncryption_S3_MANAGED,
		ObjectOwnership:   awss3.ObjectOwnership_BUCKET_OWNER_ENFORCED,
		Versioned:         jsii.Bool(!stage.Disposable),
		RemovalPolicy:     stage.RemovalPolicy(),
		AutoDeleteObjects: jsii.Bool(stage.Disposable),
	})
	suppress(b, "AwsSolutions-S1", "Only the stage's own roles read and write the bucket, and CloudTrail records their API calls; server access logs would need a second bucket per stage for no added audit value.")
	return &Storage{Bucket: b}
}
