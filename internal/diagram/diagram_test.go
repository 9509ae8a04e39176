package diagram

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// The synthesized definitions, kept by infra's snapshot test.
const (
	runSnapshot    = "../../infra/testdata/arc-benchmark-sandbox-x.asl.json"
	reaperSnapshot = "../../infra/testdata/arc-benchmark-sandbox-x-run-reaper.asl.json"
)

// The documents the diagrams are kept in, relative to this package.
const (
	docPath    = "../../docs/state-machine.md"
	readmePath = "../../README.md"
)

// regenerate is what a failure tells the reader to run, from the repository
// root: the snapshot first, since the diagram is drawn from it.
const regenerate = "UPDATE_SNAPSHOTS=1 go test ./infra/ -run Snapshot && UPDATE_SNAPSHOTS=1 go test ./internal/diagram/"

// mustMermaid draws asl or fails the test.
func mustMermaid(t *testing.T, asl string) string {
	t.Helper()
	out, err := Mermaid([]byte(asl))
	if err != nil {
		t.Fatalf("Mermaid: %v", err)
	}
	return out
}

// assertLines fails for each want that is not a line of the diagram (its
// indentation aside): the lines a reader of the picture relies on.
func assertLines(t *testing.T, diagram string, want ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range strings.Split(diagram, "\n") {
		have[strings.TrimSpace(l)] = true
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("diagram lacks the line\n\t%s\nin\n%s", w, diagram)
		}
	}
}

func TestChoiceWithTwoRulesAndDefault(t *testing.T) {
	d := mustMermaid(t, `{
	  "StartAt": "Decide",
	  "States": {
	    "Decide": {"Type": "Choice",
	      "Choices": [
	        {"Variable": "$.status", "StringEquals": "COMPLETED", "Next": "Done"},
	        {"Variable": "$.guard.Item.stop_reason", "IsPresent": true, "Next": "Stop"}
	      ],
	      "Default": "Again"},
	    "Again": {"Type": "Pass", "Next": "Decide"},
	    "Stop": {"Type": "Fail", "Error": "Stopped"},
	    "Done": {"Type": "Succeed"}
	  }
	}`)
	assertLines(t, d,
		"flowchart TD",
		`Decide{"Decide<br/>choice"}`,
		`Decide -->|"status == COMPLETED"| Done`,
		`Decide -->|"guard.Item.stop_reason present"| Stop`,
		`Decide -->|"otherwise"| Again`,
		`Again --> Decide`,
		`Stop(["Stop<br/>fail: Stopped"])`,
		`Done(["Done<br/>succeed"])`,
		`class Stop fail`,
	)
}

func TestCompoundConditions(t *testing.T) {
	d := mustMermaid(t, `{
	  "StartAt": "C",
	  "States": {
	    "C": {"Type": "Choice", "Choices": [
	      {"And": [
	        {"Variable": "$.n", "NumericGreaterThanPath": "$.limit"},
	        {"Or": [{"Variable": "$.a", "IsNull": false}, {"Not": {"Variable": "$.b", "BooleanEquals": true}}]}
	      ], "Next": "E"}
	    ], "Default": "E"},
	    "E": {"Type": "Succeed"}
	  }
	}`)
	assertLines(t, d, `C -->|"n #gt; limit and (a is not null or (not b == true))"| E`)
}

func TestCatchIsADashedEdge(t *testing.T) {
	d := mustMermaid(t, `{
	  "StartAt": "Work",
	  "States": {
	    "Work": {"Type": "Task", "Resource": "arn:${AWS::Partition}:states:::dynamodb:updateItem",
	      "Catch": [
	        {"ErrorEquals": ["DynamoDB.ConditionalCheckFailedException", "States.Timeout"], "Next": "Done"},
	        {"ErrorEquals": ["States.ALL"], "Next": "Failed"}
	      ],
	      "Next": "Done"},
	    "Done": {"Type": "Pass", "End": true},
	    "Failed": {"Type": "Fail"}
	  }
	}`)
	assertLines(t, d,
		`Work["Work<br/>DynamoDB UpdateItem"]`,
		`Work --> Done`,
		`Work -.->|"catch DynamoDB.ConditionalCheckFailedException, States.Timeout"| Done`,
		`Work -.->|"catch States.ALL"| Failed`,
		`Done --> machine_end`,
		`machine_end(["end"])`,
	)
}

func TestRetryIsNotedInTheNode(t *testing.T) {
	d := mustMermaid(t, `{
	  "StartAt": "Call",
	  "States": {
	    "Call": {"Type": "Task", "Resource": "arn:${AWS::Partition}:states:::lambda:invoke",
	      "Parameters": {"FunctionName": "${FunctionsCheckTaskFC9F19FE.Arn}", "Payload.$": "$"},
	      "Retry": [
	        {"ErrorEquals": ["ServiceError", "Lambda.TooManyRequestsException"], "MaxAttempts": 5},
	        {"ErrorEquals": ["States.Timeout"]}
	      ],
	      "End": true}
	  }
	}`)
	assertLines(t, d,
		`Call["Call<br/>Lambda<br/>retries ServiceError, Lambda.TooManyRequestsException ×5<br/>retries States.Timeout ×3"]`)
	if strings.Contains(d, "FunctionsCheckTask") {
		t.Errorf("the function's logical id is noise, yet it is in\n%s", d)
	}
}

func TestDistributedMapIsASubgraph(t *testing.T) {
	d := mustMermaid(t, `{
	  "StartAt": "Fan",
	  "States": {
	    "Fan": {"Type": "Map", "Label": "tasks", "MaxConcurrency": 4,
	      "ItemProcessor": {
	        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
	        "StartAt": "RunOne",
	        "States": {"RunOne": {"Type": "Task", "Resource": "arn:aws:states:::batch:submitJob.sync", "End": true}}
	      },
	      "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Oops"}],
	      "Next": "After"},
	    "After": {"Type": "Wait", "Seconds": 10, "End": true},
	    "Oops": {"Type": "Fail"}
	  }
	}`)
	assertLines(t, d,
		`subgraph Fan ["Fan: Distributed Map, one child execution per task, MaxConcurrency 4"]`,
		`direction TB`,
		`Fan_start(["start"])`,
		`RunOne["RunOne<br/>Batch job (.sync)"]`,
		`Fan_start --> RunOne`,
		`RunOne --> Fan_end`,
		`end`,
		`Fan --> After`,
		`Fan -.->|"catch States.ALL"| Oops`,
		`After["After<br/>wait 10 s"]`,
	)
	// The subgraph must hold its states: declared between its header and end.
	inner := d[strings.Index(d, "subgraph Fan"):]
	inner = inner[:strings.Index(inner, "\n    end\n")]
	if !strings.Contains(inner, "RunOne[") {
		t.Errorf("RunOne is not declared inside the Fan subgraph:\n%s", d)
	}
}

func TestIdsAreUniqueAcrossScopes(t *testing.T) {
	// ASL names are unique per scope only: an inner state may repeat an outer
	// name, and names may hold characters a Mermaid id cannot.
	d := mustMermaid(t, `{
	  "StartAt": "Do it",
	  "States": {
	    "Do it": {"Type": "Map", "ItemProcessor": {"StartAt": "Do it", "States": {"Do it": {"Type": "Pass", "End": true}}}, "Next": "end"},
	    "end": {"Type": "Succeed"}
	  }
	}`)
	assertLines(t, d,
		`subgraph Do_it ["Do it: Map (inline)"]`,
		`Do_it_2["Do it<br/>pass"]`,
		`Do_it --> s_end`,
		`s_end(["end<br/>succeed"])`,
	)
}

func TestLabelsAreEscaped(t *testing.T) {
	d := mustMermaid(t, `{
	  "StartAt": "Say \"hi\" | <b>",
	  "States": {
	    "Say \"hi\" | <b>": {"Type": "Choice",
	      "Choices": [{"Variable": "$.x", "StringEquals": "a|\"b\"", "Next": "Done"}],
	      "Default": "Done"},
	    "Done": {"Type": "Succeed"}
	  }
	}`)
	assertLines(t, d,
		`Say__hi_____b_{"Say #quot;hi#quot; #124; #lt;b#gt;<br/>choice"}`,
		`Say__hi_____b_ -->|"x == a#124;#quot;b#quot;"| Done`,
	)
	for _, l := range strings.Split(d, "\n") {
		if strings.Count(l, `"`)%2 != 0 || strings.Count(l, "|") > 2 {
			t.Errorf("unescaped quote or pipe in %q", l)
		}
	}
}

func TestTaskKinds(t *testing.T) {
	for resource, want := range map[string]string{
		"arn:${AWS::Partition}:states:::lambda:invoke":                     "Lambda",
		"arn:aws:states:::lambda:invoke.waitForTaskToken":                  "Lambda (.waitForTaskToken)",
		"arn:${AWS::Partition}:states:::batch:submitJob.sync":              "Batch job (.sync)",
		"arn:${AWS::Partition}:states:::dynamodb:getItem":                  "DynamoDB GetItem",
		"arn:${AWS::Partition}:states:::aws-sdk:dynamodb:query":            "DynamoDB Query (SDK)",
		"arn:${AWS::Partition}:states:::s3:getObject":                      "S3 GetObject",
		"arn:aws:states:::states:startExecution.sync:2":                    "Step Functions StartExecution (.sync:2)",
		"arn:aws:lambda:eu-west-1:123456789012:function:f":                 "Lambda",
		"arn:aws:states:eu-west-1:123456789012:activity:a":                 "activity",
		"${FunctionsCheckTaskFC9F19FE.Arn}":                                "task",
		"arn:aws:states:::someservice:doThing":                             "someservice DoThing",
		"arn:aws-us-gov:states:::sns:publish":                              "SNS Publish",
		"arn:${AWS::Partition}:states:::aws-sdk:s3:listObjectsV2":          "S3 ListObjectsV2 (SDK)",
		"arn:${AWS::Partition}:states:::events:putEvents.waitForTaskToken": "EventBridge PutEvents (.waitForTaskToken)",
	} {
		if got := taskKind(resource); got != want {
			t.Errorf("taskKind(%q) = %q, want %q", resource, got, want)
		}
	}
}

func TestDanglingTransitionIsAnError(t *testing.T) {
	_, err := Mermaid([]byte(`{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Nowhere"}}}`))
	if err == nil || !strings.Contains(err.Error(), "Nowhere") {
		t.Errorf("want an error naming the missing state, got %v", err)
	}
	if _, err := Mermaid([]byte(`not json`)); err == nil {
		t.Error("want an error for JSON that is not a definition")
	}
}

func TestOutputIsDeterministic(t *testing.T) {
	asl := readFile(t, runSnapshot)
	first := mustMermaid(t, asl)
	for range 20 { // map iteration order varies run to run: try it often
		if again := mustMermaid(t, asl); again != first {
			t.Fatalf("two drawings of the same definition differ:\n%s", firstDifference(first, again))
		}
	}
}

// TestSnapshotDiagramShowsTheRun checks the per-task flow of the real
// state machine, as a reviewer would look for it.
func TestSnapshotDiagramShowsTheRun(t *testing.T) {
	d := mustMermaid(t, readFile(t, runSnapshot))
	assertLines(t, d,
		`subgraph ProcessTasks ["ProcessTasks: Distributed Map, one child execution per task, MaxConcurrency 16, items from S3 GetObject"]`,
		`CheckRun --> RunStopped`,
		`RunStopped -->|"run_guard.Item.stop_reason present"| MarkNotRun`,
		`RunStopped -->|"otherwise"| RunTask`,
		`RunTask --> CheckTask`,
		`RunTask -.->|"catch States.ALL"| CheckTask`,
		`TaskCompleted -->|"status == COMPLETED"| TaskFinished`,
		`TaskCompleted -->|"otherwise"| HandleError`,
		`RetryOrGiveUp -->|"handled.status == RETRY_SCHEDULED"| PlanRetry`,
		`WaitBeforeRetry["WaitBeforeRetry<br/>wait, seconds from wait_seconds"]`,
		`WaitBeforeRetry --> CheckRun`,
		`TaskFinished --> ProcessTasks_end`,
		`ProcessTasks -.->|"catch States.ALL"| MarkRunFailed`,
		`Complete --> machine_end`,
		`RunFailed(["RunFailed<br/>fail"])`,
	)
	for _, prefix := range []string{`CheckRun["CheckRun<br/>DynamoDB GetItem<br/>`, `CheckTask["CheckTask<br/>Lambda<br/>`, `RunTask["RunTask<br/>Batch job (.sync)<br/>`} {
		if !strings.Contains(d, prefix) {
			t.Errorf("diagram lacks %s", prefix)
		}
	}
}

// TestChangedFlowChangesDiagram shows that the staleness check catches a
// change of flow: TaskCompleted's default moved from HandleError to
// TaskFinished changes exactly that edge, so the docs no longer match.
func TestChangedFlowChangesDiagram(t *testing.T) {
	asl := readFile(t, runSnapshot)
	var def map[string]any
	if err := json.Unmarshal([]byte(asl), &def); err != nil {
		t.Fatal(err)
	}
	inner := def["States"].(map[string]any)["ProcessTasks"].(map[string]any)["ItemProcessor"].(map[string]any)
	inner["States"].(map[string]any)["TaskCompleted"].(map[string]any)["Default"] = "TaskFinished"
	changed, err := json.Marshal(def)
	if err != nil {
		t.Fatal(err)
	}
	before, after := mustMermaid(t, asl), mustMermaid(t, string(changed))
	assertLines(t, after, `TaskCompleted -->|"otherwise"| TaskFinished`)
	if strings.Contains(after, `TaskCompleted -->|"otherwise"| HandleError`) {
		t.Errorf("the old default edge is still drawn:\n%s", after)
	}
	if before == after {
		t.Fatal("the diagram did not change with the flow")
	}
	// HandleError and its successors are now unreachable, yet still drawn.
	assertLines(t, after, `HandleError --> RetryOrGiveUp`)

	doc := "<!-- state-machine:begin -->" + fenced(before) + "<!-- state-machine:end -->\n"
	if err := compareBlock("doc", doc, "state-machine", fenced(before)); err != nil {
		t.Errorf("the current diagram should match: %v", err)
	}
	err = compareBlock("doc", doc, "state-machine", fenced(after))
	if err == nil || !strings.Contains(err.Error(), regenerate) || !strings.Contains(err.Error(), "TaskCompleted") {
		t.Errorf("want a staleness error naming the changed edge and how to regenerate, got %v", err)
	}
}

// block is one diagram kept in the docs: its marker name, the heading of
// its section, and the definition it is drawn from.
type block struct {
	marker, title, snapshot string
}

var blocks = []block{
	{"state-machine", "The run's state machine", runSnapshot},
	{"run-reaper", "The run reaper", reaperSnapshot},
}

// TestStateMachineDiagramIsCurrent fails when docs/state-machine.md (or a
// README that carries the state-machine markers) does not show the
// diagrams of the synthesized definitions; UPDATE_SNAPSHOTS=1 rewrites them.
func TestStateMachineDiagramIsCurrent(t *testing.T) {
	want := map[string]string{}
	for _, b := range blocks {
		want[b.marker] = fenced(mustMermaid(t, readFile(t, b.snapshot)))
	}
	update := os.Getenv("UPDATE_SNAPSHOTS") != ""

	if update {
		doc, err := os.ReadFile(docPath)
		if os.IsNotExist(err) {
			doc, err = []byte(docIntro), nil
		}
		if err != nil {
			t.Fatal(err)
		}
		text := string(doc)
		for _, b := range blocks {
			text = setBlock(text, b, want[b.marker])
		}
		writeIfChanged(t, docPath, string(doc), text)
	} else {
		doc, err := os.ReadFile(docPath)
		if err != nil {
			t.Fatalf("%v; create it with: %s", err, regenerate)
		}
		for _, b := range blocks {
			if err := compareBlock(docPath, string(doc), b.marker, want[b.marker]); err != nil {
				t.Error(err)
			}
		}
	}

	// The README carries the run's diagram only if its author put the
	// markers in; without them there is nothing to keep current.
	readme, err := os.ReadFile(readmePath)
	if err != nil || !strings.Contains(string(readme), beginMarker("state-machine")) {
		return
	}
	if update {
		text, _ := replaceBlock(string(readme), "state-machine", want["state-machine"])
		writeIfChanged(t, readmePath, string(readme), text)
		return
	}
	if err := compareBlock(readmePath, string(readme), "state-machine", want["state-machine"]); err != nil {
		t.Error(err)
	}
}

// docIntro starts docs/state-machine.md when it does not exist; the
// diagrams' sections are appended to it.
const docIntro = "# The state machines\n\n" +
	"These pictures show the AWS Step Functions state machines that the CDK app in `infra/` synthesizes: " +
	"the run's workflow (one execution per benchmark run, whose Distributed Map runs each task in a child execution) " +
	"and the run reaper (which marks a run failed when its execution ends abnormally).\n\n" +
	"They are generated, not drawn by hand: `internal/diagram` turns the Amazon States Language definitions " +
	"that infra's snapshot test keeps in `infra/testdata/*.asl.json` into Mermaid, and its test " +
	"`TestStateMachineDiagramIsCurrent` fails when the blocks below no longer match them. " +
	"After changing the workflow, regenerate the snapshots and the pictures from the repository root with\n\n" +
	"    " + regenerate + "\n\n" +
	"How to read them:\n\n" +
	"- a box is a state, with its kind below its name (Lambda, Batch job (.sync), DynamoDB GetItem, pass, wait, ...);\n" +
	"- a solid arrow is the state's `Next`; `start` and `end` mark where a flow begins and where its `End` states lead;\n" +
	"- a diamond is a Choice: each arrow out of it is labelled with its rule's condition, and `otherwise` is its Default;\n" +
	"- a dashed arrow labelled `catch ...` is a Catch, taken when the state fails with one of the errors named;\n" +
	"- `retries A, B ×N` in a box is a Retry: the state is retried up to N times on those errors before any catch applies;\n" +
	"- a frame around states is a Map, holding the states each item runs through; arrows from the frame leave the whole Map;\n" +
	"- a red stadium is a Fail state.\n"

func beginMarker(name string) string { return "<!-- " + name + ":begin -->" }
func endMarker(name string) string   { return "<!-- " + name + ":end -->" }

// fenced is what the docs hold between a diagram's markers.
func fenced(diagram string) string {
	return "\n```mermaid\n" + diagram + "```\n"
}

// findBlock returns the text between name's markers in doc.
func findBlock(doc, name string) (start, end int, ok bool) {
	b := strings.Index(doc, beginMarker(name))
	if b < 0 {
		return 0, 0, false
	}
	start = b + len(beginMarker(name))
	e := strings.Index(doc[start:], endMarker(name))
	if e < 0 {
		return 0, 0, false
	}
	return start, start + e, true
}

// compareBlock says whether doc holds content between name's markers, and
// if not, where it differs and how to regenerate it.
func compareBlock(path, doc, name, content string) error {
	start, end, ok := findBlock(doc, name)
	if !ok {
		return fmt.Errorf("%s lacks the %s and %s markers; regenerate it with: %s",
			path, beginMarker(name), endMarker(name), regenerate)
	}
	if got := doc[start:end]; got != content {
		return fmt.Errorf("%s: the %s diagram is stale, it no longer matches the synthesized state machine; regenerate it with: %s\n%s",
			path, name, regenerate, firstDifference(got, content))
	}
	return nil
}

// replaceBlock puts content between name's markers in doc.
func replaceBlock(doc, name, content string) (string, bool) {
	start, end, ok := findBlock(doc, name)
	if !ok {
		return doc, false
	}
	return doc[:start] + content + doc[end:], true
}

// setBlock replaces b's diagram in doc, or appends a section for it.
func setBlock(doc string, b block, content string) string {
	if out, ok := replaceBlock(doc, b.marker, content); ok {
		return out
	}
	return strings.TrimRight(doc, "\n") + "\n\n## " + b.title + "\n\n" +
		beginMarker(b.marker) + content + endMarker(b.marker) + "\n"
}

func writeIfChanged(t *testing.T, path, old, text string) {
	t.Helper()
	if old == text {
		return
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("rewrote %s", path)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v; the snapshots are written by: %s", err, regenerate)
	}
	return string(b)
}

// firstDifference shows the first differing line of two texts, with a
// little context: "-" for what is kept, "+" for what is drawn now.
func firstDifference(kept, drawn string) string {
	w, g := strings.Split(kept, "\n"), strings.Split(drawn, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		if i < len(w) && i < len(g) && w[i] == g[i] {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "first difference at line %d of the block:\n", i+1)
		for j := max(0, i-2); j < i; j++ {
			fmt.Fprintf(&b, "  %s\n", w[j])
		}
		for j := i; j < min(i+3, len(w)); j++ {
			fmt.Fprintf(&b, "- %s\n", w[j])
		}
		for j := i; j < min(i+3, len(g)); j++ {
			fmt.Fprintf(&b, "+ %s\n", g[j])
		}
		return b.String()
	}
	return ""
}

func TestSetBlockReplacesOrAppends(t *testing.T) {
	b := block{"run-reaper", "The run reaper", reaperSnapshot}
	doc := "# Doc\n\nintro\n"
	appended := setBlock(doc, b, fenced("flowchart TD\n    A\n"))
	want := "# Doc\n\nintro\n\n## The run reaper\n\n<!-- run-reaper:begin -->\n```mermaid\nflowchart TD\n    A\n```\n<!-- run-reaper:end -->\n"
	if appended != want {
		t.Fatalf("appended:\n%s\nwant:\n%s", appended, want)
	}
	replaced := setBlock(appended+"\nafter\n", b, fenced("flowchart TD\n    B\n"))
	if !strings.Contains(replaced, "```mermaid\nflowchart TD\n    B\n```\n<!-- run-reaper:end -->\n\nafter\n") || strings.Contains(replaced, "    A\n") {
		t.Errorf("replaced:\n%s", replaced)
	}
	if err := compareBlock("doc", doc, "run-reaper", fenced("x")); err == nil || !strings.Contains(err.Error(), regenerate) {
		t.Errorf("a doc without markers should fail with how to regenerate, got %v", err)
	}
}
