package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"arcbench/internal/cidiff"
)

func newCICmd() *cobra.Command {
	ci := &cobra.Command{Use: "ci", Short: "What the GitHub workflows run besides make: a pull request's checks on a stage's diff"}
	ci.AddCommand(newCIDataChangesCmd(), newCIDiffCommentCmd())
	return ci
}

func newCIDataChangesCmd() *cobra.Command {
	var deployed, synthesized string
	var allow bool
	cmd := &cobra.Command{
		Use:   "data-changes --deployed FILE --synthesized FILE [--allow]",
		Short: "Fail when deploying the synthesized template over the deployed one would delete or replace a table, the bucket or a retained resource",
		Long: `Compares a stage's deployed template (aws cloudformation get-template) with the one a change
synthesizes, and lists, one per line, every resource holding the stage's data (a DynamoDB table, an
S3 bucket, anything the template retains) that the deploy would delete or replace. Exits 1 when
there is one, unless --allow (the pull request's label says the change is meant).`,
		Example: `  aws cloudformation get-template --stack-name arc-benchmark-prod --query TemplateBody --output json > deployed.json
  arcbench ci data-changes --deployed deployed.json --synthesized cdk.out/arc-benchmark-prod.template.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			changes, err := dataChanges(deployed, synthesized)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			for _, c := range changes {
				fmt.Fprintln(cmd.OutOrStdout(), c)
			}
			if len(changes) > 0 && !allow {
				return &exitError{code: 1, err: fmt.Errorf("%d resources holding the stage's data would be deleted or replaced; label the pull request %q if that is meant", len(changes), cidiff.AllowLabel)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&deployed, "deployed", "", "the stage's deployed template (JSON); a missing file: the stage is not deployed yet")
	cmd.Flags().StringVar(&synthesized, "synthesized", "", "the template the change synthesizes")
	cmd.Flags().BoolVar(&allow, "allow", false, "report, but do not fail (the change is meant)")
	_ = cmd.MarkFlagRequired("synthesized")
	_ = cmd.MarkFlagRequired("deployed")
	return cmd
}

// dataChanges reads both templates; a stage never deployed changes nothing.
func dataChanges(deployed, synthesized string) ([]cidiff.Change, error) {
	before, err := os.ReadFile(deployed)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	after, err := os.ReadFile(synthesized)
	if err != nil {
		return nil, err
	}
	return cidiff.DataChanges(before, after)
}

func newCIDiffCommentCmd() *cobra.Command {
	var stage, sha, diffFile, deployed, synthesized string
	var allow bool
	cmd := &cobra.Command{
		Use:   "diff-comment --stage S --diff FILE --deployed FILE --synthesized FILE [--sha SHA] [--allow]",
		Short: "Print the pull request's comment for one stage: its data verdict and its cdk diff",
		Long: `Prints, as GitHub markdown, the comment the pull-request workflow keeps on the pull request for
one stage: whether the change deletes or replaces the stage's data (as data-changes decides), then the
cdk diff as cdk printed it. It opens with a marker naming the stage, by which the workflow finds the
comment to update in place instead of adding one per push.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			diff, err := os.ReadFile(diffFile)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			changes, err := dataChanges(deployed, synthesized)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			fmt.Fprint(cmd.OutOrStdout(), cidiff.Comment(stage, sha, string(diff), changes, allow))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&stage, "stage", "", "the stage diffed")
	f.StringVar(&sha, "sha", "", "the commit diffed")
	f.StringVar(&diffFile, "diff", "", "cdk diff's output")
	f.StringVar(&deployed, "deployed", "", "the stage's deployed template (JSON); a missing file: not deployed yet")
	f.StringVar(&synthesized, "synthesized", "", "the template the change synthesizes")
	f.BoolVar(&allow, "allow", false, "the pull request's label says a deletion or replacement is meant")
	for _, name := range []string{"stage", "diff", "deployed", "synthesized"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}
