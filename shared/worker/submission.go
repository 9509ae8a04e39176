package worker

import (
	"encoding/json"
	"fmt"

	"arcbench/shared/arcdata"
)

// Submission is the benchmark's submission file,
// <S3_PREFIX>/submissions/<TASK_ID>.json: one element per test pair that got
// an answer (the benchmark's worker leaves out a pair with none, so place
// each by its PairIndex). The field names are the benchmark's.
type Submission []PairAttempts

// PairAttempts are the answers to one test pair; either may be null.
type PairAttempts struct {
	Attempt1 *Attempt `json:"attempt_1"`
	Attempt2 *Attempt `json:"attempt_2"`
}

// Attempt is one answer to a test pair.
type Attempt struct {
	Answer arcdata.Grid `json:"answer"`
	// Correct is null unless the task data holds the pair's output.
	Correct  *bool           `json:"correct"`
	Metadata AttemptMetadata `json:"metadata"`
}

// AttemptMetadata describes the model call behind an answer.
type AttemptMetadata struct {
	Model            string            `json:"model"`
	Provider         string            `json:"provider"`
	StartTimestamp   string            `json:"start_timestamp"`
	EndTimestamp     string            `json:"end_timestamp"`
	Choices          []json.RawMessage `json:"choices"`
	ReasoningSummary *string           `json:"reasoning_summary"`
	Kwargs           map[string]any    `json:"kwargs"`
	Usage            TokenUsage        `json:"usage"`
	Cost             Cost              `json:"cost"`
	TaskID           string            `json:"task_id"`
	PairIndex        int               `json:"pair_index"`
	TestID           string            `json:"test_id"` // the config name
}

// TokenUsage is a model call's tokens, in the OpenAI SDK's shape.
type TokenUsage struct {
	PromptTokens            int                     `json:"prompt_tokens"`
	CompletionTokens        int                     `json:"completion_tokens"`
	TotalTokens             int                     `json:"total_tokens"`
	CompletionTokensDetails CompletionTokensDetails `json:"completion_tokens_details"`
}

// CompletionTokensDetails breaks down the completion tokens.
type CompletionTokensDetails struct {
	ReasoningTokens          int `json:"reasoning_tokens"`
	AcceptedPredictionTokens int `json:"accepted_prediction_tokens"`
	RejectedPredictionTokens int `json:"rejected_prediction_tokens"`
}

// Cost is a model call's cost in dollars. json.Number keeps the digits: ours
// are exact, the benchmark's are floats (0.00011220000000000002).
type Cost struct {
	PromptCost     json.Number  `json:"prompt_cost"`
	CompletionCost json.Number  `json:"completion_cost"`
	ReasoningCost  *json.Number `json:"reasoning_cost"`
	TotalCost      json.Number  `json:"total_cost"`
}

// BaselineModel is the model and provider the built-in worker names: its
// "model" is arcdata.Solve, and its rate-limit bucket is this provider's.
const BaselineModel = "baseline"

// Pricing of the baseline "model", in millionths of a dollar per token.
const (
	MicroUSDPerInputToken  = 3
	MicroUSDPerOutputToken = 15
	// PromptOverheadTokens stands for the instructions around the grids.
	PromptOverheadTokens = 64
)

// GridTokens is what a grid "costs" the baseline: one token per cell and per row.
func GridTokens(g arcdata.Grid) int { return arcdata.Cells(g) + len(g) }

// PairUsage is the tokens of the model call for test pair i: the prompt
// shows PromptOverheadTokens, every train input and output and the pair's
// test input; the completion is the prediction.
func PairUsage(task arcdata.Task, i int, prediction arcdata.Grid) (prompt, completion int) {
	prompt = PromptOverheadTokens + GridTokens(task.Test[i].Input)
	for _, p := range task.Train {
		prompt += GridTokens(p.Input) + GridTokens(p.Output)
	}
	return prompt, GridTokens(prediction)
}

// Usage is the tokens of a task's model calls, one per test pair, summed:
// what the task's tokens_input and tokens_output record.
func Usage(task arcdata.Task, predictions [][][]int) (tokensInput, tokensOutput int) {
	for i, g := range predictions {
		in, out := PairUsage(task, i, g)
		tokensInput += in
		tokensOutput += out
	}
	return tokensInput, tokensOutput
}

// CostUSD is the exact decimal cost of the tokens ("0.004755"), computed in
// integer millionths of a dollar: never through float64. A task's cost is
// CostUSD of its summed tokens, which is the sum of its pairs' costs.
func CostUSD(tokensInput, tokensOutput int) string {
	micro := int64(tokensInput)*MicroUSDPerInputToken + int64(tokensOutput)*MicroUSDPerOutputToken
	s := fmt.Sprintf("%d.%06d", micro/1_000_000, micro%1_000_000)
	for s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	if s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s
}

// newAttempt is an answer to test pair i, made between start and end and
// billed prompt and completion tokens.
func newAttempt(c Config, task arcdata.Task, i int, answer arcdata.Grid, prompt, completion int, start, end string) *Attempt {
	var correct *bool
	if want := task.Test[i].Output; want != nil {
		ok := arcdata.Equal(answer, want)
		correct = &ok
	}
	return &Attempt{
		Answer:  answer,
		Correct: correct,
		Metadata: AttemptMetadata{
			Model:          BaselineModel,
			Provider:       BaselineModel,
			StartTimestamp: start,
			EndTimestamp:   end,
			Choices:        []json.RawMessage{},
			Kwargs:         map[string]any{},
			Usage: TokenUsage{
				PromptTokens:     prompt,
				CompletionTokens: completion,
				TotalTokens:      prompt + completion,
			},
			Cost: Cost{
				PromptCost:     json.Number(CostUSD(prompt, 0)),
				CompletionCost: json.Number(CostUSD(0, completion)),
				TotalCost:      json.Number(CostUSD(prompt, completion)),
			},
			TaskID:    c.TaskID,
			PairIndex: i,
			TestID:    c.ConfigName,
		},
	}
}
