package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"arcbench/internal/localrun"
	"arcbench/shared/arcdata"
	"arcbench/shared/model"
)

func newLocalCmd() *cobra.Command {
	local := &cobra.Command{Use: "local", Short: "Run the whole flow on this machine, no AWS account needed"}
	local.AddCommand(newLocalRunCmd())
	return local
}

func newLocalRunCmd() *cobra.Command {
	var (
		opts      localrun.Options
		count     int
		tasksFile string
		verbose   bool
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Synthesize the app, start local emulators and run the state machine end to end",
		Long: `Synthesizes the CDK app for the stage "local" (or reads --assembly), starts dynalite and an
S3-compatible server on free 127.0.0.1 ports, creates the tables and the bucket from the template,
seeds ARC-style task data, and executes the template's state machine with aws-local-stepfunctions:
its Lambda states served in-process by the handlers, its Batch state by local worker processes.`,
		Example: `  arcbench local run --count 20
  arcbench local run --count 30 --fail-rate 0.3 --max-retries 2
  arcbench local run --tasks ids.txt --worker-cmd "python -m arc_worker"
  arcbench local run --keep`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := model.ValidateName("--config", opts.ConfigName); err != nil {
				return &exitError{code: 2, err: err}
			}
			if opts.FailRate < 0 || opts.FailRate > 1 {
				return &exitError{code: 2, err: fmt.Errorf("--fail-rate %v: want a share between 0 and 1", opts.FailRate)}
			}
			switch {
			case tasksFile != "":
				ids, err := readTaskFile(tasksFile)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				opts.TaskIDs = ids
			case count > 0:
				opts.TaskIDs = arcdata.IDs(count, opts.Seed)
			default:
				return &exitError{code: 2, err: fmt.Errorf("--count %d: want at least one task", count)}
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			opts.Self = self
			if verbose {
				opts.Log = cmd.ErrOrStderr()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return localRun(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), opts, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Assembly, "assembly", "", "read this cloud assembly (cdk.out) instead of synthesizing")
	f.StringVar(&opts.Stage, "stage", "local", "stage to synthesize")
	f.IntVar(&count, "count", 20, "number of generated tasks")
	f.StringVar(&tasksFile, "tasks", "", "file of task ids (one per line, or a JSON list) instead of --count")
	f.StringVar(&opts.ConfigName, "config", "baseline", "the run's config_name")
	f.StringVar(&opts.DataSource, "data-source", model.DefaultDataSource, "the run's data_source")
	f.Int64Var(&opts.Seed, "seed", 1, "seed of the generated task data and of the failure schedule")
	f.Float64Var(&opts.FailRate, "fail-rate", 0, "share of worker attempts that exit non-zero (built-in worker)")
	f.StringVar(&opts.WorkerCmd, "worker-cmd", "", "run this command (sh -c) as the worker instead of the built-in baseline")
	f.IntVar(&opts.MaxRetries, "max-retries", 0, "override MAX_RETRIES of the handlers and the worker (0: the template's)")
	f.IntVar(&opts.Parallel, "parallel", 8, "worker processes at once")
	f.StringVar(&opts.Dir, "dir", "", "folder for the bucket's files and the workers' logs (default .arcbench/local)")
	f.BoolVar(&opts.Keep, "keep", false, "leave the emulators running after the run and print their endpoints")
	f.BoolVarP(&verbose, "verbose", "v", false, "show the synthesizer's and the interpreter's output")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func readTaskFile(path string) ([]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--tasks: %w", err)
	}
	var ids []string
	if err := json.Unmarshal(raw, &ids); err != nil {
		sc := bufio.NewScanner(strings.NewReader(string(raw)))
		ids = nil
		for sc.Scan() {
			if id := strings.TrimSpace(sc.Text()); id != "" && !strings.HasPrefix(id, "#") {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("--tasks %s: no task ids in the file (one per line, or a JSON list)", path)
	}
	if err := model.ValidateTaskIDs("--tasks", ids); err != nil {
		return nil, err
	}
	return ids, nil
}

func localRun(ctx context.Context, stdout, stderr io.Writer, opts localrun.Options, asJSON bool) error {
	fmt.Fprintf(stderr, "arcbench local run: stage %s, %d tasks, fail rate %v\n", opts.Stage, len(opts.TaskIDs), opts.FailRate)
	var (
		mu         sync.Mutex
		bar        *progressbar.ProgressBar
		last, lost = -1, -1
	)
	opts.Progress = func(done, failed, total int) {
		mu.Lock()
		defer mu.Unlock()
		if done == last && failed == lost {
			return
		}
		last, lost = done, failed
		if bar == nil {
			bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(stderr), progressbar.OptionSetWidth(30),
				progressbar.OptionShowCount(), progressbar.OptionSetElapsedTime(true), progressbar.OptionSetPredictTime(true),
				progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionSetDescription("tasks"))
		}
		bar.Describe(fmt.Sprintf("tasks (%d failed)", failed))
		_ = bar.Set(done)
	}
	res, err := localrun.Run(ctx, opts)
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return err
	}
	if asJSON {
		b, _ := json.MarshalIndent(res, "", "  ")
		fmt.Fprintln(stdout, string(b))
	} else {
		printResult(stdout, res)
	}
	if res.Session != nil {
		defer res.Session.Close()
		ids := filepath.Join(res.Dir, "task-ids.txt")
		_ = os.WriteFile(ids, []byte(strings.Join(opts.TaskIDs, "\n")+"\n"), 0o644)
		fmt.Fprintf(stderr, `
The local stage %q stays up until Ctrl-C. In another shell:
  export AWS_ENDPOINT_URL=%s AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local ARCBENCH_STAGE=%s
  arcbench runs
  arcbench results %s
  arcbench start --config %s --tasks %s    # the seeded tasks; others have no data here
  aws dynamodb scan --table-name %s
Files of the bucket %s: %s
`, opts.Stage, res.Endpoint, opts.Stage, res.RunID, opts.ConfigName, ids, tableLike(res.Tables, "-runs"), res.Bucket, filepath.Join(res.Session.Stack.S3Dir, "buckets", res.Bucket))
		<-ctx.Done()
	}
	switch {
	case res.Status != "SUCCEEDED":
		return &exitError{code: 1, err: fmt.Errorf("execution %s: %s: %s", res.Status, res.Error, res.Cause)}
	case len(res.Violations) > 0:
		return &exitError{code: 1, err: fmt.Errorf("the Step Functions quotas were exceeded:\n  %s", strings.Join(res.Violations, "\n  "))}
	}
	return nil
}

func tableLike(tables []string, suffix string) string {
	for _, t := range tables {
		if strings.HasSuffix(t, suffix) {
			return t
		}
	}
	return ""
}

func printResult(w io.Writer, res *localrun.Result) {
	fmt.Fprintf(w, "Execution %s\n", res.Status)
	if len(res.Output) > 0 {
		var pretty bytes.Buffer
		if json.Indent(&pretty, res.Output, "", "  ") != nil {
			pretty.Write(res.Output)
		}
		fmt.Fprintf(w, "Complete:\n%s\n", pretty.String())
	}
	if res.AggregatedPath != "" {
		fmt.Fprintf(w, "aggregated.json: %s\n", res.AggregatedPath)
	}
	fmt.Fprintf(w, "Figures (quotas: %d bytes per payload, %d history events per execution):\n%s", localrun.MaxPayloadBytes, localrun.MaxHistory, res.Figures.String())
	fmt.Fprintf(w, "  wall time:        %.1fs\n", res.Wall.Seconds())
	for _, v := range res.Violations {
		fmt.Fprintf(w, "QUOTA EXCEEDED: %s\n", v)
	}
}
