package localrun_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"arcbench/internal/emulators"
	"arcbench/internal/localrun"
	"arcbench/internal/operator"
	"arcbench/shared/arcdata"
	"arcbench/shared/handlers/complete"
	"arcbench/shared/model"
)

// published are the Publish requests the SNS stand-in accepted in a run's
// session, and those about the run.
func published(t *testing.T, res *localrun.Result) (all, ofRun []emulators.Publish) {
	t.Helper()
	if bad := res.Session.Stack.SNS.Malformed(); len(bad) > 0 {
		t.Errorf("the SNS stand-in refused requests: %v", bad)
	}
	all = res.Session.Stack.Published()
	for _, p := range all {
		if p.MessageAttributes[complete.AttributeRunID].StringValue == res.RunID {
			ofRun = append(ofRun, p)
		}
	}
	return all, ofRun
}

// metricSums sums the data the run's handlers put, by "name dimensions".
func metricSums(res *localrun.Result) map[string]float64 {
	sums := map[string]float64{}
	for _, p := range res.Session.Stack.CloudWatch.Puts() {
		for _, d := range p.MetricData {
			sums[fmt.Sprintf("%s %v", d.MetricName, d.Dimensions)] += d.Value
		}
	}
	return sums
}

// tellsOnce checks that the session published exactly one message, on the
// stage's topic, about the run, saying its status and its tasks as
// aggregated.json counts them, and the commands to see more.
func tellsOnce(t *testing.T, res *localrun.Result, status string) emulators.Publish {
	t.Helper()
	all, ofRun := published(t, res)
	if len(all) != 1 || len(ofRun) != 1 || len(res.Notifications) != 1 {
		t.Fatalf("%d messages published (%d about run %s, %d in the result), want exactly 1", len(all), len(ofRun), res.RunID, len(res.Notifications))
	}
	p := all[0]
	m := aggregated(t, res).Metrics
	for _, want := range []string{
		"Status:  " + status + "\n",
		fmt.Sprintf("Tasks:   %d completed, %d failed, %d not run, of %d\n", m.CompletedTasks, m.FailedTasks, m.NotRunTasks, m.TotalTasks),
		"arcbench results " + res.RunID + " --stage local\n",
		"arcbench report " + res.RunID + " --stage local\n",
	} {
		if !strings.Contains(p.Message, want) {
			t.Errorf("message lacks %q:\n%s", want, p.Message)
		}
	}
	if !strings.HasSuffix(p.TopicArn, ":arc-benchmark-local-runs") || !strings.HasPrefix(p.Subject, "arcbench "+res.RunID+": "+status+", ") {
		t.Errorf("published to %s, subject %q", p.TopicArn, p.Subject)
	}
	if n := res.Notifications[0]; n.Subject != p.Subject || n.Message != p.Message {
		t.Errorf("the result's notification %+v is not the one published", n)
	}
	return p
}

// `arcbench local run` prints the message its run's end published to the
// stage's topic, subject and body, with the run's status, counts, the
// commonest failure reason and the commands to see more.
func TestALocalRunPrintsTheEndOfRunMessage(t *testing.T) {
	ids := arcdata.IDs(4, 1) // the CLI's tasks for --count 4 (seed 1)
	cmd := exec.Command(binary, "local", "run", "--assembly", assembly, "--dir", t.TempDir(), "--count", "4",
		"--fault", ids[0]+":*=fail-after-claim", "--max-retries", "1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("local run: %v\n%s", err, stderr.String())
	}
	out := stdout.String()
	runID := regexp.MustCompile(`(?m)^run (run-\S+): `).FindStringSubmatch(out)
	if runID == nil {
		t.Fatalf("no run line in:\n%s", out)
	}
	if n := strings.Count(out, "Notification on arc-benchmark-local-runs:\n"); n != 1 {
		t.Fatalf("%d notifications printed, want 1:\n%s", n, out)
	}
	block := out[strings.Index(out, "Notification on"):]
	for _, want := range []string{
		"  Subject: arcbench " + runID[1] + ": COMPLETED_WITH_ERRORS, score ",
		"  | Status:  COMPLETED_WITH_ERRORS\n",
		"  | Tasks:   3 completed, 1 failed, 0 not run, of 4\n",
		"  | Most common failure reasons:\n  |   1  States.TaskFailed: ",
		"  |   arcbench results " + runID[1] + " --stage local\n",
		"  |   arcbench report " + runID[1] + " --stage local\n",
	} {
		if !strings.Contains(block, want) {
			t.Errorf("the printed notification lacks %q:\n%s", want, block)
		}
	}
	if lines := strings.Split(strings.TrimSpace(out), "\n"); !strings.HasPrefix(lines[len(lines)-1], "run "+runID[1]+": COMPLETED_WITH_ERRORS") {
		t.Errorf("the run's line is no longer the last: %q", lines[len(lines)-1])
	}
}

// A run stopped early (its execution aborted) is told once, by the run
// reaper's call after it aggregated the run: STOPPED with the reason and
// its tasks not run; the handlers' metrics are as shared/metrics/events.go
// says: one RunStarted, one RunEnded, one RunStoppedEarly, one stage cost,
// and one AttemptFailed per failed attempt recorded.
func TestAStoppedRunIsToldOnceWithItsMetrics(t *testing.T) {
	const n, k = 6, 2
	stopAfter := k
	res, db := run(t, localrun.Options{Assembly: oneAtATime(t), TaskIDs: arcdata.IDs(n, 14), Seed: 14, Parallel: 1, MaxRetries: 3,
		Faults: "*:*=no-answer", Guards: operator.Guards{StopAfterFailures: &stopAfter}})
	if res.Status != "ABORTED" || res.RunStatus != model.RunStopped {
		t.Fatalf("execution %s (%s), run %s; want ABORTED by an early stop, STOPPED", res.Status, res.Error, res.RunStatus)
	}
	p := tellsOnce(t, res, model.RunStopped)
	if want := fmt.Sprintf("Reason:  %d attempts in a row failed: %d x %s", k, k, model.ErrNoAnswer); !strings.Contains(p.Message, want) {
		t.Errorf("message lacks %q:\n%s", want, p.Message)
	}
	if aggregated(t, res).Metrics.NotRunTasks == 0 || !strings.Contains(p.Message, "not run as 0") {
		t.Errorf("a stopped run's message says what the score counts the tasks not run as:\n%s", p.Message)
	}
	attempts := 0
	for _, rec := range tasksOf(t, db, res, res.RunID) {
		attempts += rec.RetryCount
	}
	sums := metricSums(res)
	want := map[string]float64{
		"RunStarted [{ConfigName e2e}]": 1, "RunEnded [{Status STOPPED}]": 1, "RunStoppedEarly []": 1, "TotalCostUSD []": 0,
		"AttemptFailed [{Reason NoAnswer}]": float64(attempts),
	}
	for key, v := range want {
		if got, ok := sums[key]; !ok || got != v {
			t.Errorf("%s: %v (published: %v), want %v", key, got, ok, v)
		}
	}
	if _, ok := sums["RunCompleted [{ConfigName e2e}]"]; ok {
		t.Error("RunCompleted published for a run complete did not finish")
	}
	if attempts < k {
		t.Errorf("%d failed attempts recorded, want %d at least", attempts, k)
	}
}

// A run whose execution timed out is marked FAILED by the run reaper,
// which then has its end told, once, with the execution's status as reason.
func TestATimedOutRunIsToldOnceByTheReaper(t *testing.T) {
	worker := fmt.Sprintf(`sleep 1; exec %q worker`, binary)
	res, _ := run(t, localrun.Options{Assembly: withTimeout(t, 2), TaskIDs: arcdata.IDs(6, 15), Seed: 15, WorkerCmd: worker, Parallel: 1})
	if res.Status != "TIMED_OUT" || res.RunStatus != model.RunFailed {
		t.Fatalf("execution %s, run %s; want TIMED_OUT, FAILED", res.Status, res.RunStatus)
	}
	p := tellsOnce(t, res, model.RunFailed)
	if !strings.Contains(p.Message, "Reason:  TIMED_OUT\n") {
		t.Errorf("message lacks the execution's status as reason:\n%s", p.Message)
	}
	sums := metricSums(res)
	if sums["RunEnded [{Status FAILED}]"] != 1 || sums["RunStoppedEarly []"] != 0 {
		t.Errorf("metrics %v: want one RunEnded FAILED, no RunStoppedEarly", sums)
	}
}

// Without sns:Publish on the topic, complete's Publish is refused locally as
// on AWS (SNS's AuthorizationError), the refusal is listed, no message goes
// out, and the run completes all the same.
func TestAMissingPublishGrantIsRefusedLocally(t *testing.T) {
	res, _ := runDenied(t, localrun.Options{Assembly: withoutPermission(t, "FunctionsCompleteRole", "sns:Publish", "NotificationsTopic"),
		TaskIDs: arcdata.IDs(2, 16), Seed: 16})
	if res.Status != "SUCCEEDED" || res.RunStatus != model.RunCompleted {
		t.Fatalf("execution %s, run %s; a refused Publish must not fail the run", res.Status, res.RunStatus)
	}
	if all, _ := published(t, res); len(all) != 0 {
		t.Errorf("%d messages published without the grant", len(all))
	}
	refused := false
	for _, d := range res.IAM.Denials {
		refused = refused || d.Action == "sns:Publish" && strings.HasPrefix(d.Principal, "FunctionsCompleteRole") && strings.HasSuffix(d.Resource, ":arc-benchmark-local-runs")
	}
	if !refused {
		t.Errorf("denials %v, want complete's sns:Publish on the topic", res.IAM.Denials)
	}
}
