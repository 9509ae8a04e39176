package model_test

import (
	"testing"
	"time"

	"arcbench/shared/model"
)

func TestParseTimeReadsOursAndPythonsISOFormat(t *testing.T) {
	want := time.Date(2026, 12, 2, 0, 48, 51, 674977000, time.UTC)
	for _, s := range []string{
		"2026-12-02T00:48:51.674977+00:00", // Python isoformat() of an aware UTC time (the worker's)
		"2026-12-02T00:48:51.674977",       // of a naive one
		"2026-12-02 00:48:51.674977+00:00", // str() of an aware one
		"2026-12-02T01:48:51.674977+01:00",
		"2026-12-02T00:48:51.674977Z",
	} {
		got, err := model.ParseTime(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	ours := model.FormatTime(want)
	if got, err := model.ParseTime(ours); err != nil || !got.Equal(want.Truncate(time.Millisecond)) {
		t.Errorf("ParseTime(%q) = %v, %v", ours, got, err)
	}
	for _, bad := range []string{"", "yesterday", "2026-13-02T00:00:00"} {
		if _, err := model.ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}

func TestResolveResultKey(t *testing.T) {
	for key, want := range map[string]string{
		"submissions/t1.json":            "runs/r1/submissions/t1.json", // the worker's, relative to S3_PREFIX
		"/submissions/t1.json":           "runs/r1/submissions/t1.json",
		"runs/r1/submissions/t1.json":    "runs/r1/submissions/t1.json",
		"runs/other/submissions/t1.json": "runs/r1/runs/other/submissions/t1.json",
		"":                               "",
	} {
		if got := model.ResolveResultKey("r1", key); got != want {
			t.Errorf("ResolveResultKey(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestCountsScoreIsTheMeanOverScorableTasks(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	var c model.Counts
	for _, o := range []model.TaskOutcome{
		{Status: model.TaskCompleted, Correct: true, Score: f(1)},
		{Status: model.TaskCompleted, Score: f(0.5)},
		{Status: model.TaskCompleted, Unscored: true},
		{Status: model.TaskCompleted},       // not checked yet: counts 0
		{Status: model.TaskFailedPermanent}, // counts 0
		{Status: model.TaskInProgress},      // counts 0
	} {
		c.Add(o)
	}
	if c.Scored() != 5 || c.Unscored != 1 || c.Completed != 4 || c.Failed != 1 || c.Pending != 1 {
		t.Fatalf("counts %+v", c)
	}
	if s := c.Score(); s == nil || *s != 1.5/5 {
		t.Errorf("score %v, want 0.3", s)
	}
	if c.Accuracy() != 0.25 {
		t.Errorf("accuracy %v, want 1/4", c.Accuracy())
	}
	var none model.Counts
	none.Add(model.TaskOutcome{Status: model.TaskCompleted, Unscored: true})
	if none.Score() != nil {
		t.Error("a run with nothing to score has a score")
	}
}
