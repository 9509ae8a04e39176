package initialize_test

import (
	"context"
	"fmt"
	"testing"

	"arcbench/internal/testenv"
	"arcbench/shared/handlers"
	"arcbench/shared/model"
)

// A run initialize creates is one RunStarted by its configuration; a
// repeated call that finds the run it made (a retried state) counts
// nothing more.
func TestRunStartedOncePerRunCreated(t *testing.T) {
	env := testenv.Setup(t, map[string]string{"CLOUDWATCH_NAMESPACE": "ArcTest"})
	h := handlers.NewInitialize(env.Deps)
	in := model.InitializeInput{ConfigName: "cfg-x", TaskIDs: []string{"a", "b"},
		ExecutionID: "arn:aws:states:us-east-1:000000000000:execution:arc-benchmark-test:e1", ExecutionStartTime: "2026-12-05T10:00:00Z"}
	for range 3 {
		if _, err := h.Handle(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, p := range env.CloudWatch.Puts() {
		for _, d := range p.MetricData {
			got = append(got, fmt.Sprintf("%s %s %v %s %v", p.Namespace, d.MetricName, d.Value, d.Unit, d.Dimensions))
		}
	}
	if want := "[ArcTest RunStarted 1 Count [{ConfigName cfg-x}]]"; fmt.Sprint(got) != want {
		t.Errorf("published %v, want %s", got, want)
	}
}
