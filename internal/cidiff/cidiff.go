// Package cidiff is what the pull-request workflow checks and posts about a
// stage's `cdk diff`: whether the change would delete or replace a stage's
// data (a retained resource, a table, the bucket), and the comment that shows
// the diff on the pull request, one per stage, updated in place.
package cidiff

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
)

// AllowLabel is the pull-request label that says a deletion or replacement
// of a stage's data is meant: with it the check reports, and passes.
const AllowLabel = "replaces-stage-data"

// replacedBy are, per resource type holding data, the properties whose change
// makes CloudFormation replace the resource (a new, empty one; the old one
// deleted, or orphaned when retained), from each type's reference
// ("Update requires: Replacement").
var replacedBy = map[string][]string{
	"AWS::DynamoDB::Table":       {"TableName", "KeySchema", "LocalSecondaryIndexes", "ImportSourceSpecification"},
	"AWS::DynamoDB::GlobalTable": {"TableName", "KeySchema", "LocalSecondaryIndexes"},
	"AWS::S3::Bucket":            {"BucketName"},
	"AWS::Logs::LogGroup":        {"LogGroupName"},
	"AWS::KMS::Key":              {},
}

// Change is a resource holding a stage's data that a deploy would delete or replace.
type Change struct {
	LogicalID string
	Type      string
	// What happens to it: "deleted", or "replaced (TableName changes)".
	What string
}

func (c Change) String() string {
	return fmt.Sprintf("%s (%s) would be %s", c.LogicalID, c.Type, c.What)
}

type template struct {
	Resources map[string]resource `json:"Resources"`
}

type resource struct {
	Type           string                     `json:"Type"`
	Properties     map[string]json.RawMessage `json:"Properties"`
	DeletionPolicy string                     `json:"DeletionPolicy"`
}

// holdsData tells a resource whose loss loses data: one the template
// retains, or a table or bucket whatever its policy.
func (r resource) holdsData() bool {
	switch r.DeletionPolicy {
	case "Retain", "RetainExceptOnCreate", "Snapshot":
		return true
	}
	return r.Type == "AWS::DynamoDB::Table" || r.Type == "AWS::DynamoDB::GlobalTable" || r.Type == "AWS::S3::Bucket"
}

// DataChanges compares the deployed template with the synthesized one and
// lists the resources holding data that the deploy would delete (gone, or
// of another type under the same logical id) or replace (a property that
// requires replacement changed), in logical-id order.
func DataChanges(deployed, synthesized []byte) ([]Change, error) {
	var before, after template
	if err := json.Unmarshal(deployed, &before); err != nil {
		return nil, fmt.Errorf("the deployed template: %w", err)
	}
	if err := json.Unmarshal(synthesized, &after); err != nil {
		return nil, fmt.Errorf("the synthesized template: %w", err)
	}
	ids := make([]string, 0, len(before.Resources))
	for id := range before.Resources {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var changes []Change
	for _, id := range ids {
		old := before.Resources[id]
		if !old.holdsData() {
			continue
		}
		now, ok := after.Resources[id]
		switch {
		case !ok:
			changes = append(changes, Change{id, old.Type, "deleted"})
		case now.Type != old.Type:
			changes = append(changes, Change{id, old.Type, "deleted (replaced by a " + now.Type + ")"})
		default:
			var changed []string
			for _, p := range replacedBy[old.Type] {
				if !sameJSON(old.Properties[p], now.Properties[p]) {
					changed = append(changed, p)
				}
			}
			if len(changed) > 0 {
				changes = append(changes, Change{id, old.Type, "replaced (" + strings.Join(changed, ", ") + " changes)"})
			}
		}
	}
	return changes, nil
}

func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	return reflect.DeepEqual(x, y)
}

// Marker opens a stage's comment: the workflow finds the comment to update by it.
func Marker(stage string) string { return "<!-- arcbench-cdk-diff:" + stage + " -->" }

// MaxCommentBytes keeps a comment under GitHub's 65,536 characters.
const MaxCommentBytes = 60000

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")

// Comment is the pull request's comment for one stage: the verdict on its
// data, then the diff as `cdk diff` printed it (colours removed; cut to fit,
// saying so), for commit sha.
func Comment(stage, sha, diff string, changes []Change, allowed bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n### `cdk diff` of stage `%s`\n\n", Marker(stage), stage)
	switch {
	case len(changes) == 0:
		b.WriteString("No table, bucket or retained resource of the stage is deleted or replaced.\n")
	case allowed:
		fmt.Fprintf(&b, "**This change deletes or replaces the stage's data**, and the pull request's `%s` label says it is meant:\n\n", AllowLabel)
	default:
		fmt.Fprintf(&b, "**This change deletes or replaces the stage's data; the check fails** unless the pull request carries the label `%s`:\n\n", AllowLabel)
	}
	for _, c := range changes {
		fmt.Fprintf(&b, "- `%s` (%s) would be %s\n", c.LogicalID, c.Type, c.What)
	}
	diff = strings.TrimSpace(ansi.ReplaceAllString(diff, ""))
	if diff == "" {
		diff = "(no differences)"
	}
	footer := fmt.Sprintf("\n_For %s; updated in place by the pull-request workflow on every push._\n", shortSHA(sha))
	room := MaxCommentBytes - b.Len() - len(footer) - 200
	if len(diff) > room {
		cut := strings.LastIndexByte(diff[:room], '\n')
		if cut < 0 {
			cut = room
		}
		diff = diff[:cut] + fmt.Sprintf("\n... (%d more bytes: the whole diff is in the workflow run's log)", len(diff)-cut)
	}
	fmt.Fprintf(&b, "\n<details open><summary>the diff</summary>\n\n```diff\n%s\n```\n\n</details>\n", strings.ReplaceAll(diff, "```", "'''"))
	b.WriteString(footer)
	return b.String()
}

func shortSHA(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
