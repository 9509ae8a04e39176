package localrun

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"arcbench/internal/emulators"
)

// mountAPIs serves, on the emulators' endpoint, the control-plane calls an
// operator makes against a deployed stage, so `arcbench start`, `watch` and
// the AWS CLI work on a local stage too: CloudFormation's DescribeStacks (the
// stack's outputs, resolved from the template) and Step Functions'
// StartExecution, DescribeExecution and StopExecution (executions run here).
func (r *runner) mountAPIs() {
	r.stack.Mount(func(req *http.Request) bool {
		return strings.HasPrefix(req.Header.Get("X-Amz-Target"), "AWSStepFunctions.")
	}, http.HandlerFunc(r.serveStepFunctions))
	r.stack.Mount(emulators.ForService("cloudformation"), http.HandlerFunc(r.serveCloudFormation))
}

type sfnError struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func epoch(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func (r *runner) serveStepFunctions(w http.ResponseWriter, req *http.Request) {
	op := strings.TrimPrefix(req.Header.Get("X-Amz-Target"), "AWSStepFunctions.")
	body, _ := io.ReadAll(req.Body)
	var in struct {
		StateMachineArn string `json:"stateMachineArn"`
		ExecutionArn    string `json:"executionArn"`
		Name            string `json:"name"`
		Input           string `json:"input"`
		Error           string `json:"error"`
		Cause           string `json:"cause"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeJSON(w, http.StatusBadRequest, sfnError{"SerializationException", err.Error()})
		return
	}
	switch op {
	case "StartExecution":
		sm := r.run
		if r.reaper != nil && in.StateMachineArn == r.reaper.ARN {
			sm = r.reaper
		} else if in.StateMachineArn != r.run.ARN {
			writeJSON(w, http.StatusBadRequest, sfnError{"StateMachineDoesNotExist", "State Machine Does Not Exist: '" + in.StateMachineArn + "'"})
			return
		}
		var input any = map[string]any{}
		if in.Input != "" {
			if err := json.Unmarshal([]byte(in.Input), &input); err != nil {
				writeJSON(w, http.StatusBadRequest, sfnError{"InvalidExecutionInput", "Invalid State Machine Execution Input: " + err.Error()})
				return
			}
		}
		arn := r.executionARN(sm, in.Name)
		rt, err := r.startExecution(arn, sm, input)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, sfnError{"ExecutionAlreadyExists", err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"executionArn": arn, "startDate": epoch(rt.started)})
	case "DescribeExecution":
		r.mu.Lock()
		rt := r.roots[in.ExecutionArn]
		var (
			end     *message
			endedAt time.Time
		)
		if rt != nil {
			end, endedAt = rt.end, rt.endedAt
		}
		r.mu.Unlock()
		if rt == nil {
			writeJSON(w, http.StatusBadRequest, sfnError{"ExecutionDoesNotExist", "Execution Does Not Exist: '" + in.ExecutionArn + "'"})
			return
		}
		out := map[string]any{
			"executionArn": in.ExecutionArn, "stateMachineArn": rt.sm.ARN,
			"name": in.ExecutionArn[strings.LastIndex(in.ExecutionArn, ":")+1:], "status": "RUNNING", "startDate": epoch(rt.started),
		}
		if end != nil {
			out["status"] = end.Status
			out["stopDate"] = epoch(endedAt)
			if len(end.Output) > 0 {
				out["output"] = string(end.Output)
			}
			var errName string
			if json.Unmarshal(end.Error, &errName) == nil && errName != "" {
				out["error"], out["cause"] = errName, end.Cause
			}
		}
		writeJSON(w, http.StatusOK, out)
	case "StopExecution":
		if err := r.stopExecution(in.ExecutionArn, in.Error, in.Cause); err != nil {
			writeJSON(w, http.StatusBadRequest, sfnError{"ExecutionDoesNotExist", err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"stopDate": epoch(time.Now())})
	default:
		writeJSON(w, http.StatusBadRequest, sfnError{"UnknownOperationException", op + " is not served by the local stage"})
	}
}

// The CloudFormation query protocol's answers (XML).
type cfnOutput struct {
	Key   string `xml:"OutputKey"`
	Value string `xml:"OutputValue"`
}

type describeStacksResponse struct {
	XMLName xml.Name   `xml:"DescribeStacksResponse"`
	NS      string     `xml:"xmlns,attr"`
	Stacks  []cfnStack `xml:"DescribeStacksResult>Stacks>member"`
	Request string     `xml:"ResponseMetadata>RequestId"`
}

type cfnStack struct {
	StackName    string      `xml:"StackName"`
	StackID      string      `xml:"StackId"`
	Status       string      `xml:"StackStatus"`
	CreationTime string      `xml:"CreationTime"`
	Outputs      []cfnOutput `xml:"Outputs>member"`
}

type cfnErrorResponse struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Type    string   `xml:"Error>Type"`
	Code    string   `xml:"Error>Code"`
	Message string   `xml:"Error>Message"`
	Request string   `xml:"RequestId"`
}

func (r *runner) serveCloudFormation(w http.ResponseWriter, req *http.Request) {
	_ = req.ParseForm()
	w.Header().Set("Content-Type", "text/xml")
	name := req.Form.Get("StackName")
	if action := req.Form.Get("Action"); action != "DescribeStacks" {
		w.WriteHeader(http.StatusBadRequest)
		_ = xml.NewEncoder(w).Encode(cfnErrorResponse{Type: "Sender", Code: "InvalidAction", Message: action + " is not served by the local stage", Request: "local"})
		return
	}
	if name != r.tmpl.StackName && name != arn("cloudformation", "stack/"+r.tmpl.StackName) {
		w.WriteHeader(http.StatusBadRequest)
		_ = xml.NewEncoder(w).Encode(cfnErrorResponse{Type: "Sender", Code: "ValidationError", Message: fmt.Sprintf("Stack with id %s does not exist", name), Request: "local"})
		return
	}
	stack := cfnStack{StackName: r.tmpl.StackName, StackID: arn("cloudformation", "stack/"+r.tmpl.StackName+"/local"),
		Status: "CREATE_COMPLETE", CreationTime: time.Now().UTC().Format(time.RFC3339)}
	keys := make([]string, 0, len(r.tmpl.Outputs))
	for k := range r.tmpl.Outputs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := r.tmpl.Resolve(r.tmpl.Outputs[k].Value)
		if err != nil {
			continue
		}
		stack.Outputs = append(stack.Outputs, cfnOutput{Key: k, Value: fmt.Sprint(v)})
	}
	_, _ = io.WriteString(w, xml.Header)
	_ = xml.NewEncoder(w).Encode(describeStacksResponse{NS: "http://cloudformation.amazonaws.com/doc/2010-05-15/", Stacks: []cfnStack{stack}, Request: "local"})
}
