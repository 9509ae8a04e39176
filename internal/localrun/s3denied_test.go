package localrun_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"arcbench/internal/localrun"
	"arcbench/shared/model"
)

// taskError is the error a task record holds (the worker's own account of
// its failed attempt).
func taskError(t *testing.T, db *dynamodb.Client, res *localrun.Result, id string) string {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(table(res, "-tasks")), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{
			"run_id": &types.AttributeValueMemberS{Value: res.RunID}, "task_id": &types.AttributeValueMemberS{Value: id},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return str(out.Item, model.AttrError)
}

// The job role may get task files but not list the bucket: as on AWS, its
// read of a task file that is not there is refused (403 AccessDenied), not
// answered 404 NoSuchKey, and that is S3's answer, not a refusal by IAM (the
// run is not failed for a denial). Without the IAM check the S3 server's
// NoSuchKey comes through.
func TestAMissingTaskFileIsAccessDeniedToTheWorker(t *testing.T) {
	const id = "ab000001"
	// The worker looks where no task file was seeded.
	elsewhere := map[string]string{"S3_TASKS_PREFIX": "tasks/elsewhere"}
	res, db := run(t, localrun.Options{TaskIDs: []string{id}, MaxRetries: 1, WorkerEnv: elsewhere})
	if res.Status != "SUCCEEDED" || res.RunStatus != model.RunFailed {
		t.Fatalf("execution %s, run %s: %s %s", res.Status, res.RunStatus, res.Error, res.Cause)
	}
	if e := taskError(t, db, res, id); !strings.Contains(e, "tasks/elsewhere/"+id+".json") || !strings.Contains(e, "AccessDenied") || strings.Contains(e, "NoSuchKey") {
		t.Errorf("the worker's error %q: want S3's AccessDenied for its missing task file", e)
	}
	m := res.Session.MissingKeys()
	if len(m) != 1 || !strings.HasPrefix(m[0].Principal, "BatchWorkerRole") || m[0].Action != "s3:ListBucket" ||
		!strings.Contains(m[0].Reason, "tasks/elsewhere/"+id+".json") {
		t.Errorf("missing keys answered AccessDenied: %v, want the worker's one", m)
	}

	res, db = runDenied(t, localrun.Options{TaskIDs: []string{id}, MaxRetries: 1, WorkerEnv: elsewhere, NoIAM: true})
	if e := taskError(t, db, res, id); !strings.Contains(e, "NoSuchKey") {
		t.Errorf("without the IAM check, the worker's error %q: want the server's NoSuchKey", e)
	}
}
