package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// NotificationsProps are the stage and who reads its notifications.
type NotificationsProps struct {
	Stage Stage
	// Emails are subscribed by email (Settings.NotifyEmails); each address
	// gets a confirmation request from SNS and receives nothing until it
	// confirms.
	Emails []string
}

// Notifications is the stage's SNS topic, arc-benchmark-<stage>-runs: the
// stage's alarms notify it, and the complete handler and the run reaper
// publish "run ended" messages to it. It is encrypted with a key of its own
// (an AWS managed key's policy cannot let CloudWatch alarms publish) and
// refuses requests without TLS.
type Notifications struct {
	Topic awssns.Topic
	// Key encrypts the topic's messages at rest; a publisher needs
	// kms:GenerateDataKey* and kms:Decrypt on it (GrantPublish grants them).
	Key awskms.Key
}

// alarmNamePrefix starts the name of every alarm of the stage: alarms named
// so may publish to the stage's topic.
func alarmNamePrefix(stage Stage) string { return stage.Prefix() + "-" }

// NewNotifications creates the topic, its key and the email subscriptions.
func NewNotifications(scope constructs.Construct, id string, p NotificationsProps) *Notifications {
	c := constructs.NewConstruct(scope, &id)
	stack := awscdk.Stack_Of(c)
	key := awskms.NewKey(c, jsii.String("Key"), &awskms.KeyProps{
		Description:       jsii.String("Encrypts the notifications of " + p.Stage.Prefix() + " (topic " + p.Stage.PhysicalName("runs") + ")"),
		EnableKeyRotation: jsii.Bool(true),
		// SNS keeps no message once delivered, so nothing encrypted with the
		// key outlives the topic, which every stage deletes with its stack.
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
		PendingWindow: awscdk.Duration_Days(jsii.Number(7)),
	})
	topic := awssns.NewTopic(c, jsii.String("Topic"), &awssns.TopicProps{
		TopicName:   jsii.String(p.Stage.PhysicalName("runs")),
		DisplayName: jsii.String("arcbench " + p.Stage.Name),
		MasterKey:   key,
		EnforceSSL:  jsii.Bool(true),
	})

	// CloudWatch publishes an alarm's notification as its service principal:
	// the topic's policy (which replaces SNS's default policy) and the key's
	// must let it, for the stage's own alarms in this account only.
	cloudwatch := awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)
	alarms := stack.FormatArn(&awscdk.ArnComponents{
		Service:      jsii.String("cloudwatch"),
		Resource:     jsii.String("alarm"),
		ResourceName: jsii.String(alarmNamePrefix(p.Stage) + "*"),
		ArnFormat:    awscdk.ArnFormat_COLON_RESOURCE_NAME,
	})
	topic.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("StageAlarmsPublish"),
		Principals: &[]awsiam.IPrincipal{cloudwatch},
		Actions:    jsii.Strings("sns:Publish"),
		Resources:  jsii.Strings(*topic.TopicArn()),
		Conditions: &map[string]interface{}{
			"ArnLike":      map[string]interface{}{"aws:SourceArn": alarms},
			"StringEquals": map[string]interface{}{"aws:SourceAccount": stack.Account()},
		},
	}))
	// AWS documents this grant without conditions (SNS Developer Guide,
	// "Enable compatibility between event sources from AWS services and
	// encrypted topics"); the topic's policy above limits who may publish.
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchAlarmsUseTheKey"),
		Principals: &[]awsiam.IPrincipal{cloudwatch},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"),
	}), nil)

	for _, email := range p.Emails {
		topic.AddSubscription(awssnssubscriptions.NewEmailSubscription(jsii.String(email), nil))
	}
	return &Notifications{Topic: topic, Key: key}
}

// GrantPublish lets grantee publish to the topic: sns:Publish on it, and
// kms:Decrypt and kms:GenerateDataKey* on its key (what SNS asks of a
// publisher to an encrypted topic), with cdk-nag's finding on the action's
// wildcard suppressed on grantee's principal (its role), saying why.
func (n *Notifications) GrantPublish(grantee awsiam.IGrantable) awsiam.Grant {
	g := n.Topic.GrantPublish(grantee)
	if principal, ok := grantee.GrantPrincipal().(constructs.IConstruct); ok {
		suppress(principal, "AwsSolutions-IAM5", "Publishing to the encrypted notifications topic: SNS generates a data key from the topic's key "+
			"for each message (kms:GenerateDataKey*, SNS Developer Guide, key management), on that key only.",
			"Action::kms:GenerateDataKey*")
	}
	return g
}
