package cidiff_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"arcbench/internal/cidiff"
)

// snapshot is a stage's real synthesized template (kept by the infra
// snapshot test), to edit into the template of a change.
func snapshot(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile("../../infra/testdata/sandbox-x.template.json")
	if err != nil {
		t.Fatal(err)
	}
	var tmpl map[string]any
	if err := json.Unmarshal(raw, &tmpl); err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func resourcesOf(tmpl map[string]any) map[string]any { return tmpl["Resources"].(map[string]any) }

func props(tmpl map[string]any, id string) map[string]any {
	return resourcesOf(tmpl)[id].(map[string]any)["Properties"].(map[string]any)
}

// What a reviewer must be stopped at: a table or the bucket deleted, or
// replaced by a change of a property that requires replacement; and what
// must pass: the same template, or a change of anything else.
func TestDataChanges(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(tmpl map[string]any)
		want []string
	}{
		{"nothing changes", func(map[string]any) {}, nil},
		{"a function's memory changes", func(tmpl map[string]any) {
			for _, r := range resourcesOf(tmpl) {
				if r.(map[string]any)["Type"] == "AWS::Lambda::Function" {
					r.(map[string]any)["Properties"].(map[string]any)["MemorySize"] = 1024.0
				}
			}
		}, nil},
		{"a table's billing and an index change", func(tmpl map[string]any) {
			props(tmpl, "DataRunsF6B57DF6")["BillingMode"] = "PROVISIONED"
			delete(props(tmpl, "DataRunsF6B57DF6"), "GlobalSecondaryIndexes")
		}, nil},
		{"the tasks table is removed", func(tmpl map[string]any) {
			delete(resourcesOf(tmpl), "DataTasksAC8118B6")
		}, []string{"DataTasksAC8118B6 (AWS::DynamoDB::Table) would be deleted"}},
		{"the runs table's construct is renamed", func(tmpl map[string]any) {
			r := resourcesOf(tmpl)
			r["DataRunsRenamed"] = r["DataRunsF6B57DF6"]
			delete(r, "DataRunsF6B57DF6")
		}, []string{"DataRunsF6B57DF6 (AWS::DynamoDB::Table) would be deleted"}},
		{"the tasks table's key and name change", func(tmpl map[string]any) {
			p := props(tmpl, "DataTasksAC8118B6")
			p["TableName"] = "arc-benchmark-sandbox-x-tasks-v2"
			p["KeySchema"] = []any{map[string]any{"AttributeName": "task_id", "KeyType": "HASH"}}
		}, []string{"DataTasksAC8118B6 (AWS::DynamoDB::Table) would be replaced (TableName, KeySchema changes)"}},
		{"the bucket gets a name", func(tmpl map[string]any) {
			props(tmpl, "StorageBucket5CB7C8EA")["BucketName"] = "arc-benchmark-bucket"
		}, []string{"StorageBucket5CB7C8EA (AWS::S3::Bucket) would be replaced (BucketName changes)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := snapshot(t)
			after := snapshot(t)
			c.edit(after)
			changes, err := cidiff.DataChanges(encode(t, before), encode(t, after))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ch := range changes {
				got = append(got, ch.String())
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}

// The comment names its stage in the marker the workflow updates it by,
// says whether the change fails the check and why, shows the diff without
// terminal colours, and stays within GitHub's comment size.
func TestCommentTellsTheVerdictAndFitsGitHub(t *testing.T) {
	changes := []cidiff.Change{{LogicalID: "DataTasksAC8118B6", Type: "AWS::DynamoDB::Table", What: "deleted"}}
	diff := "Stack arc-benchmark-prod\nResources\n\x1b[31m[-] AWS::DynamoDB::Table DataTasksAC8118B6 destroy\x1b[39m\n"

	failing := cidiff.Comment("prod", "0123456789abcdef", diff, changes, false)
	for _, want := range []string{cidiff.Marker("prod"), "the check fails", "`" + cidiff.AllowLabel + "`",
		"- `DataTasksAC8118B6` (AWS::DynamoDB::Table) would be deleted", "[-] AWS::DynamoDB::Table DataTasksAC8118B6 destroy", "0123456"} {
		if !strings.Contains(failing, want) {
			t.Errorf("comment lacks %q:\n%s", want, failing)
		}
	}
	if strings.Contains(failing, "\x1b") {
		t.Errorf("comment keeps terminal colours:\n%q", failing)
	}
	if allowed := cidiff.Comment("prod", "0123456", diff, changes, true); strings.Contains(allowed, "the check fails") || !strings.Contains(allowed, "says it is meant") {
		t.Errorf("an allowed change's comment:\n%s", allowed)
	}
	if clean := cidiff.Comment("sandbox-ci", "0123456", "", nil, false); !strings.Contains(clean, "No table, bucket or retained resource") ||
		!strings.Contains(clean, cidiff.Marker("sandbox-ci")) || strings.Contains(clean, cidiff.Marker("prod")) {
		t.Errorf("a harmless change's comment:\n%s", clean)
	}
	huge := cidiff.Comment("prod", "0123456", strings.Repeat("[~] AWS::Lambda::Function Fn\n", 10000), nil, false)
	if len(huge) > cidiff.MaxCommentBytes || !strings.Contains(huge, "more bytes: the whole diff is in the workflow run's log") {
		t.Errorf("a huge diff's comment is %d bytes (limit %d), or does not say it was cut", len(huge), cidiff.MaxCommentBytes)
	}
}
