// Package notify is the message a stage's SNS topic carries when a run ends:
// a subject and a plain-text body, as a person reads them in an email.
package notify

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"arcbench/shared/money"
)

// MaxSubject is the longest subject Subject returns, in characters: SNS
// takes subjects "less than 100 characters long" (API reference, Publish,
// Subject), and an email subscription shows it as the email's subject.
const MaxSubject = 99

// MaxFailures is how many failure reasons a message lists.
const MaxFailures = 3

// Failure is one reason tasks failed and how many failed for it.
type Failure struct {
	Reason string
	Count  int
}

// RunEnded is what a run-end notification tells.
type RunEnded struct {
	RunID, ConfigName string
	// Status is the run's final status (COMPLETED, COMPLETED_WITH_ERRORS,
	// FAILED, STOPPED...); Reason says why, when there is more to say.
	Status, Reason string
	// Score is the official ARC-AGI score (0..1), nil when no task could be
	// scored; ScoreOverRun the score over the tasks that ran, for a run some
	// of whose tasks never ran (NotRun), which Score counts 0.
	Score        *float64
	ScoreOverRun *float64
	// TotalCostUSD is the exact decimal total; UnreadableCosts counts the
	// tasks whose cost could not be read and is not in it.
	TotalCostUSD    string
	UnreadableCosts int
	// ComputeCostUSD is the Fargate cost of the run's jobs ("" none
	// recorded), UnpricedJobs those left out of it.
	ComputeCostUSD string
	UnpricedJobs   int
	// Completed, Failed and NotRun count the run's tasks, of Total.
	Completed, Failed, NotRun, Total int
	// TopFailures are the most common failure reasons, most common first
	// (TopFailures(byReason, MaxFailures)); a message lists MaxFailures at most.
	TopFailures []Failure
	Stage       string
	// Resumes is how many times the run was resumed (its executions are
	// one more); Active is the sum of its executions' run times, Span the
	// time from its first start to its last end.
	Resumes      int
	Active, Span time.Duration
	// ReusedTasks took their results from run ReusedFrom instead of
	// running; ReusedCostUSD is what they cost there, not in TotalCostUSD.
	ReusedFrom    string
	ReusedTasks   int
	ReusedCostUSD string
}

// TopFailures is the n most common failure reasons of byReason (a count per
// reason), most common first, ties by reason; reasons counted 0 or less are
// left out.
func TopFailures(byReason map[string]int, n int) []Failure {
	reasons := slices.SortedFunc(maps.Keys(byReason), func(a, b string) int {
		return cmp.Or(byReason[b]-byReason[a], strings.Compare(a, b))
	})
	var out []Failure
	for _, r := range reasons {
		if len(out) >= n || byReason[r] <= 0 {
			break
		}
		out = append(out, Failure{Reason: r, Count: byReason[r]})
	}
	return out
}

// Subject is the notification's subject, e.g. "arcbench run-x:
// COMPLETED_WITH_ERRORS, score 41.7%": at most MaxSubject characters, all
// printable ASCII (no line break or control character, which SNS refuses).
// A run id too long for it is shortened in its middle, so that the status
// and the score are always there.
func (r RunEnded) Subject() string {
	const prefix = "arcbench "
	tail := ": " + ascii(cmp.Or(r.Status, "ENDED")) + ", "
	if r.Score != nil {
		tail += "score " + percent(*r.Score)
	} else {
		tail += "no score"
	}
	id := ascii(cmp.Or(r.RunID, "(no run id)"))
	if room := MaxSubject - len(prefix) - len(tail); len(id) > room {
		if room < 12 { // an absurd status: keep what fits
			return cut(prefix+id+tail, MaxSubject)
		}
		keep := room - 3
		id = id[:keep-keep/2] + "..." + id[len(id)-keep/2:]
	}
	return prefix + id + tail
}

// Text is the notification's body: what a person reads in the email.
func (r RunEnded) Text() string {
	var b strings.Builder
	line := func(label, value string) { fmt.Fprintf(&b, "%-8s %s\n", label+":", value) }

	fmt.Fprintf(&b, "arcbench run %s ended %s.\n\n", oneLine(cmp.Or(r.RunID, "(no run id)")), oneLine(cmp.Or(r.Status, "ENDED")))
	if r.Stage != "" {
		line("Stage", oneLine(r.Stage))
	}
	line("Run", oneLine(r.RunID))
	line("Config", oneLine(cmp.Or(r.ConfigName, "-")))
	line("Status", oneLine(cmp.Or(r.Status, "-")))
	if r.Reason != "" {
		line("Reason", oneLine(r.Reason))
	}
	line("Score", r.score())
	line("Cost", r.cost())
	line("Tasks", fmt.Sprintf("%d completed, %d failed, %d not run, of %d", r.Completed, r.Failed, r.NotRun, r.Total))
	if r.Resumes > 0 {
		line("Resumed", fmt.Sprintf("%s (%d executions; active %s, %s from first start to last end)",
			times(r.Resumes), r.Resumes+1, clock(r.Active), clock(r.Span)))
	}
	if r.ReusedFrom != "" {
		line("Reused", r.reused())
	}

	if top := r.TopFailures[:min(len(r.TopFailures), MaxFailures)]; len(top) > 0 {
		b.WriteString("\nMost common failure reasons:\n")
		listed := 0
		for _, f := range top {
			fmt.Fprintf(&b, "  %d  %s\n", f.Count, oneLine(cmp.Or(f.Reason, "(no reason)")))
			listed += f.Count
		}
		if rest := r.Failed - listed; rest > 0 {
			fmt.Fprintf(&b, "  and %d more failed %s for other reasons\n", rest, plural(rest, "task", "tasks"))
		}
	}

	b.WriteString("\nTo see more:\n")
	stage := ""
	if r.Stage != "" {
		stage = " --stage " + shellWord(r.Stage)
	}
	id := shellWord(cmp.Or(r.RunID, "RUN_ID"))
	fmt.Fprintf(&b, "  arcbench results %s%s\n", id, stage)
	fmt.Fprintf(&b, "  arcbench report %s%s\n", id, stage)
	return b.String()
}

// score is the score line: the official score and, when tasks did not run,
// what it counts them as and the score over the tasks that ran.
func (r RunEnded) score() string {
	if r.Score == nil {
		return "none (no task could be scored)"
	}
	s := percent(*r.Score)
	if r.NotRun > 0 {
		s += fmt.Sprintf(", counting the %d %s not run as 0", r.NotRun, plural(r.NotRun, "task", "tasks"))
		if r.ScoreOverRun != nil {
			s += "; " + percent(*r.ScoreOverRun) + " over the tasks that ran"
		}
	}
	return s
}

// cost is the total with the tasks whose cost is not in it beside it.
func (r RunEnded) cost() string {
	if r.TotalCostUSD == "" {
		s := "unknown"
		if r.UnreadableCosts > 0 {
			s += fmt.Sprintf(" (%d %s with unreadable costs)", r.UnreadableCosts, plural(r.UnreadableCosts, "task", "tasks"))
		}
		return s
	}
	if r.ComputeCostUSD == "" && r.UnpricedJobs == 0 {
		return money.Shown(oneLine(r.TotalCostUSD), r.UnreadableCosts)
	}
	return money.Costs{ModelUSD: oneLine(r.TotalCostUSD), UnreadableCosts: r.UnreadableCosts,
		ComputeUSD: oneLine(r.ComputeCostUSD), UnpricedJobs: r.UnpricedJobs}.String()
}

// reused says which results the run took from another run, and that
// their cost is not in this run's.
func (r RunEnded) reused() string {
	from := oneLine(r.ReusedFrom)
	if r.ReusedTasks == 0 {
		return "no results of " + from + " could be reused"
	}
	return fmt.Sprintf("%d %s from %s (%s paid there, not in this run's cost)", r.ReusedTasks,
		plural(r.ReusedTasks, "task's result", "tasks' results"), from, money.Shown(oneLine(cmp.Or(r.ReusedCostUSD, "0")), 0))
}

// times is how often, in words: "once", "3 times".
func times(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

// clock is a duration as a person reads it: "42s", "3m12s", "1h02m".
func clock(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	}
	m := (s + 30) / 60
	return fmt.Sprintf("%dh%02dm", m/60, m%60)
}

func percent(f float64) string { return fmt.Sprintf("%.1f%%", f*100) }

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// oneLine puts s on one line (line breaks and other control characters
// become spaces, runs of spaces one) and cuts it at 300 characters.
func oneLine(s string) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }), " ")
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "?")
	}
	return cut(s, 300)
}

// ascii is s in printable ASCII: any other character becomes '?', control
// characters and line breaks spaces.
func ascii(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r < 0x20 || r == 0x7f:
			return ' '
		case r > 0x7e:
			return '?'
		}
		return r
	}, s)
}

// cut shortens s to n characters at most, ending it with "..." when cut.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	runes := []rune(s)
	return string(runes[:n-3]) + "..."
}

// shellWord is s as one shell word: as is when it is plainly safe, quoted
// otherwise.
func shellWord(s string) string {
	safe := s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:/+=@,", r))
	})
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
