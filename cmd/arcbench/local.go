package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"arcbench/internal/iam"
	"arcbench/internal/localrun"
	"arcbench/internal/operator"
	"arcbench/shared/arcdata"
	"arcbench/shared/model"
	"arcbench/shared/worker"
)

func newLocalCmd() *cobra.Command {
	local := &cobra.Command{Use: "local", Short: "Run the whole flow on this machine, no AWS account needed"}
	local.AddCommand(newLocalRunCmd())
	local.AddCommand(&cobra.Command{
		Use:    "watchdog",
		Short:  "Kill the process groups a local run names on stdin once stdin ends (started by local run itself)",
		Hidden: true,
		Args:   cobra.NoArgs,
		Run:    func(*cobra.Command, []string) { localrun.Watchdog(os.Stdin) },
	})
	local.AddCommand(&cobra.Command{
		Use:   "job [--control-fd=N] [--] PATH ARGV0 [ARGS...]",
		Short: "Run a local Batch job's worker and, when it ends, kill every process it started (started by local run itself)",
		// The worker's arguments are its own (sh -c ...), not flags.
		DisableFlagParsing: true,
		Hidden:             true,
		Run:                func(_ *cobra.Command, args []string) { os.Exit(localrun.JobInit(args)) },
	})
	return local
}

func newLocalRunCmd() *cobra.Command {
	var (
		opts          localrun.Options
		count         int
		tasksFile     string
		dataDir       string
		faults        []string
		workerEnv     []string
		workerVersion string
		verbose       bool
		asJSON        bool
		guards        func() (operator.Guards, error)
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Synthesize the app, start local emulators and run the state machine end to end",
		Long: `Synthesizes the CDK app for the stage "local" (or reads --assembly), starts dynalite and an
S3-compatible server on free 127.0.0.1 ports, creates the tables and the bucket from the template,
seeds task data (generated ARC-style tasks, or the ARC task files of --data-dir), and executes the
template's state machine with aws-local-stepfunctions: its Lambda states served in-process by the
handlers, its Batch state by local worker processes. It exits non-zero when the execution fails or
the run ends FAILED, and prints the run's final status last.

Each job is held to the job definition's attempt timeout as Batch holds it (--job-timeout overrides
it): at the limit its worker's processes get SIGTERM, and SIGKILL 30 s later if still running; the
job then fails ("Job attempt duration exceeded timeout") whatever its exit code, and Batch does not
retry it. --fault, --fail-rate and --worker-version drive the built-in worker only.`,
		Example: `  arcbench local run --count 20
  arcbench local run --count 30 --fail-rate 0.3 --max-retries 2
  arcbench local run --data-dir ARC-AGI-2/data/evaluation --count 12 --report
  arcbench local run --count 5 --fault '*:1=die-after-claim' --fault 'abcd0123:2=complete-then-die'
  arcbench local run --count 3 --fault '*:1=hang' --job-timeout 5s    # each job stopped at its time limit: the worker saves what it answered
  arcbench local run --count 10 --fault '*:*=no-answer' --worker-version pr78
  arcbench local run --data-dir DIR --budget-usd 0.5       # stopped once the model cost recorded reaches $0.50
  arcbench local run --count 40 --fault '*:*=no-answer' --stop-after-failures 5   # stops itself after 5 failures in a row
  OPENAI_BASE_URL=http://127.0.0.1:8000/v1 arcbench local run --data-dir DIR \
      --config gpt-4o-2024-11-20 --worker-cmd "exec python -m arc_agi_benchmarking.batch_worker"
  arcbench local run --data-dir DIR --config claude-opus-4-5-20251101-thinking-32k \
      --worker-cmd "exec python -m arc_agi_benchmarking.batch_worker"    # with ANTHROPIC_API_KEY set
  arcbench local run --keep`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := model.ValidateName("--config", opts.ConfigName); err != nil {
				return &exitError{code: 2, err: err}
			}
			if opts.FailRate < 0 || opts.FailRate > 1 {
				return &exitError{code: 2, err: fmt.Errorf("--fail-rate %v: want a share between 0 and 1", opts.FailRate)}
			}
			if count <= 0 {
				return &exitError{code: 2, err: fmt.Errorf("--count %d: want at least one task", count)}
			}
			switch {
			case opts.MaxRetries < 0:
				return &exitError{code: 2, err: fmt.Errorf("--max-retries %d: want 1 or more (0: the template's)", opts.MaxRetries)}
			case opts.Parallel < 1:
				return &exitError{code: 2, err: fmt.Errorf("--parallel %d: want at least one worker process", opts.Parallel)}
			}
			if err := builtInOnly(cmd, opts.WorkerCmd); err != nil {
				return &exitError{code: 2, err: err}
			}
			if workerVersion != "" && !slices.Contains(worker.Versions, worker.Version(workerVersion)) {
				return &exitError{code: 2, err: fmt.Errorf("--worker-version %q: want one of %s", workerVersion, versionList())}
			}
			opts.WorkerVersion = workerVersion
			if opts.JobTimeout < 0 {
				return &exitError{code: 2, err: fmt.Errorf("--job-timeout %s: want a positive duration, or 0 for the job definition's", opts.JobTimeout)}
			}
			var err error
			if opts.Guards, err = guards(); err != nil {
				return err
			}
			if opts.TaskIDs, opts.TaskData, err = chooseTasks(dataDir, tasksFile, count, cmd.Flags().Changed("count"), opts.Seed); err != nil {
				return &exitError{code: 2, err: err}
			}
			if opts.Faults, err = faultSpec(faults); err != nil {
				return &exitError{code: 2, err: err}
			}
			if opts.WorkerEnv, err = envPairs(workerEnv); err != nil {
				return &exitError{code: 2, err: err}
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
	guards = guardFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&opts.Assembly, "assembly", "", "read this cloud assembly (cdk.out) instead of synthesizing")
	f.StringVar(&opts.Stage, "stage", "local", "stage to synthesize")
	f.IntVar(&count, "count", 20, "number of generated tasks (with --data-dir: the first N task files by id; default all)")
	f.StringVar(&tasksFile, "tasks", "", "file of task ids (one per line, or a JSON list) instead of --count")
	f.StringVar(&dataDir, "data-dir", "", "seed the bucket from this folder of ARC task files (<task_id>.json) instead of generated tasks")
	f.StringArrayVar(&faults, "fault", nil, "make the built-in worker misbehave: TASK:ATTEMPT=MODE (TASK or ATTEMPT may be *; modes: "+modeList()+"); repeat for more")
	f.StringArrayVar(&workerEnv, "worker-env", nil, "KEY=VALUE added to every worker's environment (repeat for more)")
	f.StringVar(&opts.ConfigName, "config", "baseline", "the run's config_name")
	f.StringVar(&opts.DataSource, "data-source", model.DefaultDataSource, "the run's data_source")
	f.Int64Var(&opts.Seed, "seed", 1, "seed of the generated task data and of the failure schedule")
	f.Float64Var(&opts.FailRate, "fail-rate", 0, "share of worker attempts that fail through the built-in worker's own failure path (exit 1)")
	f.StringVar(&opts.WorkerCmd, "worker-cmd", "", "run this command (sh -c) as the worker instead of the built-in baseline (start it with exec, so that it gets the SIGTERM of a job's time limit)")
	f.StringVar(&workerVersion, "worker-version", "", "which benchmark worker version the built-in worker counts on the run record as: "+versionList()+" (default pr77)")
	f.DurationVar(&opts.JobTimeout, "job-timeout", 0, "stop each job's worker after this long, as Batch does at the job definition's attempt timeout (0: the template's; AWS's minimum is 60s, any length goes locally)")
	f.IntVar(&opts.MaxRetries, "max-retries", 0, "override MAX_RETRIES of the handlers and the worker (0: the template's)")
	f.IntVar(&opts.Parallel, "parallel", 8, "worker processes at once")
	f.StringVar(&opts.Dir, "dir", "", "folder for the bucket's files and the workers' logs (default .arcbench/local)")
	f.BoolVar(&opts.Keep, "keep", false, "leave the emulators running after the run and print their endpoints")
	f.BoolVar(&opts.NoIAM, "no-iam", false, "do not check requests against the template's IAM policies")
	f.BoolVar(&opts.Report, "report", false, "write the run's report page (HTML) beside aggregated.json")
	f.BoolVarP(&verbose, "verbose", "v", false, "show the synthesizer's and the interpreter's output")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// chooseTasks picks the run's tasks: from the ARC task files of dataDir
// (all of them by id, the first count, or those tasksFile names), or
// generated ids (tasksFile's, or count of them).
func chooseTasks(dataDir, tasksFile string, count int, countSet bool, seed int64) ([]string, map[string][]byte, error) {
	if dataDir == "" {
		if tasksFile != "" {
			ids, err := readTaskFile(tasksFile)
			return ids, nil, err
		}
		return arcdata.IDs(count, seed), nil, nil
	}
	files, err := arcdata.LoadDir(dataDir)
	if err != nil {
		return nil, nil, fmt.Errorf("--data-dir: %w", err)
	}
	data := make(map[string][]byte, len(files))
	ids := make([]string, len(files))
	for i, f := range files {
		data[f.ID], ids[i] = f.Body, f.ID
	}
	switch {
	case tasksFile != "":
		if ids, err = readTaskFile(tasksFile); err != nil {
			return nil, nil, err
		}
		for _, id := range ids {
			if _, ok := data[id]; !ok {
				return nil, nil, fmt.Errorf("--tasks: task %s has no file %s.json in %s", id, id, dataDir)
			}
		}
	case countSet && count < len(ids):
		ids = ids[:count]
	}
	return ids, data, nil
}

// builtInOnly refuses, in one line, the flags that drive the built-in worker
// when another worker runs: it would never see them.
func builtInOnly(cmd *cobra.Command, workerCmd string) error {
	if workerCmd == "" {
		return nil
	}
	var set []string
	for _, name := range []string{"fault", "fail-rate", "worker-version"} {
		if cmd.Flags().Changed(name) {
			set = append(set, "--"+name)
		}
	}
	if len(set) == 0 {
		return nil
	}
	verb := "applies"
	if len(set) > 1 {
		verb = "apply"
		set = append(set[:len(set)-2], set[len(set)-2]+" and "+set[len(set)-1])
	}
	return fmt.Errorf("%s %s to the built-in worker only, not to --worker-cmd", strings.Join(set, ", "), verb)
}

func versionList() string {
	names := make([]string, len(worker.Versions))
	for i, v := range worker.Versions {
		names[i] = string(v)
	}
	return strings.Join(names, ", ")
}

// faultSpec joins --fault flags into the worker's ARCBENCH_FAULTS, checked.
func faultSpec(faults []string) (string, error) {
	spec := strings.Join(faults, ",")
	if spec == "" {
		return "", nil
	}
	if _, err := worker.ParseFaults(spec); err != nil {
		return "", fmt.Errorf("--fault: %w", err)
	}
	return spec, nil
}

func modeList() string {
	names := make([]string, len(worker.Modes))
	for i, m := range worker.Modes {
		names[i] = string(m)
	}
	return strings.Join(names, ", ")
}

// envPairs reads --worker-env KEY=VALUE flags.
func envPairs(pairs []string) (map[string]string, error) {
	env := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t\n") {
			return nil, fmt.Errorf("--worker-env %q: want KEY=VALUE", p)
		}
		env[k] = v
	}
	return env, nil
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
  export AWS_ENDPOINT_URL=%s AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local ARCBENCH_STAGE=%s
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
		return &exitError{code: 1, err: fmt.Errorf("execution %s: %s: %s\n%s", res.Status, res.Error, res.Cause, runLine(res))}
	case len(res.Violations) > 0:
		return &exitError{code: 1, err: fmt.Errorf("the Step Functions quotas were exceeded:\n  %s\n%s", strings.Join(res.Violations, "\n  "), runLine(res))}
	case res.IAM != nil && len(res.IAM.Denials) > 0:
		return &exitError{code: 1, err: fmt.Errorf("the template's IAM policies refused %d requests (first: %s)\n%s", len(res.IAM.Denials), res.IAM.Denials[0], runLine(res))}
	case res.RunStatus != model.RunCompleted && res.RunStatus != model.RunCompletedWithErrors:
		return &exitError{code: 1, err: errors.New(runLine(res))}
	}
	if asJSON {
		stdout = stderr // stdout holds the one JSON document
	}
	fmt.Fprintln(stdout, runLine(res))
	return nil
}

// runLine is the run's final status, the last thing a local run prints.
func runLine(res *localrun.Result) string {
	if res.RunID == "" {
		return "no run was made"
	}
	line := fmt.Sprintf("run %s: %s%s", res.RunID, res.RunStatus, stopText(res.StopReason))
	var out model.CompleteOutput
	completed := json.Unmarshal(res.Output, &out) == nil && out.RunID != ""
	m := out.FinalMetrics
	if completed {
		score := "none (no task has expected outputs)"
		if m.Score != nil {
			score = fmt.Sprintf("%.1f%% over %d tasks", *m.Score*100, m.ScoredTasks)
		}
		if m.NotRunTasks > 0 {
			score += fmt.Sprintf(" (not run: 0), %s over the %d run", percent(m.ScoreOverRun), m.ScoredTasks-m.NotRunTasks)
		}
		done := fmt.Sprint(m.CompletedTasks)
		var apart []string
		if m.UnansweredTasks > 0 {
			apart = append(apart, fmt.Sprintf("%d unanswered", m.UnansweredTasks))
		}
		if m.CompletedAfterJobFailure > 0 {
			apart = append(apart, fmt.Sprintf("%d before their job failed", m.CompletedAfterJobFailure))
		}
		if len(apart) > 0 {
			done += " (" + strings.Join(apart, ", ") + ")"
		}
		line += fmt.Sprintf(", score %s; %s completed, %d failed%s of %d", score, done, m.FailedTasks, notRunText(m.NotRunTasks), m.TotalTasks)
	}
	if len(res.FailedBy) > 0 {
		// Why they failed, most common first: "(3 NoAnswer, 1 States.TaskFailed)".
		types := slices.SortedFunc(maps.Keys(res.FailedBy), func(a, b string) int {
			return cmp.Or(res.FailedBy[b]-res.FailedBy[a], strings.Compare(a, b))
		})
		parts := make([]string, len(types))
		for i, t := range types {
			parts[i] = fmt.Sprintf("%d %s", res.FailedBy[t], t)
		}
		line += " (" + strings.Join(parts, ", ") + ")"
	}
	if completed {
		line += "; cost " + m.Costs().String()
	}
	return line
}

// principalCounts lists requests per principal, most first.
func principalCounts(by map[string]int) string {
	names := make([]string, 0, len(by))
	for n := range by {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		return by[names[i]] > by[names[j]] || by[names[i]] == by[names[j]] && names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", n, by[n])
	}
	return strings.Join(parts, ", ")
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
	if res.ReportPath != "" {
		fmt.Fprintf(w, "report:          %s\n", res.ReportPath)
	} else if res.ReportError != "" {
		fmt.Fprintf(w, "report not written: %s\n", res.ReportError)
	}
	fmt.Fprintf(w, "Figures (quotas: %d bytes per payload, %d history events per execution):\n%s", localrun.MaxPayloadBytes, localrun.MaxHistory, res.Figures.String())
	if a := res.IAM; a != nil {
		fmt.Fprintf(w, "  IAM:              %d requests authorized against the template's policies (%s), %d refused\n",
			a.Authorized, principalCounts(a.ByPrincipal), len(a.Denials))
		seen := map[iam.Denial]int{}
		var order []iam.Denial
		for _, d := range a.Denials {
			if seen[d]++; seen[d] == 1 {
				order = append(order, d)
			}
		}
		for _, d := range order {
			fmt.Fprintf(w, "  DENIED (%dx): %s\n", seen[d], d)
		}
		for _, d := range a.MissingKeys {
			fmt.Fprintf(w, "  missing object: %s\n", d)
		}
	} else {
		fmt.Fprintf(w, "  IAM:              not checked (--no-iam)\n")
	}
	fmt.Fprintf(w, "  wall time:        %.1fs\n", res.Wall.Seconds())
	for _, v := range res.Violations {
		fmt.Fprintf(w, "QUOTA EXCEEDED: %s\n", v)
	}
	printNotifications(w, res.Notifications)
}

// printNotifications shows what the run's end published to the stage's
// topic (the SNS stand-in): what a subscriber's email would say.
func printNotifications(w io.Writer, ns []localrun.Notification) {
	if len(ns) == 0 {
		fmt.Fprintln(w, "Notification: none published")
		return
	}
	for _, n := range ns {
		fmt.Fprintf(w, "Notification on %s:\n  Subject: %s\n", n.TopicArn[strings.LastIndex(n.TopicArn, ":")+1:], n.Subject)
		for _, line := range strings.Split(strings.TrimRight(n.Message, "\n"), "\n") {
			fmt.Fprintln(w, strings.TrimRight("  | "+line, " "))
		}
	}
}
