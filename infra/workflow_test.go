package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"arcbench/shared/config"
	"arcbench/shared/model"
)

// stateMachine returns the named state machine's properties and parsed definition.
func stateMachine(t *testing.T, s *synthesized, name string) (map[string]interface{}, map[string]interface{}) {
	t.Helper()
	_, sm := one(t, s.json, "AWS::StepFunctions::StateMachine", "StateMachineName", name)
	return props(sm), definition(t, sm)
}

// next is where a state goes on success ("" when it ends the flow).
func next(st map[string]interface{}) string {
	n, _ := st["Next"].(string)
	return n
}

// catches are a state's Catch targets by error name.
func catches(st map[string]interface{}) map[string]string {
	out := map[string]string{}
	for _, c := range list(st["Catch"]) {
		c, ok := c.(map[string]interface{})
		if !ok {
			continue
		}
		for _, e := range c["ErrorEquals"].([]interface{}) {
			out[e.(string)] = c["Next"].(string)
		}
	}
	return out
}

// presence writes a field's value, or that it is absent.
func presence(ok bool, v interface{}) string {
	if !ok {
		return "absent"
	}
	return jsonText(v)
}

func jsonText(v interface{}) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}

func TestStateMachine(t *testing.T) {
	s := synth(t, snapshotStage)
	p, def := stateMachine(t, s, "arc-benchmark-"+snapshotStage)
	if p["StateMachineType"] != "STANDARD" || p["TracingConfiguration"] == nil || def["TimeoutSeconds"] != float64(12*3600) {
		t.Errorf("type %v, tracing %v, timeout %v: want STANDARD, X-Ray, 12 h",
			p["StateMachineType"], p["TracingConfiguration"], def["TimeoutSeconds"])
	}
	if logging := jsonText(p["LoggingConfiguration"]); !strings.Contains(logging, `"Level":"ALL"`) || !strings.Contains(logging, `"IncludeExecutionData":true`) {
		t.Errorf("logging %s: want ALL with execution data", logging)
	}

	all := states(t, def)
	// Every transition lands on a state of the same graph.
	var checkGraph func(graph map[string]interface{})
	checkGraph = func(graph map[string]interface{}) {
		own := graph["States"].(map[string]interface{})
		if _, ok := own[graph["StartAt"].(string)]; !ok {
			t.Errorf("StartAt %v is not a state of its graph", graph["StartAt"])
		}
		for name, st := range own {
			st := st.(map[string]interface{})
			targets := []string{next(st), fmt.Sprint(st["Default"])}
			for _, c := range catches(st) {
				targets = append(targets, c)
			}
			for _, ch := range list(st["Choices"]) {
				if ch, ok := ch.(map[string]interface{}); ok {
					targets = append(targets, ch["Next"].(string))
				}
			}
			for _, to := range targets {
				if _, ok := own[to]; to != "" && to != "<nil>" && !ok {
					t.Errorf("%s goes to %q, not a state of its graph", name, to)
				}
			}
			if proc, ok := st["ItemProcessor"].(map[string]interface{}); ok {
				checkGraph(proc)
			}
		}
	}
	checkGraph(def)

	t.Run("main flow", func(t *testing.T) {
		if def["StartAt"] != "StampExecution" {
			t.Errorf("StartAt %v", def["StartAt"])
		}
		for from, to := range map[string]string{
			"StampExecution": "Initialize", "Initialize": "ProcessTasks", "ProcessTasks": "Aggregate",
			"Aggregate": "Complete", "Complete": "", "MarkRunFailed": "RunFailed",
		} {
			if got := next(all[from]); got != to {
				t.Errorf("%s -> %q, want %q", from, got, to)
			}
		}
		if all["Complete"]["End"] != true || all["RunFailed"]["Type"] != "Fail" {
			t.Error("Complete must end the flow, RunFailed must be a Fail state")
		}
		stamp := jsonText(all["StampExecution"]["Parameters"])
		for _, want := range []string{`"execution_id.$":"$$.Execution.Id"`, `"execution_start_time.$":"$$.Execution.StartTime"`, `"input.$":"$"`} {
			if !strings.Contains(stamp, want) {
				t.Errorf("StampExecution parameters %s lack %s", stamp, want)
			}
		}
		if got := jsonText(all["Initialize"]["Parameters"]); !strings.Contains(got, `"Payload.$":"States.JsonMerge($.input, $.execution, false)"`) {
			t.Errorf("Initialize parameters %s: want the input merged with the execution's id and start time", got)
		}
		// After Initialize, whatever fails marks the run FAILED.
		for _, name := range []string{"ProcessTasks", "Aggregate", "Complete"} {
			if got := catches(all[name])["States.ALL"]; got != "MarkRunFailed" {
				t.Errorf("%s catches States.ALL into %q, want MarkRunFailed", name, got)
			}
		}
		mark := jsonText(all["MarkRunFailed"])
		// Only while the run is this execution's: a run resumed since is the new one's.
		for _, want := range []string{`"ConditionExpression":"#status = :running AND #execution = :execution"`, `":execution":{"S.$":"$$.Execution.Id"}`,
			`":failed":{"S":"` + model.RunFailed + `"}`, `"S.$":"$.run_id"`, `dynamodb:updateItem`} {
			if !strings.Contains(mark, want) {
				t.Errorf("MarkRunFailed lacks %s: %s", want, mark)
			}
		}
	})

	t.Run("map", func(t *testing.T) {
		m := all["ProcessTasks"]
		if m["Type"] != "Map" || m["MaxConcurrency"] != float64(16) {
			t.Errorf("ProcessTasks: type %v, concurrency %v", m["Type"], m["MaxConcurrency"])
		}
		// The task list is read from the bucket (never carried in state) and
		// the children's results are written there.
		reader := jsonText(m["ItemReader"])
		for _, want := range []string{`"Key.$":"$.items_key"`, `"InputType":"JSON"`, `:states:::s3:getObject"`} {
			if !strings.Contains(reader, want) {
				t.Errorf("ProcessTasks ItemReader %s lacks %s", reader, want)
			}
		}
		if _, inline := m["ItemsPath"]; inline {
			t.Errorf("ProcessTasks takes its items from the state (ItemsPath %v)", m["ItemsPath"])
		}
		if writer := jsonText(m["ResultWriter"]); !strings.Contains(writer, `"Prefix":"`+model.MapResultsPrefix+`"`) {
			t.Errorf("ProcessTasks ResultWriter %s, want results under %s", writer, model.MapResultsPrefix)
		}
		if v, ok := m["ResultPath"]; !ok || v != nil {
			t.Errorf("ProcessTasks ResultPath is %s, want null: iteration results must not pile up", presence(ok, v))
		}
		proc := m["ItemProcessor"].(map[string]interface{})
		if got := jsonText(proc["ProcessorConfig"]); got != `{"ExecutionType":"STANDARD","Mode":"DISTRIBUTED"}` {
			t.Errorf("ProcessorConfig %s", got)
		}
		// Each item is a model.TaskItem at the first attempt initialize
		// numbered (1 in a new run, past its earlier ones in a resumed run).
		want := map[string]interface{}{
			"run_id.$": "$.run_id", "task_id.$": "$$.Map.Item.Value.task_id", "config_name.$": "$.config_name", "data_source.$": "$.data_source",
			"attempt.$": "$$.Map.Item.Value.attempt", "attempt_base.$": "$$.Map.Item.Value.attempt_base", "job_name.$": "$$.Map.Item.Value.job_name",
		}
		if got := jsonText(m["ItemSelector"]); got != jsonText(want) {
			t.Errorf("ItemSelector %s, want %s", got, jsonText(want))
		}
	})

	t.Run("task iteration", func(t *testing.T) {
		run := all["RunTask"]
		if !strings.HasSuffix(run["Resource"].(string), ":states:::batch:submitJob.sync") {
			t.Errorf("RunTask resource %v", run["Resource"])
		}
		// The job description goes to CheckTask (its compute is priced from
		// it) and no further: CheckTask's output is its answer alone.
		if v, ok := run["ResultPath"]; !ok || v != "$."+model.FieldJob {
			t.Errorf("RunTask ResultPath is %s, want $.%s for CheckTask", presence(ok, v), model.FieldJob)
		}
		if got := all["CheckTask"]["OutputPath"]; got != "$.Payload" {
			t.Errorf("CheckTask OutputPath %v, want $.Payload: the job description is not carried on", got)
		}
		// Each job is named <config>-<task_id> (model.JobName, from the item).
		if got := run["Parameters"].(map[string]interface{})["JobName.$"]; got != "$.job_name" {
			t.Errorf(`RunTask JobName.$ %v, want "$.job_name"`, got)
		}
		env := jsonText(run["Parameters"].(map[string]interface{})["ContainerOverrides"])
		for _, kv := range [][2]string{
			{config.WorkerEnvRunID, "run_id"}, {config.WorkerEnvTaskID, "task_id"},
			{config.WorkerEnvConfigName, "config_name"}, {config.WorkerEnvDataSource, "data_source"},
		} {
			if want := fmt.Sprintf(`{"Name":%q,"Value.$":"$.%s"}`, kv[0], kv[1]); !strings.Contains(env, want) {
				t.Errorf("RunTask overrides %s lack %s", env, want)
			}
		}
		// The worker reads <S3_TASKS_PREFIX>/<task_id>.json: the data source's folder.
		if want := fmt.Sprintf(`{"Name":%q,"Value.$":"States.Format('%s/{}', $.data_source)"}`, config.WorkerEnvTasksPrefix, model.TaskDataRoot); !strings.Contains(env, want) {
			t.Errorf("RunTask overrides %s lack %s", env, want)
		}
		// Whatever the job's outcome, the task record decides.
		if got := catches(run)["States.ALL"]; got != "CheckTask" {
			t.Errorf("RunTask catches States.ALL into %q, want CheckTask", got)
		}
		for from, to := range map[string]string{
			"RunTask": "CheckTask", "CheckTask": "TaskCompleted", "HandleError": "RetryOrGiveUp", "PlanRetry": "WaitBeforeRetry", "WaitBeforeRetry": "CheckRun",
		} {
			if got := next(all[from]); got != to {
				t.Errorf("%s -> %q, want %q", from, got, to)
			}
		}
		if got := jsonText(all["CheckTask"]["Parameters"]); !strings.Contains(got, `"Payload.$":"$"`) || all["CheckTask"]["OutputPath"] != "$.Payload" {
			t.Errorf("CheckTask: parameters %s, output path %v; want the whole state in and check-task's answer as the state", got, all["CheckTask"]["OutputPath"])
		}
		completed := all["TaskCompleted"]
		if got, want := jsonText(completed["Choices"]), fmt.Sprintf(`[{"Next":"TaskFinished","StringEquals":%q,"Variable":"$.status"}]`, model.TaskCompleted); got != want || completed["Default"] != "HandleError" {
			t.Errorf("TaskCompleted: choices %s default %v; want %s default HandleError", got, completed["Default"], want)
		}
		if got := jsonText(all["HandleError"]["Parameters"]); !strings.Contains(got, `"attempt.$":"$.attempt"`) {
			t.Errorf("HandleError parameters %s: want the attempt's number", got)
		}
		if got := jsonText(all["PlanRetry"]["Parameters"]); !strings.Contains(got, `"attempt.$":"States.MathAdd($.attempt, 1)"`) {
			t.Errorf("PlanRetry parameters %s: want the next attempt's number", got)
		}
		if got := jsonText(all["PlanRetry"]["Parameters"]); !strings.Contains(got, `"job_name.$":"$.job_name"`) {
			t.Errorf("PlanRetry parameters %s: want the job name carried to the next attempt", got)
		}
		choice := all["RetryOrGiveUp"]
		want := fmt.Sprintf(`[{"Next":"PlanRetry","StringEquals":%q,"Variable":"$.handled.status"},{"Next":"CheckTask","StringEquals":%q,"Variable":"$.handled.status"}]`, model.RetryScheduled, model.TaskCompleted)
		if got := jsonText(choice["Choices"]); got != want || choice["Default"] != "TaskFinished" {
			t.Errorf("RetryOrGiveUp: choices %s default %v; want %s default TaskFinished", got, choice["Default"], want)
		}
		if all["TaskFinished"]["End"] != true || jsonText(all["TaskFinished"]["Result"]) != "{}" {
			t.Errorf("TaskFinished must end the iteration with {}: %s", jsonText(all["TaskFinished"]))
		}
		// The wait is handle-error's, computed for any MAX_RETRIES: no table to index past.
		if got := jsonText(all["PlanRetry"]["Parameters"]); !strings.Contains(got, `"wait_seconds.$":"$.handled.wait_seconds"`) || strings.Contains(got, "ArrayGetItem") {
			t.Errorf("PlanRetry parameters %s: want handle-error's wait", got)
		}
		if all["WaitBeforeRetry"]["SecondsPath"] != "$.wait_seconds" {
			t.Errorf("WaitBeforeRetry: %s", jsonText(all["WaitBeforeRetry"]))
		}
	})

	// Before every attempt, the first and each retry, the state machine reads
	// the run's stop_reason (strongly consistent, one attribute, no Lambda):
	// a stopped run starts no attempt, and the task ends NOT_RUN.
	t.Run("a stopped run starts no attempt", func(t *testing.T) {
		proc := all["ProcessTasks"]["ItemProcessor"].(map[string]interface{})
		if proc["StartAt"] != "CheckRun" {
			t.Errorf("an iteration starts at %v, want CheckRun", proc["StartAt"])
		}
		check := all["CheckRun"]
		params := check["Parameters"].(map[string]interface{})
		if !strings.HasSuffix(check["Resource"].(string), ":states:::dynamodb:getItem") || params["ConsistentRead"] != true ||
			params["ProjectionExpression"] != model.AttrStopReason || jsonText(params["Key"]) != `{"run_id":{"S.$":"$.run_id"}}` ||
			check["ResultPath"] != "$.run_guard" || next(check) != "RunStopped" {
			t.Errorf("CheckRun: %s", jsonText(check))
		}
		stopped := all["RunStopped"]
		want := `[{"IsPresent":true,"Next":"MarkNotRun","Variable":"$.run_guard.Item.stop_reason"}]`
		if got := jsonText(stopped["Choices"]); got != want || stopped["Default"] != "RunTask" {
			t.Errorf("RunStopped: choices %s default %v; want %s default RunTask", got, stopped["Default"], want)
		}
		mark := all["MarkNotRun"]
		got := jsonText(mark["Parameters"])
		for _, want := range []string{`"ConditionExpression":"#status IN (:pending, :failed)"`, `":not_run":{"S":"` + model.TaskNotRun + `"}`,
			`":pending":{"S":"` + model.TaskPending + `"}`, `":failed":{"S":"` + model.TaskFailed + `"}`, `"task_id":{"S.$":"$.task_id"}`} {
			if !strings.Contains(got, want) {
				t.Errorf("MarkNotRun parameters %s lack %s", got, want)
			}
		}
		if next(mark) != "TaskFinished" || catches(mark)["DynamoDB.ConditionalCheckFailedException"] != "TaskFinished" {
			t.Errorf("MarkNotRun: %s", jsonText(mark))
		}
	})

	// One task never fails the run: whatever check-task or handle-error
	// still raises after their retries fails that task for good, with the
	// reason, and the iteration ends normally.
	t.Run("a task's own failure stays the task's", func(t *testing.T) {
		for _, name := range []string{"CheckTask", "HandleError"} {
			if got := catches(all[name])["States.ALL"]; got != "GiveUpTask" {
				t.Errorf("%s catches States.ALL into %q, want GiveUpTask", name, got)
			}
			for _, c := range list(all[name]["Catch"]) {
				if c.(map[string]interface{})["ResultPath"] != "$.error" {
					t.Errorf("%s's catch keeps the error at %v, want $.error", name, c.(map[string]interface{})["ResultPath"])
				}
			}
		}
		give := all["GiveUpTask"]
		if !strings.HasSuffix(give["Resource"].(string), ":states:::dynamodb:updateItem") || next(give) != "TaskFinished" {
			t.Errorf("GiveUpTask: %s", jsonText(give))
		}
		params := jsonText(give["Parameters"])
		for _, want := range []string{`"run_id":{"S.$":"$.run_id"}`, `"task_id":{"S.$":"$.task_id"}`,
			`":permanent":{"S":"` + model.TaskFailedPermanent + `"}`, `":error_type":{"S.$":"$.error.Error"}`, `":error_cause":{"S.$":"$.error.Cause"}`,
			`"ConditionExpression":"attribute_exists(#task_id)"`} {
			if !strings.Contains(params, want) {
				t.Errorf("GiveUpTask parameters %s lack %s", params, want)
			}
		}
		if got := catches(give)["States.ALL"]; got != "TaskFinished" {
			t.Errorf("GiveUpTask catches States.ALL into %q, want TaskFinished: the Map goes on", got)
		}
	})

	t.Run("lambda retries", func(t *testing.T) {
		for _, name := range []string{"Initialize", "CheckTask", "HandleError", "Aggregate", "Complete"} {
			st := all[name]
			if !strings.HasSuffix(st["Resource"].(string), ":states:::lambda:invoke") {
				t.Errorf("%s resource %v", name, st["Resource"])
			}
			retried := map[string]bool{}
			for _, r := range list(st["Retry"]) {
				for _, e := range r.(map[string]interface{})["ErrorEquals"].([]interface{}) {
					retried[e.(string)] = true
				}
			}
			if !retried[model.ErrService] || !retried["Lambda.ServiceException"] {
				t.Errorf("%s does not retry transient faults: %v", name, retried)
			}
			for _, never := range []string{model.ErrInvalidInput, model.ErrRunNotFound, model.ErrTaskNotFound, "States.ALL", "States.TaskFailed"} {
				if retried[never] {
					t.Errorf("%s retries %s", name, never)
				}
			}
		}
	})
}

func TestRunReaper(t *testing.T) {
	s := synth(t, snapshotStage)
	p, def := stateMachine(t, s, "arc-benchmark-"+snapshotStage+"-run-reaper")
	if p["StateMachineType"] != "EXPRESS" {
		t.Errorf("run reaper type %v, want EXPRESS", p["StateMachineType"])
	}
	all := states(t, def)
	query := jsonText(all["FindRunOfExecution"]["Parameters"])
	for _, want := range []string{`"IndexName":"` + model.IndexExecution + `"`, `"S.$":"$.detail.executionArn"`} {
		if !strings.Contains(query, want) {
			t.Errorf("FindRunOfExecution %s lacks %s", query, want)
		}
	}
	// A run no longer RUNNING keeps its status, and every run found is
	// aggregated once its terminated jobs have had their stop timeout.
	if got := catches(all["MarkRunOfExecutionFailed"])["DynamoDB.ConditionalCheckFailedException"]; got != "LetTerminatedJobsEnd" {
		t.Errorf("a run no longer RUNNING must be left as it is, then aggregated; the catch goes to %q", got)
	}
	if next(all["MarkRunOfExecutionFailed"]) != "LetTerminatedJobsEnd" || next(all["LetTerminatedJobsEnd"]) != "AggregateRun" {
		t.Errorf("MarkRunOfExecutionFailed -> %q -> %q, want LetTerminatedJobsEnd -> AggregateRun",
			next(all["MarkRunOfExecutionFailed"]), next(all["LetTerminatedJobsEnd"]))
	}
	if w := all["LetTerminatedJobsEnd"]["Seconds"]; w == nil || w.(float64) <= 30 {
		t.Errorf("the reaper waits %v s: more than a terminated job's 30 s stop timeout", w)
	}
	if got := jsonText(all["AggregateRun"]["Parameters"]); !strings.Contains(got, `"run_id.$":"$.run_id"`) || !strings.Contains(got, "Aggregate") {
		t.Errorf("AggregateRun parameters %s: want the aggregate function on the run", got)
	}
	// Then complete tells the run's end (the message and the run-end
	// metrics): the one place for runs that ended otherwise.
	if next(all["AggregateRun"]) != "AnnounceRunEnd" || all["AnnounceRunEnd"]["End"] != true {
		t.Errorf("AggregateRun -> %q, want AnnounceRunEnd, the last state", next(all["AggregateRun"]))
	}
	// Each for this execution only: a run resumed since is told at its new end.
	if got := jsonText(all["AggregateRun"]["Parameters"]); !strings.Contains(got, `"execution_id.$":"$.execution_id"`) {
		t.Errorf("AggregateRun parameters %s: want the execution it aggregates for", got)
	}
	if mark := jsonText(all["MarkRunOfExecutionFailed"]["Parameters"]); !strings.Contains(mark, `#status = :running AND #execution = :execution`) ||
		!strings.Contains(mark, `":execution":{"S.$":"$.execution_id"}`) {
		t.Errorf("MarkRunOfExecutionFailed %s: want it conditional on the run still being the execution's", mark)
	}
	if got := jsonText(all["AnnounceRunEnd"]["Parameters"]); !strings.Contains(got, `"Payload":{"announce":true,"execution_id.$":"$.execution_id","run_id.$":"$.run_id"}`) || !strings.Contains(got, "FunctionsComplete") {
		t.Errorf("AnnounceRunEnd parameters %s: want the complete function announcing the run", got)
	}
	reaperRole := p["RoleArn"].(map[string]interface{})["Fn::GetAtt"].([]interface{})[0].(string)
	invokes := strings.Join(grants(s.json, reaperRole), "\n")
	for _, fn := range []string{"FunctionsAggregate", "FunctionsComplete"} {
		if !strings.Contains(invokes, "lambda:InvokeFunction on ${"+fn) {
			t.Errorf("the run reaper may not invoke %s:\n%s", fn, invokes)
		}
	}

	mainID, _ := one(t, s.json, "AWS::StepFunctions::StateMachine", "StateMachineName", "arc-benchmark-"+snapshotStage)
	reaperID, _ := one(t, s.json, "AWS::StepFunctions::StateMachine", "StateMachineName", "arc-benchmark-"+snapshotStage+"-run-reaper")
	rules := resources(s.json, "AWS::Events::Rule")
	if len(rules) != 1 {
		t.Fatalf("%d event rules, want 1", len(rules))
	}
	for _, r := range rules {
		pattern := jsonText(props(r)["EventPattern"])
		want := `{"detail":{"stateMachineArn":[{"Ref":"` + mainID + `"}],"status":["FAILED","TIMED_OUT","ABORTED"]},` +
			`"detail-type":["Step Functions Execution Status Change"],"source":["aws.states"]}`
		if pattern != want {
			t.Errorf("rule pattern %s\nwant %s", pattern, want)
		}
		if target := jsonText(props(r)["Targets"]); !strings.Contains(target, `"Arn":{"Ref":"`+reaperID+`"}`) {
			t.Errorf("rule targets %s, want the run reaper", target)
		}
	}
}
