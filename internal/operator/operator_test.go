package operator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"arcbench/internal/localrun"
	"arcbench/internal/testenv"
	"arcbench/shared/arcdata"
	"arcbench/shared/clients"
	"arcbench/shared/model"
	"arcbench/shared/store"
	"arcbench/shared/worker"
)

// The operator commands run as a user runs them (the arcbench binary, the
// SDK's own configuration) against a live local stage: the emulators plus the
// local Step Functions and CloudFormation APIs of a kept local run.
var (
	binary  string
	session *localrun.Session
	taskIDs []string
	tasks   string // a file of the seeded task ids
)

const (
	seed     = 21
	failRate = 0.3
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "arcbench-operator")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		var err error
		if binary, err = testenv.BuildCLI(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		taskIDs = arcdata.IDs(12, seed)
		tasks = filepath.Join(dir, "tasks.txt")
		if err := os.WriteFile(tasks, []byte(strings.Join(taskIDs, "\n")+"\n"), 0o644); err != nil {
			panic(err)
		}
		session, err = localrun.Open(context.Background(), localrun.Options{
			TaskIDs: taskIDs, Seed: seed, FailRate: failRate, MaxRetries: 1, Self: binary, Dir: filepath.Join(dir, "local"),
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "open a local stage:", err)
			return 1
		}
		defer session.Close()
		return m.Run()
	}()
	os.Exit(code)
}

// cliEnv is the environment the CLI runs in: the local stage, found as a
// user's shell would give it.
func cliEnv() []string {
	return append(os.Environ(),
		"AWS_ENDPOINT_URL="+session.Stack.Endpoint, "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "ARCBENCH_STAGE=local",
		"AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull)
}

// arcbench runs the CLI against the local stage.
func arcbench(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = cliEnv()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errOut.String(), code
}

func localStore() *store.Store {
	c := clients.NewLocal(session.Stack.Endpoint)
	return store.New(c.DynamoDB, table("-runs"), table("-tasks"))
}

func table(suffix string) string {
	for _, name := range session.Tables {
		if strings.HasSuffix(name, suffix) {
			return name
		}
	}
	return ""
}

// start starts a run through the CLI and follows it to its end.
func start(t *testing.T, config string, args ...string) string {
	t.Helper()
	out, stderr, code := arcbench(t, append([]string{"start", "--config", config, "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("start: exit %d: %s", code, stderr)
	}
	var started struct {
		RunID        string `json:"run_id"`
		ExecutionArn string `json:"execution_arn"`
		TotalTasks   int    `json:"total_tasks"`
	}
	if err := json.Unmarshal([]byte(out), &started); err != nil || started.RunID == "" || started.ExecutionArn == "" {
		t.Fatalf("start printed %q", out)
	}
	return started.RunID
}

type snapshot struct {
	Status    string  `json:"status"`
	Total     int     `json:"total_tasks"`
	Completed int     `json:"completed_tasks"`
	Failed    int     `json:"failed_tasks"`
	Pending   int     `json:"pending_tasks"`
	Correct   int     `json:"correct_tasks"`
	Cost      string  `json:"cost_usd"`
	Rate      float64 `json:"tasks_per_minute"`
	Done      bool    `json:"done"`
}

func watch(t *testing.T, runID string) []snapshot {
	t.Helper()
	out, stderr, code := arcbench(t, "watch", runID, "--json", "--interval", "1s")
	if code != 0 {
		t.Fatalf("watch: exit %d: %s", code, stderr)
	}
	var snaps []snapshot
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var s snapshot
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("watch printed %q", line)
		}
		snaps = append(snaps, s)
	}
	return snaps
}

func TestStartWatchResults(t *testing.T) {
	runID := start(t, "ops-start", "--tasks", tasks)
	if !strings.HasPrefix(runID, "run-ops-start-") {
		t.Errorf("run id %q", runID)
	}
	snaps := watch(t, runID)
	last := snaps[len(snaps)-1]
	if !last.Done || last.Status == model.RunRunning {
		t.Fatalf("watch ended on %+v", last)
	}
	for _, s := range snaps {
		if s.Completed+s.Failed+s.Pending != s.Total || s.Total != len(taskIDs) {
			t.Errorf("snapshot %+v does not add up to %d tasks", s, len(taskIDs))
		}
	}

	// The final figures are the tables' own.
	st := localStore()
	failed, err := st.FailedTasks(context.Background(), runID, model.TaskFailed, model.TaskFailedPermanent)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, id := range taskIDs {
		if worker.FailsAttempt(seed, id, 0, failRate) {
			want++
		}
	}
	if last.Failed != len(failed) || last.Failed != want || last.Completed != len(taskIDs)-want {
		t.Errorf("watch says %d failed and %d completed; the tasks table has %d failed, the schedule %d", last.Failed, last.Completed, len(failed), want)
	}
	run, err := st.GetRun(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	if last.Status != run.Status || last.Cost != run.TotalCostUSD {
		t.Errorf("watch ended %s with cost %s; the run record says %s and %s", last.Status, last.Cost, run.Status, run.TotalCostUSD)
	}

	// results --json is aggregated.json as stored.
	out, stderr, code := arcbench(t, "results", runID, "--json")
	if code != 0 {
		t.Fatalf("results: exit %d: %s", code, stderr)
	}
	obj, err := clients.NewLocal(session.Stack.Endpoint).S3.GetObject(context.Background(), &s3.GetObjectInput{
		Bucket: aws.String(session.Bucket), Key: aws.String(model.AggregatedKey(runID))})
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(obj.Body)
	obj.Body.Close()
	if out != string(stored) {
		t.Errorf("results --json differs from aggregated.json as stored")
	}

	// The human view lists each failed task with its reason and exit code.
	out, _, code = arcbench(t, "results", runID)
	if code != 0 {
		t.Fatalf("results: exit %d", code)
	}
	for _, f := range failed {
		if !strings.Contains(out, f.TaskID+"  FAILED_PERMANENT  1") || !strings.Contains(out, "Essential container in task exited") {
			t.Errorf("results does not show failed task %s with its attempts and reason:\n%s", f.TaskID, out)
		}
	}
	if want > 0 && !strings.Contains(out, fmt.Sprintf("failed tasks (%d)", want)) {
		t.Errorf("results:\n%s", out)
	}
}

func TestRetryPicksExactlyThePermanentlyFailedTasks(t *testing.T) {
	runID := start(t, "ops-retry", "--tasks", tasks)
	watch(t, runID)
	failed, err := localStore().FailedTasks(context.Background(), runID, model.TaskFailedPermanent)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) == 0 {
		t.Fatal("no task failed for good: the seed was meant to fail some")
	}
	var want []string
	for _, f := range failed {
		want = append(want, f.TaskID)
	}

	out, stderr, code := arcbench(t, "retry", runID, "--json")
	if code != 0 {
		t.Fatalf("retry: exit %d: %s", code, stderr)
	}
	var retried struct {
		Retried int      `json:"retried"`
		TaskIDs []string `json:"task_ids"`
		Run     struct {
			RunID string `json:"run_id"`
		} `json:"run"`
	}
	if err := json.Unmarshal([]byte(out), &retried); err != nil {
		t.Fatalf("retry printed %q", out)
	}
	sort.Strings(retried.TaskIDs)
	if !slices.Equal(retried.TaskIDs, want) || retried.Retried != len(want) {
		t.Errorf("retry picked %v, the run's permanently failed tasks are %v", retried.TaskIDs, want)
	}
	watch(t, retried.Run.RunID)
	var got []string
	err = localStore().EachTask(context.Background(), retried.Run.RunID, func(task store.Task) error {
		got = append(got, task.TaskID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	if !slices.Equal(got, want) {
		t.Errorf("the new run has tasks %v, want %v", got, want)
	}
	run, _ := localStore().GetRun(context.Background(), retried.Run.RunID)
	if run.ConfigName != "ops-retry" || run.DataSource != model.DefaultDataSource {
		t.Errorf("the new run is %s over %s, want the same configuration and data source", run.ConfigName, run.DataSource)
	}

	// A run whose tasks all completed: nothing to retry, and that is not an error.
	var good []string
	for _, id := range taskIDs {
		if !worker.FailsAttempt(seed, id, 0, failRate) {
			good = append(good, id)
		}
	}
	args := []string{}
	for _, id := range good[:2] {
		args = append(args, "--task", id)
	}
	clean := start(t, "ops-clean", args...)
	watch(t, clean)
	out, _, code = arcbench(t, "retry", clean)
	if code != 0 || !strings.Contains(out, "nothing to retry") {
		t.Errorf("retry of a clean run: exit %d, %q", code, out)
	}
}

func TestRunsNewestFirst(t *testing.T) {
	first := start(t, "ops-list", "--task", taskIDs[0])
	watch(t, first)
	other := start(t, "ops-other", "--task", taskIDs[1])
	watch(t, other)
	second := start(t, "ops-list", "--task", taskIDs[2])
	watch(t, second)

	list := func(args ...string) []string {
		out, stderr, code := arcbench(t, append([]string{"runs", "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("runs: exit %d: %s", code, stderr)
		}
		var rows []struct {
			RunID     string `json:"run_id"`
			CreatedAt string `json:"created_at"`
		}
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("runs printed %q", out)
		}
		var ids []string
		for i, r := range rows {
			ids = append(ids, r.RunID)
			if i > 0 && rows[i-1].CreatedAt < r.CreatedAt {
				t.Errorf("runs are not newest first: %v", rows)
			}
		}
		return ids
	}
	if got := list("--config", "ops-list"); !slices.Equal(got, []string{second, first}) {
		t.Errorf("runs --config ops-list = %v, want [%s %s]", got, second, first)
	}
	all := list()
	if len(all) < 3 || !slices.Contains(all, other) || slices.Index(all, second) > slices.Index(all, other) {
		t.Errorf("runs = %v", all)
	}
	if got := list("--config", "ops-list", "--limit", "1"); !slices.Equal(got, []string{second}) {
		t.Errorf("runs --limit 1 = %v", got)
	}
}

// Each common mistake is one line naming the fix, and a non-zero exit.
func TestCommonMistakesAreOneLine(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty.txt")
	_ = os.WriteFile(empty, nil, 0o644)
	cases := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"unknown stage", []string{"runs", "--stage", "nope"}, nil, `stage "nope" not found: no stack arc-benchmark-nope`},
		{"no stage", []string{"runs"}, []string{"ARCBENCH_STAGE="}, "no stage: give --stage NAME or set ARCBENCH_STAGE"},
		{"unknown run", []string{"watch", "run-nope"}, nil, "run run-nope not found in stage local"},
		{"unknown run's results", []string{"results", "run-nope"}, nil, "run run-nope not found"},
		{"unknown run's report", []string{"report", "run-nope"}, nil, "run run-nope not found in stage local"},
		{"compare one run", []string{"compare", "run-nope"}, nil, "compare needs two runs at least"},
		{"compare an unknown config", []string{"compare", "--config", "never-ran", "--config", "x"}, nil, "configuration never-ran has no run in stage local"},
		{"empty task file", []string{"start", "--config", "c", "--tasks", empty}, nil, "no task ids in the file"},
		{"unreadable task file", []string{"start", "--config", "c", "--tasks", "/nonexistent/ids.txt"}, nil, "--tasks"},
		{"no credentials", []string{"runs"}, []string{"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_EC2_METADATA_DISABLED=true"}, "no AWS credentials: set AWS_PROFILE"},
		{"bad config name", []string{"start", "--config", "a b", "--task", "x"}, nil, "--config: invalid input: config_name"},
		// Each update reads the whole run: not 600 times a second.
		{"watch at once", []string{"watch", "run-nope", "--interval", "0s"}, nil, "--interval 0s: want 1s or more"},
		{"watch backwards", []string{"watch", "run-nope", "--interval", "-2s"}, nil, "--interval -2s: want 1s or more"},
		{"watch too often", []string{"watch", "run-nope", "--interval", "200ms"}, nil, "--interval 200ms: want 1s or more"},
		{"no runs wanted", []string{"runs", "--limit", "0"}, nil, "--limit 0: want 1 or more"},
		{"negative limit", []string{"runs", "--limit", "-1"}, nil, "--limit -1: want 1 or more"},
		{"retry a running run", []string{"retry", "run-still-running"}, nil, "run run-still-running is RUNNING: retry it once it has finished"},
	}
	// A run still under way (its record RUNNING): retry must not start on it.
	if _, err := localStore().CreateRun(context.Background(), store.Run{RunID: "run-still-running", ConfigName: "c", DataSource: "evaluation",
		CreatedAt: model.FormatTime(time.Now()), TotalTasks: 1}); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(binary, c.args...)
			cmd.Env = append(cliEnv(), c.env...)
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			err := cmd.Run()
			if err == nil {
				t.Fatalf("exit 0, stdout %q", out.String())
			}
			lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Errorf("stderr %q, want one line with %q", errOut.String(), c.want)
			}
			if strings.Contains(errOut.String(), "goroutine") || strings.Contains(errOut.String(), "operation error") {
				t.Errorf("stderr is not for people: %q", errOut.String())
			}
		})
	}
}
