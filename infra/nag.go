package main

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// suppress accepts cdk-nag's finding rule on c and its children, for the
// findings listed in appliesTo (strings, or cdknag.RegexAppliesTo), with the
// reason a reviewer reads.
func suppress(c constructs.IConstruct, rule, reason string, appliesTo ...interface{}) {
	s := &cdknag.NagPackSuppression{Id: jsii.String(rule), Reason: jsii.String(reason)}
	if len(appliesTo) > 0 {
		s.AppliesTo = &appliesTo
	}
	cdknag.NagSuppressions_AddResourceSuppressions(c, &[]*cdknag.NagPackSuppression{s}, jsii.Bool(true))
}

// nagRef is how cdk-nag writes a Ref to c's resource in a finding: <LogicalId>.
func nagRef(c constructs.IConstruct) string {
	cfn := c.Node().DefaultChild().(awscdk.CfnElement)
	return "<" + *awscdk.Stack_Of(c).GetLogicalId(cfn) + ">"
}

// nagArn is how cdk-nag writes the Arn attribute of c's resource in a
// finding: <LogicalId.Arn>.
func nagArn(c constructs.IConstruct) string {
	cfn := c.Node().DefaultChild().(awscdk.CfnElement)
	return "<" + *awscdk.Stack_Of(c).GetLogicalId(cfn) + ".Arn>"
}
