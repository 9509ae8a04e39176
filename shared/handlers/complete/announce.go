package complete

import (
	"cmp"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	snstypes "github.com/aws/aws-sdk-go-v2/service/sns/types"

	"arcbench/shared/lambdaio"
	"arcbench/shared/metrics"
	"arcbench/shared/model"
	"arcbench/shared/notify"
	"arcbench/shared/store"
)

// Notifier is the part of the SNS API complete uses.
type Notifier interface {
	Publish(ctx context.Context, in *sns.PublishInput, opts ...func(*sns.Options)) (*sns.PublishOutput, error)
}

var _ Notifier = (*sns.Client)(nil)

// NotifyTimeout bounds the Publish, its retries included (the SNS client
// retries with backoff): the message never holds a run's completion.
const NotifyTimeout = 10 * time.Second

// Message attributes of the run-end message, for subscription filter
// policies (e.g. only runs that FAILED).
const (
	AttributeRunID  = "run_id"
	AttributeStatus = "status"
)

// ending is a run's end as it is announced.
type ending struct {
	run            *store.Run
	status, reason string
	totals         model.Totals
	// reasons counts the failed tasks by failure reason.
	reasons map[string]int
	at      time.Time
}

// announceEnded announces the end of a run that has ended: its figures
// counted from its task records (its pending tasks as not run, as aggregate
// counts them), its status and reason from its record. A RUNNING run is
// refused: its end is complete's to announce.
func (h *Handler) announceEnded(ctx context.Context, run *store.Run) (model.CompleteOutput, error) {
	if run.Status == model.RunRunning {
		return model.CompleteOutput{}, &model.InvalidInputError{Field: "run_id", Reason: fmt.Sprintf("run %s is RUNNING: only a run that has ended is announced", run.RunID)}
	}
	tally, reasons, err := h.tally(ctx, run)
	if err != nil {
		return model.CompleteOutput{}, err
	}
	h.announce(ctx, ending{run: run, status: run.Status, reason: endReason(run), totals: tally.Totals(), reasons: reasons, at: h.Now()})
	return stored(run), nil
}

// announce tells a run's end, once per run: the stage's run-end metrics
// (with extra, the run's metrics by configuration) and the message on the
// topic. Once: whoever sets the run's notified_at first (a conditional
// write) publishes, every other call publishes nothing. The claim comes
// before the publishing, so the end is told at most once: a Lambda that
// dies between the two, or a Publish that fails past its retries, loses the
// message (logged as an error), and never tells it twice. At most once,
// because the run-end metrics feed the stage's alarms and the daily spend
// sum, which a repeat would inflate, and a subscriber is promised one email
// per run. Nothing here fails the call.
func (h *Handler) announce(ctx context.Context, e ending, extra ...types.MetricDatum) {
	log := lambdaio.Logger(ctx).With("run_id", e.run.RunID, "status", e.status)
	claimed, err := h.Store.ClaimNotice(ctx, e.run.RunID, model.FormatTime(e.at))
	if err != nil {
		log.Error("the run's end is not announced: its claim failed", "error", err.Error())
		return
	}
	if !claimed {
		log.Info("the run's end was announced already: nothing published")
		return
	}
	data := append(append([]types.MetricDatum(nil), extra...), metrics.RunEndedDatum(e.status, e.at))
	if e.status == model.RunStopped {
		data = append(data, metrics.RunStoppedEarlyDatum(e.at))
	}
	if cost, err := metrics.StageCostDatum(string(cmp.Or(e.totals.TotalCostUSD, "0")), e.at); err == nil {
		data = append(data, cost)
	} else {
		log.Error("the run's cost is not published", "error", err.Error())
	}
	mctx, cancel := context.WithTimeout(ctx, MetricsTimeout)
	defer cancel()
	if err := h.Metrics.Put(mctx, data...); err != nil {
		log.Error("metrics not published; the run is complete all the same", "error", err.Error())
	}
	if h.TopicARN == "" || h.SNS == nil {
		return
	}
	msg := e.message(h.Stage)
	nctx, cancel := context.WithTimeout(ctx, NotifyTimeout)
	defer cancel()
	out, err := h.SNS.Publish(nctx, &sns.PublishInput{
		TopicArn: aws.String(h.TopicARN),
		Subject:  aws.String(msg.Subject()),
		Message:  aws.String(msg.Text()),
		MessageAttributes: map[string]snstypes.MessageAttributeValue{
			AttributeRunID:  {DataType: aws.String("String"), StringValue: aws.String(e.run.RunID)},
			AttributeStatus: {DataType: aws.String("String"), StringValue: aws.String(e.status)},
		},
	})
	if err != nil {
		log.Error("the run-end message was not published; the run is complete all the same", "topic", h.TopicARN, "error", err.Error())
		return
	}
	log.Info("run-end message published", "topic", h.TopicARN, "message_id", aws.ToString(out.MessageId))
}

// message is the run-end message of e.
func (e ending) message(stage string) notify.RunEnded {
	t := e.totals
	m := notify.RunEnded{
		RunID: e.run.RunID, ConfigName: e.run.ConfigName, Status: e.status, Reason: e.reason, Stage: stage,
		Score: t.Score, TotalCostUSD: string(t.TotalCostUSD), UnreadableCosts: t.UnreadableCosts,
		ComputeCostUSD: string(t.ComputeCostUSD), UnpricedJobs: t.UnpricedJobs,
		Completed: t.CompletedTasks, Failed: t.FailedTasks, NotRun: t.NotRunTasks, Total: t.TotalTasks,
		TopFailures: notify.TopFailures(e.reasons, notify.MaxFailures),
	}
	if t.NotRunTasks > 0 {
		m.ScoreOverRun = t.ScoreOverRun
	}
	if m.Resumes = e.run.Resumes(); m.Resumes > 0 {
		// As of the end: a run still RUNNING (complete's) is timed to e.at.
		m.Active, m.Span = e.run.Times(e.at)
	}
	m.ReusedFrom, m.ReusedTasks, m.ReusedCostUSD = e.run.ReusedFrom, e.run.ReusedTasks, e.run.ReusedCostUSD
	return m
}

// tally counts a run's task records (as store.TallyRun; a run that has ended
// counts its pending tasks as not run) and its failed tasks by reason.
func (h *Handler) tally(ctx context.Context, run *store.Run) (*store.Tally, map[string]int, error) {
	t := &store.Tally{}
	reasons := map[string]int{}
	err := h.Store.EachTask(ctx, run.RunID, func(task store.Task) error {
		t.Add(task)
		if task.Status == model.TaskFailed || task.Status == model.TaskFailedPermanent {
			reasons[FailureReason(task)]++
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if run.Status != model.RunRunning {
		t.Counts.Ended()
	}
	return t, reasons, nil
}

// FailureReason names why a task failed as the run-end message counts it:
// the same cause on different tasks is one reason, as the failure streak
// names it ("States.TaskFailed: Essential container in task exited (exit
// code 1)", "NoAnswer: Error code: 500").
func FailureReason(t store.Task) string {
	msg := cmp.Or(t.LastErrorType, "unknown")
	switch {
	case t.Reason != "":
		msg += ": " + t.Reason
	case t.LastErrorType == model.ErrNoAnswer:
		if _, said, ok := strings.Cut(t.LastErrorCause, model.WorkerSaid); ok {
			msg += ": " + firstLine(said)
		}
	}
	if t.ExitCode != nil {
		msg += fmt.Sprintf(" (exit code %d)", *t.ExitCode)
	}
	return msg
}

// endReason says why a run that ended otherwise ended: its stop reason, or
// the error that failed it (its execution's status, for the run reaper).
func endReason(run *store.Run) string {
	if run.StopReason != "" {
		return run.StopReason
	}
	if run.LastErrorType == "" {
		return ""
	}
	reason := run.LastErrorType
	if c := firstLine(run.LastErrorCause); c != "" {
		reason += ": " + c
	}
	return reason
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
