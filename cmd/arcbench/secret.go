package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"arcbench/internal/localrun"
)

func newSecretTemplateCmd() *cobra.Command {
	var assembly string
	cmd := &cobra.Command{
		Use:   "secret-template --assembly DIR",
		Short: "Print the API-keys secret a stage's jobs read: a JSON object with a placeholder per provider key",
		Long: `secret-template reads the stage's synthesized template (the cloud assembly DIR) and
prints the JSON object its API-keys secret must hold: one key per variable the
job definition reads from it (the stage's providerKeys; the seven of the default
unless the stage names others), each with a placeholder to replace with the
provider's key, or with any text for a provider the stage does not use (a job
whose secret lacks one of its keys fails to start). make secret-template STAGE=S
synthesizes the stage and runs it.`,
		Example: `  make secret-template STAGE=prod > keys.json     # then edit keys.json
  aws secretsmanager create-secret --name arc-benchmark/api-keys --secret-string file://keys.json`,
		Args: cobra.NoArgs,
	}
	cmd.Flags().StringVar(&assembly, "assembly", "cdk.out", "the synthesized cloud assembly of the stage")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		tmpl, err := localrun.LoadAssembly(assembly)
		if err != nil {
			return &exitError{code: 1, err: fmt.Errorf("--assembly %s: %w (synthesize the stage first: make secret-template STAGE=...)", assembly, err)}
		}
		keys, err := localrun.JobSecrets(tmpl)
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		secret := map[string]string{}
		for _, k := range keys {
			secret[k] = "<" + strings.ToLower(k) + ">"
		}
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetEscapeHTML(false) // "<openai_api_key>", as a person types it
		enc.SetIndent("", "  ")
		return enc.Encode(secret)
	}
	return cmd
}
