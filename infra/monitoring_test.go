package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"arcbench/shared/metrics"
	"arcbench/shared/model"
)

// alertStage is synthesized with notifyEmails and dailySpendAlarmUsd set.
const alertStage = "sandbox-alerts"

var (
	alertEmails = []string{"ops@example.com", "Benchmarks.Team@example.org"}
	alertSpend  = 12.5
)

// synthAlerts is alertStage's template, synthesized once per test binary.
func synthAlerts(t *testing.T) *synthesized {
	t.Helper()
	return synthWith(t, alertStage, map[string]interface{}{
		ctxStage:              alertStage,
		ctxNotifyEmails:       " " + strings.Join(alertEmails, " , ") + " ",
		ctxDailySpendAlarmUSD: fmt.Sprint(alertSpend),
	})
}

// The stage's topic: named for the stage, encrypted with a rotated key of its
// own, TLS only; the stage's alarms (CloudWatch) may publish and use the key;
// one email subscription per notifyEmails address, none by default.
func TestNotificationsTopic(t *testing.T) {
	for _, c := range []struct {
		s      *synthesized
		stage  string
		emails []string
	}{
		{synth(t, snapshotStage), snapshotStage, nil},
		{synthAlerts(t), alertStage, alertEmails},
	} {
		topicID, topic := one(t, c.s.json, "AWS::SNS::Topic", "TopicName", "arc-benchmark-"+c.stage+"-runs")
		keyID := strings.TrimSuffix(strings.TrimPrefix(reference(props(topic)["KmsMasterKeyId"]), "${"), ".Arn}")
		key := resources(c.s.json, "AWS::KMS::Key")[keyID]
		if key == nil {
			t.Fatalf("%s: the topic is not encrypted with a key of the stack: KmsMasterKeyId %v", c.stage, props(topic)["KmsMasterKeyId"])
		}
		if props(key)["EnableKeyRotation"] != true {
			t.Errorf("%s: the topic's key is not rotated", c.stage)
		}
		keyPolicy := policyText(props(key)["KeyPolicy"])
		if want := `Allow kms:Decrypt,kms:GenerateDataKey* to {"Service":"cloudwatch.amazonaws.com"} on *`; !strings.Contains(keyPolicy, want) {
			t.Errorf("%s: the key's policy lacks %s:\n%s", c.stage, want, keyPolicy)
		}

		var policies []string
		for _, p := range resources(c.s.json, "AWS::SNS::TopicPolicy") {
			if jsonText(props(p)["Topics"]) == jsonText([]interface{}{map[string]interface{}{"Ref": topicID}}) {
				policies = append(policies, policyText(props(p)["PolicyDocument"]))
			}
		}
		if len(policies) != 1 {
			t.Fatalf("%s: %d policies on the topic, want 1", c.stage, len(policies))
		}
		for _, want := range []string{
			`Deny sns:Publish to "*" on ${` + topicID + `} if {"Bool":{"aws:SecureTransport":"false"}}`,
			`Allow sns:Publish to {"Service":"cloudwatch.amazonaws.com"} on ${` + topicID + `} if {"ArnLike":{"aws:SourceArn":"arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:arc-benchmark-` + c.stage + `-*"},"StringEquals":{"aws:SourceAccount":"${AWS::AccountId}"}}`,
		} {
			if !strings.Contains(policies[0], want) {
				t.Errorf("%s: the topic's policy lacks\n  %s\nin\n%s", c.stage, want, policies[0])
			}
		}

		var got []string
		for _, sub := range resources(c.s.json, "AWS::SNS::Subscription") {
			p := props(sub)
			if jsonText(p["TopicArn"]) != jsonText(map[string]interface{}{"Ref": topicID}) || p["Protocol"] != "email" {
				t.Errorf("%s: subscription %s", c.stage, jsonText(p))
			}
			got = append(got, fmt.Sprint(p["Endpoint"]))
		}
		want := append([]string(nil), c.emails...)
		sort.Strings(got)
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: email subscriptions %v, want %v", c.stage, got, want)
		}
	}
}

// policyText writes a policy's statements one a line: Effect actions to
// principal on resources [if conditions].
func policyText(doc interface{}) string {
	var lines []string
	for _, st := range list(doc.(map[string]interface{})["Statement"]) {
		st := st.(map[string]interface{})
		var actions, res []string
		for _, a := range list(st["Action"]) {
			actions = append(actions, fmt.Sprint(a))
		}
		for _, r := range list(st["Resource"]) {
			res = append(res, resourceText(r))
		}
		line := fmt.Sprintf("%s %s to %s on %s", st["Effect"], strings.Join(actions, ","), jsonText(st["Principal"]), strings.Join(res, ","))
		if c, ok := st["Condition"]; ok {
			line += " if " + resolvedJSON(c)
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// resolvedJSON writes v as JSON with every Fn::Join and Ref resolved to text.
func resolvedJSON(v interface{}) string {
	var resolve func(v interface{}) interface{}
	resolve = func(v interface{}) interface{} {
		switch v := v.(type) {
		case map[string]interface{}:
			if _, ok := v["Fn::Join"]; ok {
				return resourceText(v)
			}
			if _, ok := v["Ref"]; ok {
				return reference(v)
			}
			out := map[string]interface{}{}
			for k, x := range v {
				out[k] = resolve(x)
			}
			return out
		case []interface{}:
			out := make([]interface{}, len(v))
			for i, x := range v {
				out[i] = resolve(x)
			}
			return out
		}
		return v
	}
	return jsonText(resolve(v))
}

func TestNotifyEmailsSetting(t *testing.T) {
	if s, msg := settingsError(t, nil); msg != "" || s.NotifyEmails != nil {
		t.Errorf("default: %v, %s; want none", s.NotifyEmails, msg)
	}
	if s, msg := settingsError(t, map[string]interface{}{ctxNotifyEmails: "a@example.com,b.c+d@mail.example.co.uk"}); msg != "" ||
		strings.Join(s.NotifyEmails, " ") != "a@example.com b.c+d@mail.example.co.uk" {
		t.Errorf("two addresses: %v, %s", s.NotifyEmails, msg)
	}
	for list, why := range map[string]string{
		"ops":                         `"ops" is not an email address`,
		"ops@example":                 `"ops@example" is not an email address`,
		"a@example.com;b@example.com": "is not an email address",
		"ops team@example.com":        "is not an email address",
		"a@example.com,":              "an empty address",
		"a@example.com,A@Example.com": `"A@Example.com" is listed twice`,
		strings.Repeat("a", 250) + "@example.com": "is not an email address",
	} {
		if _, msg := settingsError(t, map[string]interface{}{ctxNotifyEmails: list}); !strings.Contains(msg, `context "notifyEmails"`) || !strings.Contains(msg, why) {
			t.Errorf("notifyEmails %q: error %q, want it to name the key and say %s", list, msg, why)
		}
	}
	if _, msg := settingsError(t, map[string]interface{}{ctxNotifyEmails: []interface{}{"a@example.com"}}); !strings.Contains(msg, `"notifyEmails" must be a string`) {
		t.Errorf("a list: error %q", msg)
	}
}

func TestDailySpendAlarmSetting(t *testing.T) {
	for v, want := range map[interface{}]float64{"50": 50, " 12.5 ": 12.5, 0.25: 0.25, float64(100): 100} {
		if s, msg := settingsError(t, map[string]interface{}{ctxDailySpendAlarmUSD: v}); msg != "" || s.DailySpendAlarmUSD == nil || *s.DailySpendAlarmUSD != want {
			t.Errorf("dailySpendAlarmUsd %#v: %v, %s; want %v", v, s.DailySpendAlarmUSD, msg, want)
		}
	}
	for _, v := range []interface{}{nil, "", "  "} {
		if s, msg := settingsError(t, map[string]interface{}{ctxDailySpendAlarmUSD: v}); msg != "" || s.DailySpendAlarmUSD != nil {
			t.Errorf("dailySpendAlarmUsd %#v: %v, %s; want no spend alarm", v, s.DailySpendAlarmUSD, msg)
		}
	}
	for _, v := range []interface{}{"fifty", "$50", "0", "-5", "NaN", "Inf", float64(0), float64(-1), true} {
		_, msg := settingsError(t, map[string]interface{}{ctxDailySpendAlarmUSD: v})
		if !strings.Contains(msg, `context "dailySpendAlarmUsd"`) || !strings.Contains(msg, "want an amount of USD above 0") {
			t.Errorf("dailySpendAlarmUsd %#v: error %q, want it to name the key and the values it takes", v, msg)
		}
	}
}

// dashboard is a stage's dashboard body, parsed, with CloudFormation
// references written as ${LogicalId} and ${LogicalId.Attribute}.
func dashboard(t *testing.T, s *synthesized, stage string) map[string]interface{} {
	t.Helper()
	_, d := one(t, s.json, "AWS::CloudWatch::Dashboard", "DashboardName", "arc-benchmark-"+stage)
	var body map[string]interface{}
	if err := json.Unmarshal([]byte(resourceText(props(d)["DashboardBody"])), &body); err != nil {
		t.Fatalf("dashboard body: %v", err)
	}
	return body
}

// widgets are a dashboard's widgets by title (a text widget by its first line).
func widgets(t *testing.T, body map[string]interface{}) map[string]map[string]interface{} {
	t.Helper()
	out := map[string]map[string]interface{}{}
	for _, w := range list(body["widgets"]) {
		w := w.(map[string]interface{})
		title := widgetTitle(w)
		if _, dup := out[title]; dup {
			t.Errorf("two widgets titled %q", title)
		}
		out[title] = w
	}
	return out
}

func widgetTitle(w map[string]interface{}) string {
	p := w["properties"].(map[string]interface{})
	if md, ok := p["markdown"].(string); ok {
		first, _, _ := strings.Cut(md, "\n")
		return first
	}
	return fmt.Sprint(p["title"])
}

// metricText writes one metric of a graph or an alarm: an expression with
// its period and label, or namespace name{dimensions} statistic period
// "label" (CloudWatch's defaults filled in: Average, 300 s).
func metricText(ns, name string, dims []string, stat, period, label interface{}) string {
	if stat == nil {
		stat = "Average"
	}
	if period == nil {
		period = 300.0
	}
	return fmt.Sprintf("%s %s{%s} %v %v %q", ns, name, strings.Join(dims, ","), stat, period, fmt.Sprint(label))
}

// graphMetrics are a graph widget's metrics, as metricText writes them.
func graphMetrics(w map[string]interface{}) []string {
	var out []string
	for _, m := range list(w["properties"].(map[string]interface{})["metrics"]) {
		parts, opts := metricParts(m)
		if expr, ok := opts["expression"]; ok {
			out = append(out, fmt.Sprintf("%v %v %q", expr, opts["period"], fmt.Sprint(opts["label"])))
			continue
		}
		var dims []string
		for i := 2; i+1 < len(parts); i += 2 {
			dims = append(dims, parts[i]+"="+parts[i+1])
		}
		out = append(out, metricText(parts[0], parts[1], dims, opts["stat"], opts["period"], opts["label"]))
	}
	sort.Strings(out)
	return out
}

// search is the SEARCH a graph shows for a custom metric by one dimension.
func search(stage, metric, dim, stat string, period int) string {
	return fmt.Sprintf(`SEARCH('{"ArcBenchmark/%s",%s} MetricName="%s"', '%s', %d)`, stage, dim, metric, stat, period)
}

// functionRefs are the handlers' functions, by handler name: ${LogicalId}.
func functionRefs(t *testing.T, s *synthesized, stage string) map[string]string {
	out := map[string]string{}
	for _, name := range model.Handlers {
		id, _ := one(t, s.json, "AWS::Lambda::Function", "FunctionName", "arc-benchmark-"+stage+"-"+name)
		out[name] = "${" + id + "}"
	}
	return out
}

// expectedGraphs are the graphs of a stage's dashboard and their metrics.
func expectedGraphs(t *testing.T, s *synthesized, stage string) map[string][]string {
	ns := "ArcBenchmark/" + stage
	smID, _ := one(t, s.json, "AWS::StepFunctions::StateMachine", "StateMachineName", "arc-benchmark-"+stage)
	fns := functionRefs(t, s, stage)
	perFunction := func(metric, stat string) []string {
		var out []string
		for _, name := range model.Handlers {
			out = append(out, metricText("AWS/Lambda", metric, []string{"FunctionName=" + fns[name]}, stat, nil, name))
		}
		return out
	}
	dynamic := func(dim string) string { return fmt.Sprintf("%q", "${PROP('Dim."+dim+"')}") }
	execution := func(metric, label string) string {
		return metricText("AWS/States", metric, []string{"StateMachineArn=${" + smID + "}"}, "Sum", nil, label)
	}
	return map[string][]string{
		"Runs started, ended (hourly)": {
			"SUM(" + search(stage, metrics.RunStarted, metrics.DimensionConfigName, "Sum", 3600) + `) 3600 "started"`,
			search(stage, metrics.RunEnded, metrics.DimensionStatus, "Sum", 3600) + " 3600 " + dynamic("Status"),
			metricText(ns, metrics.RunStoppedEarly, nil, "Sum", 3600.0, "stopped early"),
		},
		"Attempts failed by reason": {
			search(stage, metrics.AttemptFailed, metrics.DimensionReason, "Sum", 300) + " <nil> " + dynamic("Reason"),
		},
		"Batch jobs ended by status": {
			search(stage, metrics.JobEnded, metrics.DimensionStatus, "Sum", 300) + " <nil> " + dynamic("Status"),
		},
		"Score by configuration (%)": {
			search(stage, metrics.Score, metrics.DimensionConfigName, "Average", 3600) + " 3600 " + dynamic("ConfigName"),
		},
		"Run cost by config (USD)": {
			search(stage, metrics.TotalCostUSD, metrics.DimensionConfigName, "Sum", 3600) + " 3600 " + dynamic("ConfigName"),
		},
		"Model spend per day (USD)": {
			metricText(ns, metrics.TotalCostUSD, nil, "Sum", 86400.0, "all configurations"),
		},
		"Lambda errors":            perFunction("Errors", "Sum"),
		"Lambda throttles":         perFunction("Throttles", "Sum"),
		"Lambda duration p99 (ms)": perFunction("Duration", "p99"),
		"Run executions failed, timed out, aborted": {
			execution("ExecutionsFailed", "failed"), execution("ExecutionsTimedOut", "timed out"), execution("ExecutionsAborted", "aborted"),
		},
	}
}

// Every widget of the dashboard, and every metric or expression of each.
func TestDashboard(t *testing.T) {
	if fns := handlerFunctions(synth(t, snapshotStage).stack.Functions); len(fns) != len(model.Handlers) {
		t.Errorf("handlerFunctions found %d functions, want the %d handlers", len(fns), len(model.Handlers))
	} else {
		for i, f := range fns {
			if f.Name != model.Handlers[i] {
				t.Errorf("function %d is named %s, want %s", i, f.Name, model.Handlers[i])
			}
		}
	}
	for _, c := range []struct {
		s     *synthesized
		stage string
		spend bool
	}{{synth(t, snapshotStage), snapshotStage, false}, {synthAlerts(t), alertStage, true}} {
		body := dashboard(t, c.s, c.stage)
		if body["start"] != "-P7D" || body["periodOverride"] != "inherit" {
			t.Errorf("%s: dashboard start %v, periodOverride %v; want -P7D, inherit", c.stage, body["start"], body["periodOverride"])
		}
		ws := widgets(t, body)
		graphs := expectedGraphs(t, c.s, c.stage)
		var titles []string
		for title := range graphs {
			titles = append(titles, title)
		}
		titles = append(titles, "# arcbench "+c.stage, "Alarms")
		sort.Strings(titles)
		if got := sortedKeys(ws); strings.Join(got, "\n") != strings.Join(titles, "\n") {
			t.Errorf("%s: widgets\n  %s\nwant\n  %s", c.stage, strings.Join(got, "\n  "), strings.Join(titles, "\n  "))
		}
		for title, want := range graphs {
			w, ok := ws[title]
			if !ok {
				continue
			}
			sort.Strings(want)
			if got := graphMetrics(w); strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s: %q shows\n  %s\nwant\n  %s", c.stage, title, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
		}
		// The spend graph draws the alarm's threshold when there is one.
		annotations := jsonText(ws["Model spend per day (USD)"]["properties"].(map[string]interface{})["annotations"])
		if want := `{"horizontal":[{"label":"dailySpendAlarmUsd","value":12.5,"yAxis":"left"}]}`; c.spend != (annotations == want) {
			t.Errorf("%s: spend graph annotations %s", c.stage, annotations)
		}
		// The alarm widget shows every alarm of the stage.
		var shown, all []string
		for _, a := range list(ws["Alarms"]["properties"].(map[string]interface{})["alarms"]) {
			shown = append(shown, fmt.Sprint(a))
		}
		for id := range resources(c.s.json, "AWS::CloudWatch::Alarm") {
			all = append(all, "${"+id+".Arn}")
		}
		sort.Strings(shown)
		sort.Strings(all)
		if strings.Join(shown, " ") != strings.Join(all, " ") {
			t.Errorf("%s: the alarm widget shows %v, want every alarm %v", c.stage, shown, all)
		}
	}
}

// alarmText is what an alarm watches and when it fires: its metric, the
// comparison with its threshold over its periods, missing data, actions.
func alarmText(a map[string]interface{}) string {
	p := props(a)
	var metric string
	if name, ok := p["MetricName"]; ok {
		var dims []string
		for _, d := range list(p["Dimensions"]) {
			if d, ok := d.(map[string]interface{}); ok {
				dims = append(dims, fmt.Sprint(d["Name"])+"="+reference(d["Value"]))
			}
		}
		metric = metricText(fmt.Sprint(p["Namespace"]), fmt.Sprint(name), dims, p["Statistic"], p["Period"], nil)
	} else {
		for _, m := range list(p["Metrics"]) {
			m := m.(map[string]interface{})
			stat := m["MetricStat"].(map[string]interface{})
			mm := stat["Metric"].(map[string]interface{})
			var dims []string
			for _, d := range list(mm["Dimensions"]) {
				if d, ok := d.(map[string]interface{}); ok {
					dims = append(dims, fmt.Sprint(d["Name"])+"="+reference(d["Value"]))
				}
			}
			metric = metricText(fmt.Sprint(mm["Namespace"]), fmt.Sprint(mm["MetricName"]), dims, stat["Stat"], stat["Period"], m["Label"])
		}
	}
	var actions []string
	for _, a := range list(p["AlarmActions"]) {
		actions = append(actions, reference(a))
	}
	return fmt.Sprintf("%s %v %v, %v of %v periods, missing %v, then %s", metric, p["ComparisonOperator"], p["Threshold"],
		p["DatapointsToAlarm"], p["EvaluationPeriods"], p["TreatMissingData"], strings.Join(actions, ","))
}

// Every alarm: its metric, statistic, period, comparison and threshold,
// missing data not breaching, and the topic notified; the spend alarm only
// with dailySpendAlarmUsd.
func TestAlarms(t *testing.T) {
	for _, c := range []struct {
		s     *synthesized
		stage string
		spend bool
	}{{synth(t, snapshotStage), snapshotStage, false}, {synthAlerts(t), alertStage, true}} {
		topicID, _ := one(t, c.s.json, "AWS::SNS::Topic", "TopicName", "arc-benchmark-"+c.stage+"-runs")
		smID, _ := one(t, c.s.json, "AWS::StepFunctions::StateMachine", "StateMachineName", "arc-benchmark-"+c.stage)
		then := ", 1 of 1 periods, missing notBreaching, then ${" + topicID + "}"
		want := map[string]string{
			"executions-failed": metricText("AWS/States", "ExecutionsFailed", []string{"StateMachineArn=${" + smID + "}"}, "Sum", 300.0, "failed") +
				" GreaterThanOrEqualToThreshold 1" + then,
			"executions-timed-out": metricText("AWS/States", "ExecutionsTimedOut", []string{"StateMachineArn=${" + smID + "}"}, "Sum", 300.0, "timed out") +
				" GreaterThanOrEqualToThreshold 1" + then,
			"run-stopped-early": metricText("ArcBenchmark/"+c.stage, metrics.RunStoppedEarly, nil, "Sum", 300.0, "stopped early") +
				" GreaterThanThreshold 0" + then,
		}
		for name, ref := range functionRefs(t, c.s, c.stage) {
			want[name+"-errors"] = metricText("AWS/Lambda", "Errors", []string{"FunctionName=" + ref}, "Sum", 300.0, name) +
				" GreaterThanOrEqualToThreshold 1" + then
		}
		if c.spend {
			want["daily-spend"] = metricText("ArcBenchmark/"+c.stage, metrics.TotalCostUSD, nil, "Sum", 86400.0, "all configurations") +
				fmt.Sprintf(" GreaterThanThreshold %v", alertSpend) + then
		}
		got := map[string]string{}
		for id, a := range resources(c.s.json, "AWS::CloudWatch::Alarm") {
			name := fmt.Sprint(props(a)["AlarmName"])
			short, ok := strings.CutPrefix(name, "arc-benchmark-"+c.stage+"-")
			if !ok {
				t.Errorf("%s: alarm %s is named %s, outside the stage's names (the topic takes arc-benchmark-%s-*)", c.stage, id, name, c.stage)
			}
			if desc, _ := props(a)["AlarmDescription"].(string); len(desc) < 40 {
				t.Errorf("%s: alarm %s has no description to read in the notification", c.stage, name)
			}
			got[short] = alarmText(a)
		}
		if strings.Join(sortedKeys(got), " ") != strings.Join(sortedKeys(want), " ") {
			t.Errorf("%s: alarms %v, want %v", c.stage, sortedKeys(got), sortedKeys(want))
		}
		for name, w := range want {
			if g, ok := got[name]; ok && g != w {
				t.Errorf("%s: alarm %s:\n   got %s\n  want %s", c.stage, name, g, w)
			}
		}
	}
}

// The stage's outputs name the topic to subscribe to and the dashboard.
func TestMonitoringOutputs(t *testing.T) {
	s := synth(t, snapshotStage)
	topicID, _ := one(t, s.json, "AWS::SNS::Topic", "TopicName", "arc-benchmark-"+snapshotStage+"-runs")
	dashboardID, _ := one(t, s.json, "AWS::CloudWatch::Dashboard", "DashboardName", "arc-benchmark-"+snapshotStage)
	outputs, _ := s.json["Outputs"].(map[string]interface{})
	for name, want := range map[string]string{"NotificationsTopicArn": topicID, "DashboardName": dashboardID} {
		out, _ := outputs[name].(map[string]interface{})
		if got := jsonText(out["Value"]); got != jsonText(map[string]interface{}{"Ref": want}) {
			t.Errorf("output %s is %s, want a Ref to %s", name, got, want)
		}
	}
}

// dashboardPicturePath is the rendering of the dashboard's layout; the page
// dashboardDocPath shows it too, without its header.
const (
	dashboardPicturePath = "docs/dashboard.txt"
	dashboardDocPath     = "docs/operating.md"
)

// TestDashboardPicture: docs/dashboard.txt is the layout of the dashboard as
// synthesized (cdk.json's defaults), drawn by dashboardPicture, and
// docs/operating.md shows the same drawing between its dashboard markers.
// Refresh both after an intended change with UPDATE_SNAPSHOTS=1 go test ./infra -run TestDashboardPicture.
func TestDashboardPicture(t *testing.T) {
	s := synth(t, snapshotStage)
	names := map[string]string{}
	for id, a := range resources(s.json, "AWS::CloudWatch::Alarm") {
		names["${"+id+".Arn}"] = strings.TrimPrefix(fmt.Sprint(props(a)["AlarmName"]), "arc-benchmark-"+snapshotStage+"-")
	}
	// Drawn for any stage: the stage's name, wherever the definition has it,
	// is written <stage> before the drawing.
	raw, err := json.Marshal(dashboard(t, s, snapshotStage))
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]interface{}
	if err := json.Unmarshal([]byte(strings.ReplaceAll(string(raw), snapshotStage, "<stage>")), &body); err != nil {
		t.Fatal(err)
	}
	got := dashboardPicture(body, names)
	got = "The CloudWatch dashboard arc-benchmark-<stage>, as infra/monitoring.go defines it: each box is a widget at its\n" +
		"place and size (24 columns; a column is 4 characters, a row one line), with its title and what it shows.\n" +
		"Generated from the synthesized template by TestDashboardPicture (infra/monitoring_test.go); refresh it with\n" +
		"UPDATE_SNAPSHOTS=1 go test ./infra -run TestDashboardPicture.\n\n" + got
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, dashboardPicturePath)
	if os.Getenv("UPDATE_SNAPSHOTS") != "" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := writeDocPicture(filepath.Join(root, dashboardDocPath), pictureBody(got)); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := docPicture(filepath.Join(root, dashboardDocPath), pictureBody(got)); err != nil {
		t.Error(err)
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (create it with UPDATE_SNAPSHOTS=1 go test ./infra -run TestDashboardPicture)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the synthesized dashboard; if the change is intended, run UPDATE_SNAPSHOTS=1 go test ./infra -run TestDashboardPicture\n%s",
			dashboardPicturePath, firstDifference(string(want), got))
	}
}

// TestDashboardPictureDraws checks the drawing itself on a small layout.
func TestDashboardPictureDraws(t *testing.T) {
	body := map[string]interface{}{"widgets": []interface{}{
		map[string]interface{}{"type": "text", "x": 0.0, "y": 0.0, "width": 6.0, "height": 2.0, "properties": map[string]interface{}{"markdown": "# Title\nmore"}},
		map[string]interface{}{"type": "metric", "x": 0.0, "y": 2.0, "width": 3.0, "height": 4.0, "properties": map[string]interface{}{
			"title": "Errors", "metrics": []interface{}{
				[]interface{}{"AWS/Lambda", "Errors", "FunctionName", "${F1}", map[string]interface{}{"label": "one", "stat": "Sum"}},
				[]interface{}{"AWS/Lambda", "Errors", "FunctionName", "${F2}", map[string]interface{}{"label": "two", "stat": "Sum"}},
			}}},
		map[string]interface{}{"type": "metric", "x": 3.0, "y": 2.0, "width": 3.0, "height": 4.0, "properties": map[string]interface{}{
			"title": "By reason", "metrics": []interface{}{
				[]interface{}{map[string]interface{}{"expression": `SEARCH('{"N",Reason} MetricName="Failed"', 'Sum', 300)`, "label": "${PROP('Dim.Reason')}"}},
			}}},
		map[string]interface{}{"type": "alarm", "x": 0.0, "y": 6.0, "width": 6.0, "height": 2.0, "properties": map[string]interface{}{
			"title": "Alarms", "alarms": []interface{}{"${A.Arn}"}}},
	}}
	want := strings.Join([]string{
		"+-----------------------+",
		"| # Title               |",
		"+-----------+-----------+",
		"| Errors    | By reason |",
		"| Errors:   | Failed by |",
		"| one, two  | Reason    |",
		"+-----------+-----------+",
		"| Alarms                |",
		"+-----------------------+",
		"",
	}, "\n")
	// The alarm widget lists its alarms when there is room; here there is not.
	if got := dashboardPicture(body, map[string]string{"${A.Arn}": "a"}); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// Picture scale: a dashboard is 24 columns wide; a column is drawn 4
// characters wide and a row one line high, borders shared between widgets.
const (
	pictureColumn = 4
	pictureRow    = 1
)

// dashboardPicture draws a dashboard body's layout as text: each widget a
// box at its x, y, width and height, holding its title and then what it
// shows (a graph's metrics by name with their labels, a SEARCH as the metric
// and the dimension it splits by, an alarm widget's alarms by name from
// alarmNames), cut to the box.
func dashboardPicture(body map[string]interface{}, alarmNames map[string]string) string {
	num := func(v interface{}) int { f, _ := v.(float64); return int(f) }
	width, height := 0, 0
	for _, w := range list(body["widgets"]) {
		w := w.(map[string]interface{})
		width = max(width, (num(w["x"])+num(w["width"]))*pictureColumn+1)
		height = max(height, (num(w["y"])+num(w["height"]))*pictureRow+1)
	}
	canvas := make([][]rune, height)
	for i := range canvas {
		canvas[i] = []rune(strings.Repeat(" ", width))
	}
	for _, w := range list(body["widgets"]) {
		w := w.(map[string]interface{})
		x0, y0 := num(w["x"])*pictureColumn, num(w["y"])*pictureRow
		x1, y1 := x0+num(w["width"])*pictureColumn, y0+num(w["height"])*pictureRow
		for x := x0; x <= x1; x++ {
			for _, y := range []int{y0, y1} {
				if canvas[y][x] != '+' {
					canvas[y][x] = '-'
				}
			}
		}
		for y := y0; y <= y1; y++ {
			for _, x := range []int{x0, x1} {
				if y == y0 || y == y1 {
					canvas[y][x] = '+'
				} else {
					canvas[y][x] = '|'
				}
			}
		}
		inner := x1 - x0 - 3
		lines := wrap(widgetTitle(w), inner)
		for _, item := range widgetContents(w, alarmNames) {
			lines = append(lines, wrap(item, inner)...)
		}
		for i, line := range lines {
			y := y0 + 1 + i
			if y >= y1 {
				break
			}
			for j, r := range []rune(line) {
				if j >= inner {
					break
				}
				canvas[y][x0+2+j] = r
			}
		}
	}
	var b strings.Builder
	for _, row := range canvas {
		b.WriteString(strings.TrimRight(string(row), " "))
		b.WriteByte('\n')
	}
	return b.String()
}

// searchPattern reads a SEARCH's dimension and metric name.
var searchPattern = regexp.MustCompile(`SEARCH\('\{"?[^",}]*"?,([^}]*)\} MetricName="([^"]+)"`)

// widgetContents is what a widget shows, in words: per metric name, the
// labels of its lines; per SEARCH, the metric by its dimension.
func widgetContents(w map[string]interface{}, alarmNames map[string]string) []string {
	p := w["properties"].(map[string]interface{})
	if alarms, ok := p["alarms"]; ok {
		var names []string
		for _, a := range list(alarms) {
			names = append(names, alarmNames[fmt.Sprint(a)])
		}
		return []string{strings.Join(names, ", ")}
	}
	var out []string
	byName := map[string][]string{}
	var order []string
	graphed, _ := p["metrics"].([]interface{})
	for _, m := range graphed {
		parts, opts := metricParts(m)
		label, _ := opts["label"].(string)
		if expr, ok := opts["expression"].(string); ok {
			s := searchPattern.FindStringSubmatch(expr)
			switch {
			case s == nil:
				out = append(out, label+" = "+expr)
			case strings.HasPrefix(expr, "SEARCH("):
				out = append(out, s[2]+" by "+s[1])
			default:
				out = append(out, label+" ("+strings.SplitN(expr, "(", 2)[0]+" of "+s[2]+")")
			}
			continue
		}
		if len(parts) < 2 {
			continue
		}
		name := parts[1]
		if _, seen := byName[name]; !seen {
			order = append(order, name)
		}
		if label == "" {
			label = name
		}
		byName[name] = append(byName[name], label)
	}
	for _, name := range order {
		if labels := byName[name]; len(labels) == 1 {
			out = append(out, name+": "+labels[0])
		} else {
			out = append(out, name+": "+strings.Join(labels, ", "))
		}
	}
	return out
}

// wrap cuts text into lines of at most n characters, at spaces when it can.
func wrap(text string, n int) []string {
	if n <= 0 {
		return nil
	}
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		switch {
		case line == "":
			line = word
		case len([]rune(line))+1+len([]rune(word)) <= n:
			line += " " + word
		default:
			lines = append(lines, line)
			line = word
		}
		for len([]rune(line)) > n {
			lines = append(lines, string([]rune(line)[:n]))
			line = string([]rune(line)[n:])
		}
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// What a publisher of the stage's metrics and notifications is granted
// (the handlers and the run reaper get these): PutMetricData into the
// stage's namespace only, Publish on the topic and the key's use for it,
// and cdk-nag has nothing left to say.
func TestPublisherGrants(t *testing.T) {
	noPanic(t, "grants", func() {
		app := newApp(t, false, nil)
		stack := awscdk.NewStack(app, jsii.String("arc-benchmark-sandbox-grants"), nil)
		stage, err := NewStage("sandbox-grants")
		if err != nil {
			t.Fatal(err)
		}
		n := NewNotifications(stack, "Notifications", NotificationsProps{Stage: stage})
		role := awsiam.NewRole(stack, jsii.String("Publisher"), &awsiam.RoleProps{
			AssumedBy: awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		})
		GrantPutMetrics(role, stage)
		n.GrantPublish(role)
		awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
		tmpl := toGo(t, assertions.Template_FromStack(stack, nil).ToJSON())
		roleID := *stack.GetLogicalId(role.Node().DefaultChild().(awscdk.CfnElement))
		topicID, _ := one(t, tmpl, "AWS::SNS::Topic", "TopicName", "arc-benchmark-sandbox-grants-runs")
		keyID := sortedKeys(resources(tmpl, "AWS::KMS::Key"))[0]
		want := []string{
			`cloudwatch:PutMetricData on * if {"StringEquals":{"cloudwatch:namespace":"ArcBenchmark/sandbox-grants"}}`,
			"kms:Decrypt on ${" + keyID + ".Arn}",
			"kms:GenerateDataKey* on ${" + keyID + ".Arn}",
			"sns:Publish on ${" + topicID + "}",
		}
		if got := grants(tmpl, roleID); strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("the publisher may:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		a := assertions.Annotations_FromStack(stack)
		nag := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))
		if found := jsonText(a.FindError(jsii.String("*"), nag)); found != "[]" {
			t.Errorf("cdk-nag errors: %s", found)
		}
		if found := jsonText(a.FindWarning(jsii.String("*"), nag)); found != "[]" {
			t.Errorf("cdk-nag warnings: %s", found)
		}
	})
}

// docs/operating.md shows the picture between these markers, in a text block.
const (
	pictureBegin = "<!-- dashboard:begin -->\n```text\n"
	pictureEnd   = "```\n<!-- dashboard:end -->"
)

// pictureBody is the picture without its header (the paragraph before the first blank line).
func pictureBody(picture string) string {
	_, b, _ := strings.Cut(picture, "\n\n")
	return strings.TrimRight(b, "\n") + "\n"
}

// docParts splits the page at path around its picture.
func docParts(path string) (before, shown, after string, err error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", "", "", err
	}
	before, rest, ok := strings.Cut(string(raw), pictureBegin)
	shown, after, ok2 := strings.Cut(rest, pictureEnd)
	if !ok || !ok2 {
		return "", "", "", fmt.Errorf("%s has no dashboard picture between %q and %q", dashboardDocPath, pictureBegin, pictureEnd)
	}
	return before, shown, after, nil
}

// docPicture checks that the page at path shows picture between its markers.
func docPicture(path, picture string) error {
	_, shown, _, err := docParts(path)
	if err != nil {
		return err
	}
	if shown != picture {
		return fmt.Errorf("%s's dashboard picture differs from the synthesized dashboard; if the change is intended, run UPDATE_SNAPSHOTS=1 go test ./infra -run TestDashboardPicture\n%s",
			dashboardDocPath, firstDifference(shown, picture))
	}
	return nil
}

// writeDocPicture replaces the picture of the page at path with picture.
func writeDocPicture(path, picture string) error {
	before, _, after, err := docParts(path)
	if err != nil {
		return err
	}
	return os.WriteFile(path, []byte(before+pictureBegin+picture+pictureEnd+after), 0o644)
}

// metricParts splits a dashboard metric array into its strings (namespace,
// name, dimensions) and its options.
func metricParts(m interface{}) (parts []string, opts map[string]interface{}) {
	opts = map[string]interface{}{}
	for _, e := range m.([]interface{}) {
		switch e := e.(type) {
		case string:
			parts = append(parts, e)
		case map[string]interface{}:
			opts = e
		}
	}
	return parts, opts
}
