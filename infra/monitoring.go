package main

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	cw "github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	sfn "github.com/aws/aws-cdk-go/awscdk/v2/awsstepfunctions"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawscloudwatch"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"arcbench/shared/metrics"
)

// MonitoringProps are what the dashboard shows and the alarms watch.
type MonitoringProps struct {
	Stage Stage
	// Functions: every function of the struct gets its graphs and an alarm.
	Functions *Functions
	// StateMachine runs the stage's runs (Workflow.StateMachine).
	StateMachine sfn.IStateMachine
	// Topic is what every alarm notifies (Notifications.Topic).
	Topic awssns.ITopic
	// DailySpendAlarmUSD is Settings.DailySpendAlarmUSD: nil, no spend alarm.
	DailySpendAlarmUSD *float64
}

// Monitoring is the stage's dashboard, arc-benchmark-<stage>, and its
// alarms, each named arc-benchmark-<stage>-<what> and notifying the topic
// when it goes into ALARM. Missing data never breaches: a stage at rest
// publishes nothing and stays OK.
type Monitoring struct {
	Dashboard cw.Dashboard
	// FunctionErrors has one alarm per function, in the order of the
	// Functions struct: any error of the function in 5 minutes.
	FunctionErrors []cw.Alarm
	// ExecutionsFailed and ExecutionsTimedOut: any execution of the run state
	// machine that failed, or timed out, in 5 minutes.
	ExecutionsFailed, ExecutionsTimedOut cw.Alarm
	// RunStoppedEarly: any run that ended STOPPED in 5 minutes.
	RunStoppedEarly cw.Alarm
	// DailySpend: the day's model spend (the stage's TotalCostUSD summed
	// over a day) above dailySpendAlarmUsd; nil when that is unset.
	DailySpend cw.Alarm
}

// Periods of the graphs and alarms: operations in 5 minutes, runs (which
// last hours) per hour, spend per day.
const (
	opsPeriod = 5 * time.Minute
	runPeriod = time.Hour
	dayPeriod = 24 * time.Hour
)

// namedFunction is a handler's function with the handler's name.
type namedFunction struct {
	ID, Name string
	Function awslambda.Function
}

// handlerFunctions are the functions of the Functions struct, in its order,
// each named by its construct id in kebab case (CheckTask: check-task, the
// handler's name): a function added to the struct is graphed and alarmed
// without a change here.
func handlerFunctions(f *Functions) []namedFunction {
	var out []namedFunction
	v := reflect.ValueOf(f).Elem()
	for i := range v.NumField() {
		fn, ok := v.Field(i).Interface().(awslambda.Function)
		if !ok || fn == nil {
			continue
		}
		id := *fn.Node().Id()
		out = append(out, namedFunction{ID: id, Name: kebab(id), Function: fn})
	}
	return out
}

// kebab writes CheckTask as check-task.
func kebab(id string) string {
	var b strings.Builder
	for i, r := range id {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('-')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// seconds is d as a whole number of seconds, for a SEARCH expression.
func seconds(d time.Duration) string { return strconv.Itoa(int(d.Seconds())) }

// searchExpression is a SEARCH over the stage's namespace for the metric
// with exactly the dimension dim (one series per value of it). A SEARCH
// cannot be alarmed on; graphs only.
func searchExpression(namespace, metric, dim, stat string, period time.Duration) string {
	return fmt.Sprintf(`SEARCH('{"%s",%s} MetricName="%s"', '%s', %s)`, namespace, dim, metric, stat, seconds(period))
}

// GrantPutMetrics lets role publish the stage's custom metrics
// (shared/metrics) and nothing else of CloudWatch: cloudwatch:PutMetricData,
// which has no resource type, on "*" on condition that the namespace is the
// stage's. The cdk-nag finding on "*" is suppressed on role, saying so.
func GrantPutMetrics(role awsiam.IRole, stage Stage) {
	awsiam.Grant_AddToPrincipal(&awsiam.GrantOnPrincipalOptions{
		Grantee:      role,
		Actions:      jsii.Strings("cloudwatch:PutMetricData"),
		ResourceArns: jsii.Strings("*"),
		Conditions: &map[string]*map[string]interface{}{
			"StringEquals": {"cloudwatch:namespace": MetricsNamespace(stage)},
		},
	})
	suppress(role, "AwsSolutions-IAM5", "cloudwatch:PutMetricData has no resource type; the cloudwatch:namespace condition limits it to the stage's namespace.",
		"Resource::*")
}

// NewMonitoring creates the dashboard and the alarms.
func NewMonitoring(scope constructs.Construct, id string, p MonitoringProps) *Monitoring {
	c := constructs.NewConstruct(scope, &id)
	ns := MetricsNamespace(p.Stage)
	fns := handlerFunctions(p.Functions)
	m := &Monitoring{}
	duration := func(d time.Duration) awscdk.Duration { return awscdk.Duration_Seconds(jsii.Number(d.Seconds())) }
	opts := func(stat, label string, period time.Duration) *cw.MetricOptions {
		return &cw.MetricOptions{Statistic: jsii.String(stat), Label: jsii.String(label), Period: duration(period)}
	}
	custom := func(name, stat, label string, period time.Duration) cw.Metric {
		return cw.NewMetric(&cw.MetricProps{Namespace: jsii.String(ns), MetricName: jsii.String(name),
			Statistic: jsii.String(stat), Label: jsii.String(label), Period: duration(period)})
	}
	// Each series of a SEARCH is labelled by its value of the dimension
	// (a dynamic label): CDK would label them all with the expression.
	search := func(metric, dim, stat string, period time.Duration) cw.IMetric {
		return cw.NewSearchExpression(&cw.SearchExpressionProps{
			Expression: jsii.String(searchExpression(ns, metric, dim, stat, period)),
			Label:      jsii.String("${PROP('Dim." + dim + "')}"),
			Period:     duration(period),
		})
	}
	graph := func(title string, width float64, metrics ...cw.IMetric) cw.GraphWidget {
		return cw.NewGraphWidget(&cw.GraphWidgetProps{
			Title: jsii.String(title), Width: jsii.Number(width), Height: jsii.Number(6), Left: &metrics,
			LeftYAxis: &cw.YAxisProps{Min: jsii.Number(0), ShowUnits: jsii.Bool(false)},
		})
	}
	alarm := func(id, name, description string, metric cw.IMetric, op cw.ComparisonOperator, threshold float64) cw.Alarm {
		a := cw.NewAlarm(c, jsii.String(id), &cw.AlarmProps{
			AlarmName:          jsii.String(alarmNamePrefix(p.Stage) + name),
			AlarmDescription:   jsii.String(description),
			Metric:             metric,
			ComparisonOperator: op,
			Threshold:          jsii.Number(threshold),
			EvaluationPeriods:  jsii.Number(1),
			DatapointsToAlarm:  jsii.Number(1),
			TreatMissingData:   cw.TreatMissingData_NOT_BREACHING,
		})
		a.AddAlarmAction(awscloudwatchactions.NewSnsAction(p.Topic))
		return a
	}

	// Alarms.
	for _, f := range fns {
		m.FunctionErrors = append(m.FunctionErrors, alarm(f.ID+"Errors", f.Name+"-errors",
			fmt.Sprintf("The %s handler of %s failed (Errors >= 1 in 5 minutes): see its log group /aws/lambda/%s.",
				f.Name, p.Stage.Prefix(), p.Stage.PhysicalName(f.Name)),
			f.Function.MetricErrors(opts("Sum", f.Name, opsPeriod)), cw.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, 1))
	}
	m.ExecutionsFailed = alarm("ExecutionsFailed", "executions-failed",
		"An execution of "+p.Stage.Prefix()+" failed (ExecutionsFailed >= 1 in 5 minutes): its run is FAILED; the execution's history says where.",
		p.StateMachine.MetricFailed(opts("Sum", "failed", opsPeriod)), cw.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, 1)
	m.ExecutionsTimedOut = alarm("ExecutionsTimedOut", "executions-timed-out",
		"An execution of "+p.Stage.Prefix()+" timed out (ExecutionsTimedOut >= 1 in 5 minutes): its run is FAILED and its jobs were terminated.",
		p.StateMachine.MetricTimedOut(opts("Sum", "timed out", opsPeriod)), cw.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD, 1)
	m.RunStoppedEarly = alarm("RunStoppedEarly", "run-stopped-early",
		"A run of "+p.Stage.Prefix()+" was stopped before all its tasks ran (RunStoppedEarly > 0 in 5 minutes): by its budget, after failed attempts in a row, or by an operator. "+
			"`arcbench runs` shows it STOPPED; its stop_reason says why.",
		custom(metrics.RunStoppedEarly, "Sum", "stopped early", opsPeriod), cw.ComparisonOperator_GREATER_THAN_THRESHOLD, 0)
	spend := custom(metrics.TotalCostUSD, "Sum", "all configurations", dayPeriod)
	if p.DailySpendAlarmUSD != nil {
		m.DailySpend = alarm("DailySpend", "daily-spend",
			fmt.Sprintf("The model spend of %s's finished runs over a day passed %s USD (dailySpendAlarmUsd): the sum of the runs' TotalCostUSD over all configurations.",
				p.Stage.Prefix(), strconv.FormatFloat(*p.DailySpendAlarmUSD, 'f', -1, 64)),
			spend, cw.ComparisonOperator_GREATER_THAN_THRESHOLD, *p.DailySpendAlarmUSD)
	}

	// Graphs.
	lambdaGraph := func(title string, metric func(awslambda.Function, *cw.MetricOptions) cw.Metric, stat string) cw.GraphWidget {
		var ms []cw.IMetric
		for _, f := range fns {
			ms = append(ms, metric(f.Function, opts(stat, f.Name, opsPeriod)))
		}
		return graph(title, 8, ms...)
	}
	var spendLine *[]*cw.HorizontalAnnotation
	if p.DailySpendAlarmUSD != nil {
		spendLine = &[]*cw.HorizontalAnnotation{{Value: p.DailySpendAlarmUSD, Label: jsii.String("dailySpendAlarmUsd")}}
	}
	spendGraph := cw.NewGraphWidget(&cw.GraphWidgetProps{
		Title: jsii.String("Model spend per day (USD)"), Width: jsii.Number(8), Height: jsii.Number(6),
		Left: &[]cw.IMetric{spend}, LeftAnnotations: spendLine,
		LeftYAxis: &cw.YAxisProps{Min: jsii.Number(0), ShowUnits: jsii.Bool(false)},
	})
	alarms := []interfacesawscloudwatch.IAlarmRef{m.ExecutionsFailed, m.ExecutionsTimedOut, m.RunStoppedEarly}
	if m.DailySpend != nil {
		alarms = append(alarms, m.DailySpend)
	}
	for _, a := range m.FunctionErrors {
		alarms = append(alarms, a)
	}
	header := fmt.Sprintf("# arcbench %s\nRuns, tasks and spend of the stage: custom metrics in `%s` (`shared/metrics`), "+
		"its Lambda functions and its state machine `%s`. Alarms notify the SNS topic `%s`.",
		p.Stage.Name, ns, p.Stage.Prefix(), p.Stage.PhysicalName("runs"))
	rows := [][]cw.IWidget{
		{cw.NewTextWidget(&cw.TextWidgetProps{Markdown: jsii.String(header), Width: jsii.Number(24), Height: jsii.Number(2)})},
		{
			graph("Runs started, ended (hourly)", 8,
				cw.NewMathExpression(&cw.MathExpressionProps{
					Expression:   jsii.String("SUM(" + searchExpression(ns, metrics.RunStarted, metrics.DimensionConfigName, "Sum", runPeriod) + ")"),
					UsingMetrics: &map[string]cw.IMetric{},
					Label:        jsii.String("started"),
					Period:       duration(runPeriod),
				}),
				search(metrics.RunEnded, metrics.DimensionStatus, "Sum", runPeriod),
				custom(metrics.RunStoppedEarly, "Sum", "stopped early", runPeriod)),
			graph("Attempts failed by reason", 8, search(metrics.AttemptFailed, metrics.DimensionReason, "Sum", opsPeriod)),
			graph("Batch jobs ended by status", 8, search(metrics.JobEnded, metrics.DimensionStatus, "Sum", opsPeriod)),
		},
		{
			graph("Score by configuration (%)", 8, search(metrics.Score, metrics.DimensionConfigName, "Average", runPeriod)),
			graph("Run cost by config (USD)", 8, search(metrics.TotalCostUSD, metrics.DimensionConfigName, "Sum", runPeriod)),
			spendGraph,
		},
		{
			lambdaGraph("Lambda errors", awslambda.Function.MetricErrors, "Sum"),
			lambdaGraph("Lambda throttles", awslambda.Function.MetricThrottles, "Sum"),
			lambdaGraph("Lambda duration p99 (ms)", awslambda.Function.MetricDuration, "p99"),
		},
		{
			graph("Run executions failed, timed out, aborted", 12,
				p.StateMachine.MetricFailed(opts("Sum", "failed", opsPeriod)),
				p.StateMachine.MetricTimedOut(opts("Sum", "timed out", opsPeriod)),
				p.StateMachine.MetricAborted(opts("Sum", "aborted", opsPeriod))),
			cw.NewAlarmStatusWidget(&cw.AlarmStatusWidgetProps{Title: jsii.String("Alarms"), Alarms: &alarms, Width: jsii.Number(12), Height: jsii.Number(6)}),
		},
	}
	var widgets []*[]cw.IWidget
	for _, row := range rows {
		widgets = append(widgets, &row)
	}
	m.Dashboard = cw.NewDashboard(c, jsii.String("Dashboard"), &cw.DashboardProps{
		DashboardName:   jsii.String(p.Stage.Prefix()),
		DefaultInterval: awscdk.Duration_Days(jsii.Number(7)),
		// Each graph keeps its own period: spend is per day whatever the range.
		PeriodOverride: cw.PeriodOverride_INHERIT,
		Widgets:        &widgets,
	})
	return m
}
