package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"arcbench/internal/operator"
)

func newDeployCheckCmd() *cobra.Command {
	var assembly string
	cmd := &cobra.Command{
		Use:   "deploy-check --stage S --assembly DIR",
		Short: "Before a deploy: refuse one CloudFormation or Batch would fail (retained resources left over, the API-keys secret without its complete ARN)",
		Long: `deploy-check reads the stage's synthesized template (the cloud assembly DIR, as
cdk synth -o DIR writes it) and, with your AWS credentials, checks what
CloudFormation would trip over: when the stack does not exist yet, every
retained resource with a fixed name (tables, log groups) that is still there
from a destroyed copy of the stage; and a job definition that reads the
API-keys secret without its complete ARN. It prints one line and exits 0 when
the deploy can go ahead; otherwise it says what is in the way, how to clear
it, and exits 1. make deploy runs it before cdk deploy.`,
		Example: `  npx cdk synth -c stage=prod -c apiKeysSecretArn=arn:aws:secretsmanager:... -o cdk.out/deploy-prod --quiet
  arcbench deploy-check --stage prod --assembly cdk.out/deploy-prod`,
		Args: cobra.NoArgs,
	}
	stage := stageFlag(cmd)
	cmd.Flags().StringVar(&assembly, "assembly", "cdk.out", "the synthesized cloud assembly to check")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		check, err := operator.ConnectDeployCheck(cmd.Context())
		if err != nil {
			return userError(err)
		}
		line, err := check.Run(cmd.Context(), *stage, assembly)
		if err != nil {
			return userError(err)
		}
		fmt.Fprintln(cmd.OutOrStdout(), "deploy-check:", line)
		return nil
	}
	return cmd
}
