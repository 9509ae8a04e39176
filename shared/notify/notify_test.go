package notify_test

import (
	"context"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"

	"arcbench/internal/emulators"
	"arcbench/shared/clients"
	"arcbench/shared/notify"
)

func f(v float64) *float64 { return &v }

// A run some of whose tasks failed, some never ran, some of whose costs
// could not be read.
func stopped() notify.RunEnded {
	return notify.RunEnded{
		RunID: "run-baseline-20261205-212851-aa9a6edc", ConfigName: "baseline", Stage: "dev",
		Status: "STOPPED", Reason: "budget of $5 reached",
		Score: f(0.417), ScoreOverRun: f(0.5561), TotalCostUSD: "4.9875", UnreadableCosts: 2,
		Completed: 9, Failed: 6, NotRun: 5, Total: 20,
		TopFailures: notify.TopFailures(map[string]int{"NoAnswer": 3, "States.TaskFailed": 1, "States.Timeout": 1, "Lost": 1}, notify.MaxFailures),
	}
}

func TestTopFailuresMostCommonFirstTiesByReason(t *testing.T) {
	by := map[string]int{"b": 2, "a": 2, "c": 5, "d": 1, "zero": 0}
	want := []notify.Failure{{"c", 5}, {"a", 2}, {"b", 2}}
	if got := notify.TopFailures(by, 3); !reflect.DeepEqual(got, want) {
		t.Errorf("TopFailures = %v, want %v", got, want)
	}
	if got := notify.TopFailures(by, 10); len(got) != 4 || got[3] != (notify.Failure{"d", 1}) {
		t.Errorf("TopFailures(10) = %v: want every reason counted, none counted 0", got)
	}
	if got := notify.TopFailures(nil, 3); len(got) != 0 {
		t.Errorf("TopFailures(nil) = %v", got)
	}
}

func TestSubject(t *testing.T) {
	for _, c := range []struct {
		name string
		run  notify.RunEnded
		want string
	}{
		{"scored", notify.RunEnded{RunID: "run-x", Status: "COMPLETED_WITH_ERRORS", Score: f(0.41666)}, "arcbench run-x: COMPLETED_WITH_ERRORS, score 41.7%"},
		{"no score", notify.RunEnded{RunID: "run-x", Status: "FAILED"}, "arcbench run-x: FAILED, no score"},
		{"perfect", notify.RunEnded{RunID: "run-x", Status: "COMPLETED", Score: f(1)}, "arcbench run-x: COMPLETED, score 100.0%"},
		{"zero", notify.RunEnded{RunID: "run-x", Status: "COMPLETED", Score: f(0)}, "arcbench run-x: COMPLETED, score 0.0%"},
		{"a line break and non-ASCII", notify.RunEnded{RunID: "run\nx-é", Status: "COMPLETED"}, "arcbench run x-?: COMPLETED, no score"},
	} {
		if got := c.run.Subject(); got != c.want {
			t.Errorf("%s: Subject() = %q, want %q", c.name, got, c.want)
		}
	}

	long := notify.RunEnded{RunID: "run-" + strings.Repeat("very-long-config-name-", 8) + "20261205-212851-aa9a6edc", Status: "COMPLETED_WITH_ERRORS", Score: f(0.5)}
	got := long.Subject()
	if len(got) > notify.MaxSubject || !strings.HasPrefix(got, "arcbench run-very-long") ||
		!strings.HasSuffix(got, "aa9a6edc: COMPLETED_WITH_ERRORS, score 50.0%") || !strings.Contains(got, "...") {
		t.Errorf("long run id: %q (%d characters), want at most %d with the id shortened in its middle", got, len(got), notify.MaxSubject)
	}
	absurd := notify.RunEnded{RunID: "run-x", Status: strings.Repeat("S", 200)}
	if got := absurd.Subject(); len(got) != notify.MaxSubject || !strings.HasPrefix(got, "arcbench run-x: SSS") {
		t.Errorf("absurd status: %q", got)
	}
	for _, r := range []notify.RunEnded{stopped(), long, absurd, {}} {
		s := r.Subject()
		if utf8.RuneCountInString(s) > notify.MaxSubject || strings.ContainsFunc(s, func(c rune) bool { return c < 0x20 || c > 0x7e }) {
			t.Errorf("Subject() = %q: over %d characters or not printable ASCII", s, notify.MaxSubject)
		}
	}
}

func TestTextOfARunWithNotRunTasksAndUnreadableCosts(t *testing.T) {
	got := stopped().Text()
	want := `arcbench run run-baseline-20261205-212851-aa9a6edc ended STOPPED.

Stage:   dev
Run:     run-baseline-20261205-212851-aa9a6edc
Config:  baseline
Status:  STOPPED
Reason:  budget of $5 reached
Score:   41.7%, counting the 5 tasks not run as 0; 55.6% over the tasks that ran
Cost:    $4.9875 + 2 tasks with unreadable costs
Tasks:   9 completed, 6 failed, 5 not run, of 20

Most common failure reasons:
  3  NoAnswer
  1  Lost
  1  States.TaskFailed
  and 1 more failed task for other reasons

To see more:
  arcbench results run-baseline-20261205-212851-aa9a6edc --stage dev
  arcbench report run-baseline-20261205-212851-aa9a6edc --stage dev
`
	if got != want {
		t.Errorf("Text():\n%s\nwant:\n%s", got, want)
	}
}

func TestTextOfARunWithNoScore(t *testing.T) {
	r := notify.RunEnded{RunID: "run-x", ConfigName: "c", Status: "FAILED", TotalCostUSD: "0", Failed: 2, Total: 2,
		TopFailures: []notify.Failure{{"NoAnswer", 2}}}
	got := r.Text()
	for _, want := range []string{
		"Score:   none (no task could be scored)\n",
		"Cost:    $0\n",
		"Tasks:   0 completed, 2 failed, 0 not run, of 2\n",
		"  2  NoAnswer\n",
		"  arcbench results run-x\n", // no stage: the command's default ($ARCBENCH_STAGE)
		"  arcbench report run-x\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Text() lacks %q:\n%s", want, got)
		}
	}
	for _, not := range []string{"Reason:", "Stage:", "other reasons", "--stage", "Resumed:", "Reused:"} {
		if strings.Contains(got, not) {
			t.Errorf("Text() has %q:\n%s", not, got)
		}
	}
}

func TestTextKeepsEachFieldOnItsLine(t *testing.T) {
	r := notify.RunEnded{RunID: "run-x", Stage: "my stage", Status: "FAILED", Reason: "first line\nsecond line\r\n\tthird",
		TotalCostUSD: "", UnreadableCosts: 1, Score: f(0.25), NotRun: 1, Total: 1,
		TopFailures: []notify.Failure{{"a", 4}, {"b\nc", 3}, {"d", 2}, {"e", 1}}, Failed: 10}
	got := r.Text()
	for _, want := range []string{
		"Reason:  first line second line third\n",
		"Score:   25.0%, counting the 1 task not run as 0\n", // no score over the tasks that ran: none did
		"Cost:    unknown (1 task with unreadable costs)\n",
		"  3  b c\n",
		"  and 1 more failed task for other reasons\n",
		"  arcbench report run-x --stage 'my stage'\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Text() lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "  1  e\n") {
		t.Errorf("Text() lists more than %d failure reasons:\n%s", notify.MaxFailures, got)
	}
}

// The message is one SNS takes: published with the SDK to the SNS stand-in,
// which checks it as SNS does (subject, message size).
func TestSNSTakesTheMessage(t *testing.T) {
	st := &emulators.SNS{}
	srv := httptest.NewServer(st)
	defer srv.Close()
	const topic = "arn:aws:sns:us-east-1:000000000000:run-ended"
	long := stopped()
	long.RunID = "run-" + strings.Repeat("x", 300)
	for _, r := range []notify.RunEnded{stopped(), long, {}} {
		_, err := clients.NewLocal(srv.URL).SNS.Publish(context.Background(), &sns.PublishInput{
			TopicArn: aws.String(topic), Subject: aws.String(r.Subject()), Message: aws.String(r.Text())})
		if err != nil {
			t.Errorf("publish %q: %v", r.Subject(), err)
		}
	}
	if got := st.Published(); len(got) != 3 || got[0].Message != stopped().Text() {
		t.Errorf("published %d", len(got))
	}
}

func TestTheCostLineGivesModelComputeAndTheirSum(t *testing.T) {
	r := notify.RunEnded{RunID: "run-x", ConfigName: "c", Status: "COMPLETED", TotalCostUSD: "0.0123", ComputeCostUSD: "0.0028", Completed: 1, Total: 1}
	if want := "Cost:    $0.0151 ($0.0123 model + $0.0028 compute)\n"; !strings.Contains(r.Text(), want) {
		t.Errorf("text %q, want the line %q", r.Text(), want)
	}
}

// A run resumed and reusing another run's results says so: how often it was
// resumed, its executions and times, and the results it took, whose cost
// is another run's.
func TestTextOfAResumedRunThatReusedResults(t *testing.T) {
	r := notify.RunEnded{RunID: "run-b", ConfigName: "c", Status: "COMPLETED", Score: f(0.5), TotalCostUSD: "0.1",
		Completed: 10, Total: 10, Resumes: 1, Active: 3*time.Minute + 12*time.Second, Span: time.Hour + 2*time.Minute + 10*time.Second,
		ReusedFrom: "run-a", ReusedTasks: 7, ReusedCostUSD: "0.42"}
	want := `arcbench run run-b ended COMPLETED.

Run:     run-b
Config:  c
Status:  COMPLETED
Score:   50.0%
Cost:    $0.1
Tasks:   10 completed, 0 failed, 0 not run, of 10
Resumed: once (2 executions; active 3m12s, 1h02m from first start to last end)
Reused:  7 tasks' results from run-a ($0.42 paid there, not in this run's cost)

To see more:
  arcbench results run-b
  arcbench report run-b
`
	if got := r.Text(); got != want {
		t.Errorf("Text():\n%s\nwant:\n%s", got, want)
	}
}

func TestTheResumedAndReusedLinesInEachCase(t *testing.T) {
	for _, c := range []struct {
		run  notify.RunEnded
		want string
	}{
		{notify.RunEnded{Resumes: 3, Active: 42 * time.Second, Span: 59*time.Minute + 59600*time.Millisecond},
			"Resumed: 3 times (4 executions; active 42s, 1h00m from first start to last end)\n"},
		{notify.RunEnded{Resumes: 2, Active: 26*time.Hour + 5*time.Minute, Span: 61 * time.Second},
			"Resumed: 2 times (3 executions; active 26h05m, 1m01s from first start to last end)\n"},
		{notify.RunEnded{ReusedFrom: "run-a", ReusedTasks: 1, ReusedCostUSD: "0.0125"},
			"Reused:  1 task's result from run-a ($0.0125 paid there, not in this run's cost)\n"},
		{notify.RunEnded{ReusedFrom: "run-a"}, "Reused:  no results of run-a could be reused\n"},
	} {
		if got := c.run.Text(); !strings.Contains(got, c.want) {
			t.Errorf("Text() lacks %q:\n%s", c.want, got)
		}
	}
}
