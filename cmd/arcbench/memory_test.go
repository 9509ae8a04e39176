package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"arcbench/internal/testenv"
	"arcbench/shared/arcdata"
	"arcbench/shared/config"
	"arcbench/shared/handlers/checktask"
	"arcbench/shared/model"
)

// bigSubmission is a submission of about size bytes, in shapes that cost a
// reader memory: attempt_1 a grid of one-cell rows (a [][]int of millions of
// slices if materialized), attempt_2 an answer written as one long JSON
// string ending in the right grid.
func bigSubmission(size int) []byte {
	var b bytes.Buffer
	b.WriteString(`[{"attempt_1":{"metadata":{"pair_index":0},"answer":[[0]`)
	rows := (size/2 - 100) / 4
	for range rows {
		b.WriteString(",[0]")
	}
	b.WriteString(`]},"attempt_2":{"metadata":{"pair_index":0},"answer":"`)
	for b.Len() < size-40 {
		b.WriteString("0 ")
	}
	b.WriteString(`[[1]]"}}]`)
	return b.Bytes()
}

// check-task scores a submission at its read limit (16 MiB) inside its
// function's memory, as Lambda runs it: a process of its own (arcbench
// invoke, exactly as the handler runs on Lambda) with the GOMEMLIMIT the
// stack sets, whose peak resident memory must stay under half the
// function's. (Reading the whole document and decoding it at once peaked at
// 430–540 MiB against the function's 256.)
func TestCheckTaskScoresTheLargestSubmissionWellInsideItsMemory(t *testing.T) {
	env := testenv.Setup(t, nil)
	runID := env.NewRun(t, "big")
	task := arcdata.Task{
		Train: []arcdata.Pair{{Input: arcdata.Grid{{0}}, Output: arcdata.Grid{{0}}}},
		Test:  []arcdata.Pair{{Input: arcdata.Grid{{0}}, Output: arcdata.Grid{{1}}}},
	}
	data, _ := json.Marshal(task)
	sub := bigSubmission(checktask.MaxObjectBytes)
	if len(sub) > checktask.MaxObjectBytes || len(sub) < checktask.MaxObjectBytes-64 {
		t.Fatalf("submission of %d bytes, want just under %d", len(sub), checktask.MaxObjectBytes)
	}
	for key, body := range map[string][]byte{model.TaskDataKey("evaluation", "big"): data, model.SubmissionKey(runID, "big"): sub} {
		if _, err := testenv.DirectS3(t).PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: aws.String(env.Bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	env.PutTask(t, map[string]any{"run_id": runID, "task_id": "big", "status": "COMPLETED", "retry_count": 0,
		"cost_usd": json.Number("0.5"), "tokens_input": 100, "tokens_output": 100, "result_s3_key": model.RelativeSubmissionKey("big")})

	memory := config.FunctionMemoryMiB[model.HandlerCheckTask]
	cmd := exec.Command(binary, "invoke", model.HandlerCheckTask)
	cmd.Env = append(os.Environ(), config.EnvGoMemLimit+"="+config.GoMemLimit(memory))
	cmd.Stdin = strings.NewReader(fmt.Sprintf(`{"run_id":%q,"task_id":"big","config_name":"cfg","data_source":"evaluation","attempt":1}`, runID))
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("check-task: %v\n%s%s", err, out.String(), stderr.String())
	}
	var answer model.CheckTaskOutput
	if err := json.Unmarshal(out.Bytes(), &answer); err != nil || answer.Status != model.TaskCompleted || answer.Score == nil || *answer.Score != 1 {
		t.Fatalf("answer %s (%v), want COMPLETED with score 1 (attempt_2's string ends in the right grid)", out.String(), err)
	}
	peakMiB := float64(cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss) / 1024 // KiB on Linux
	t.Logf("check-task scored a %.1f MiB submission with a peak RSS of %.0f MiB (function memory %d MiB, GOMEMLIMIT %s)",
		float64(len(sub))/(1<<20), peakMiB, memory, config.GoMemLimit(memory))
	if peakMiB > float64(memory)/2 {
		t.Errorf("peak RSS %.0f MiB: want well inside the function's %d MiB (under half)", peakMiB, memory)
	}
}
