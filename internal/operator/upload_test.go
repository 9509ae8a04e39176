package operator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"arcbench/internal/operator"
	"arcbench/internal/testenv"
	"arcbench/shared/arcdata"
	"arcbench/shared/clients"
	"arcbench/shared/model"
)

var dataSources atomic.Int64

// freshDataSource is a data source no other test (and no seeding) writes to.
func freshDataSource() string {
	return fmt.Sprintf("upload-test-%d", dataSources.Add(1))
}

// writeTasks writes generated tasks into dir as <id>.json and returns their bytes.
func writeTasks(t *testing.T, dir string, ids []string) map[string][]byte {
	t.Helper()
	bodies := map[string][]byte{}
	for _, id := range ids {
		body, err := json.Marshal(arcdata.Generate(id, 5))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, id+".json"), body, 0o644); err != nil {
			t.Fatal(err)
		}
		bodies[id] = body
	}
	return bodies
}

type uploadReport struct {
	DataSource string   `json:"data_source"`
	Bucket     string   `json:"bucket"`
	Prefix     string   `json:"prefix"`
	TotalTasks int      `json:"total_tasks"`
	Uploaded   []string `json:"uploaded"`
	Unchanged  []string `json:"unchanged"`
}

// uploadJSON runs `arcbench tasks upload --json` and reads its report.
func uploadJSON(t *testing.T, dir, dataSource string) uploadReport {
	t.Helper()
	out, stderr, code := arcbench(t, "tasks", "upload", dir, "--data-source", dataSource, "--json")
	if code != 0 {
		t.Fatalf("tasks upload: exit %d: %s", code, stderr)
	}
	var r uploadReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("tasks upload --json printed %q", out)
	}
	return r
}

type storedTask struct {
	Body        []byte
	ContentType string
}

// storedTasks reads every object under a data source's folder, by key.
func storedTasks(t *testing.T, dataSource string) map[string]storedTask {
	t.Helper()
	ctx := context.Background()
	c := clients.NewLocal(session.Stack.Endpoint).S3
	list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(session.Bucket), Prefix: aws.String(model.TaskDataPrefix(dataSource) + "/")})
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]storedTask{}
	for _, obj := range list.Contents {
		got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(session.Bucket), Key: obj.Key})
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(got.Body)
		got.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		stored[aws.ToString(obj.Key)] = storedTask{Body: body, ContentType: aws.ToString(got.ContentType)}
	}
	return stored
}

// checkStored fails unless the data source holds exactly these tasks, byte for byte.
func checkStored(t *testing.T, dataSource string, want map[string][]byte) {
	t.Helper()
	stored := storedTasks(t, dataSource)
	if len(stored) != len(want) {
		t.Errorf("%d objects under %s/, want %d", len(stored), model.TaskDataPrefix(dataSource), len(want))
	}
	for id, body := range want {
		key := model.TaskDataKey(dataSource, id)
		got, ok := stored[key]
		switch {
		case !ok:
			t.Errorf("%s is not in the bucket", key)
		case string(got.Body) != string(body):
			t.Errorf("%s does not hold the file's bytes", key)
		case got.ContentType != "application/json":
			t.Errorf("%s has content type %q", key, got.ContentType)
		}
	}
}

func TestTasksUploadSkipsUnchangedFiles(t *testing.T) {
	dataSource := freshDataSource()
	dir := t.TempDir()
	ids := arcdata.IDs(12, 77)
	slices.Sort(ids)
	bodies := writeTasks(t, dir, ids)
	// Not tasks, and not uploaded.
	if err := os.WriteFile(filepath.Join(dir, "README.md"), []byte("ARC tasks"), 0o644); err != nil {
		t.Fatal(err)
	}

	// First upload: everything, and one summary line on stdout.
	out, stderr, code := arcbench(t, "tasks", "upload", dir, "--data-source", dataSource)
	if code != 0 {
		t.Fatalf("tasks upload: exit %d: %s", code, stderr)
	}
	want := fmt.Sprintf("12 tasks in tasks/%s/ of s3://%s: 12 uploaded, 0 unchanged\n", dataSource, session.Bucket)
	if out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	checkStored(t, dataSource, bodies)

	// Again: nothing changed, nothing uploaded.
	r := uploadJSON(t, dir, dataSource)
	if len(r.Uploaded) != 0 || !slices.Equal(r.Unchanged, ids) || r.TotalTasks != 12 {
		t.Errorf("second upload: uploaded %v, unchanged %v of %d; want none uploaded", r.Uploaded, r.Unchanged, r.TotalTasks)
	}
	if r.Bucket != session.Bucket || r.Prefix != "tasks/"+dataSource+"/" || r.DataSource != dataSource {
		t.Errorf("report names %s, %s, %s", r.Bucket, r.Prefix, r.DataSource)
	}

	// One cell changed, the size the same: only the MD5 tells, and exactly
	// that file is uploaded.
	changed := ids[4]
	body := bodies[changed]
	at := strings.Index(string(body), `"input":[[`) + len(`"input":[[`)
	edited := slices.Clone(body)
	edited[at] = '0' + (body[at]-'0'+1)%10
	if err := os.WriteFile(filepath.Join(dir, changed+".json"), edited, 0o644); err != nil {
		t.Fatal(err)
	}
	bodies[changed] = edited
	r = uploadJSON(t, dir, dataSource)
	if !slices.Equal(r.Uploaded, []string{changed}) || len(r.Unchanged) != 11 {
		t.Errorf("after changing %s: uploaded %v, %d unchanged", changed, r.Uploaded, len(r.Unchanged))
	}
	checkStored(t, dataSource, bodies)
}

func TestTasksUploadRefusesABadFolder(t *testing.T) {
	good := `{"train":[{"input":[[1]],"output":[[2]]}],"test":[{"input":[[1]]}]}`
	rows := func(n int) string { return "[" + strings.Repeat("[0],", n-1) + "[0]]" }
	big := "[" + strings.Repeat("["+strings.Repeat("0,", 99)+"0],", 99) + "[" + strings.Repeat("0,", 99) + "0]]"
	cases := []struct {
		name  string
		files map[string]string // besides three good tasks
		links map[string]string // name: target
		want  string            // after the folder's path and a slash
	}{
		{"a bad id", map[string]string{"a b.json": good}, nil, `a b.json: task id "a b" has characters outside`},
		{"not JSON", map[string]string{"0badf00d.json": `{"train": [`}, nil, "0badf00d.json: not an ARC task"},
		{"not an ARC task", map[string]string{"0badf00d.json": `{"run_id": "run-1"}`}, nil,
			`0badf00d.json: unknown key "run_id": an ARC task has exactly "train" and "test", in lower case`},
		{"Train and Test", map[string]string{"0badf00d.json": `{"Train":[{"input":[[1]],"output":[[2]]}],"Test":[{"input":[[1]]}]}`}, nil,
			`0badf00d.json: unknown key "Train": an ARC task has exactly "train" and "test", in lower case`},
		{"Output", map[string]string{"0badf00d.json": `{"train":[{"input":[[1]],"Output":[[2]]}],"test":[{"input":[[1]]}]}`}, nil,
			`0badf00d.json: train[0]: unknown key "Output": an ARC pair has only "input" and "output", in lower case`},
		{"a key twice", map[string]string{"0badf00d.json": `{"train":[],"test":[{"input":[[1]],"output":[[1]],"output":[[2]]}]}`}, nil,
			`0badf00d.json: test[0]: key "output" appears twice`},
		{"a 100x100 grid", map[string]string{"0badf00d.json": `{"train":[],"test":[{"input":` + big + `}]}`}, nil,
			"0badf00d.json: test[0].input: 100 rows, ARC grids have 1 to 30"},
		{"31 rows", map[string]string{"007bbfb7.json": `{"train":[],"test":[{"input":[[1]],"output":` + rows(31) + `}]}`}, nil,
			"007bbfb7.json: test[0].output: 31 rows, ARC grids have 1 to 30"},
		{"a bad colour", map[string]string{"0badf00d.json": `{"train":[],"test":[{"input":[[11]]}]}`}, nil,
			"0badf00d.json: test[0].input: cell [0][0] is 11, not a colour 0-9"},
		{"1.0", map[string]string{"0badf00d.json": `{"train":[],"test":[{"input":[[1.0]]}]}`}, nil,
			"0badf00d.json: test[0].input: cell [0][0] is 1.0, not an integer 0-9 (write colours as integers)"},
		{"a string cell", map[string]string{"0badf00d.json": `{"train":[],"test":[{"input":[["1"]]}]}`}, nil,
			`0badf00d.json: test[0].input: cell [0][0] is the string "1", not an integer 0-9`},
		{"a null grid", map[string]string{"0badf00d.json": `{"train":[{"input":[[1]],"output":null}],"test":[{"input":[[1]]}]}`}, nil,
			"0badf00d.json: train[0].output: null, want a grid (a list of rows of integers 0-9)"},
		{"a train pair without output", map[string]string{"0badf00d.json": `{"train":[{"input":[[1]]}],"test":[{"input":[[1]]}]}`}, nil,
			"0badf00d.json: train[0].output: missing (a train pair shows its output; only a test pair's may be withheld)"},
		{"no test pair", map[string]string{"0badf00d.json": `{"train":[{"input":[[1]],"output":[[2]]}],"test":[]}`}, nil,
			"0badf00d.json: no test pair: an ARC task has at least one"},
		{"a dangling symlink", nil, map[string]string{"0badf00d.json": "../gone/0badf00d.json"},
			"0badf00d.json: cannot read: a symbolic link to ../gone/0badf00d.json, which does not exist"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dataSource := freshDataSource()
			dir := t.TempDir()
			// Good files on both sides of the bad one: none is uploaded.
			writeTasks(t, dir, append(arcdata.IDs(3, 5), "00000000", "ffffffff"))
			for name, body := range c.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for name, target := range c.links {
				if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
			out, stderr, code := arcbench(t, "tasks", "upload", dir, "--data-source", dataSource)
			if code != 2 {
				t.Errorf("exit %d, want 2; stdout %q", code, out)
			}
			oneLine(t, stderr, filepath.Join(dir, c.want))
			if n := len(storedTasks(t, dataSource)); n != 0 {
				t.Errorf("%d objects uploaded from a folder with a bad file", n)
			}
		})
	}

	t.Run("no tasks", func(t *testing.T) {
		dir := t.TempDir()
		_, stderr, code := arcbench(t, "tasks", "upload", dir)
		if code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		oneLine(t, stderr, dir+" has no .json files")
	})
	t.Run("no folder", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nope")
		_, stderr, code := arcbench(t, "tasks", "upload", dir)
		if code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		oneLine(t, stderr, dir)
	})
	t.Run("bad data source", func(t *testing.T) {
		dir := t.TempDir()
		writeTasks(t, dir, arcdata.IDs(1, 5))
		_, stderr, code := arcbench(t, "tasks", "upload", dir, "--data-source", "a/b")
		if code == 0 {
			t.Error("exit 0")
		}
		oneLine(t, stderr, "--data-source: invalid input: data_source")
	})
}

func TestStartRefusesTasksWithoutData(t *testing.T) {
	dataSource := freshDataSource()
	dir := t.TempDir()
	ids := arcdata.IDs(8, 1234)
	writeTasks(t, dir, ids[:1])
	if r := uploadJSON(t, dir, dataSource); len(r.Uploaded) != 1 {
		t.Fatalf("uploaded %v", r.Uploaded)
	}

	fix := fmt.Sprintf("upload them with `arcbench tasks upload DIR --stage local --data-source %s`", dataSource)
	folder := fmt.Sprintf("s3://%s/tasks/%s/", session.Bucket, dataSource)
	cases := []struct {
		name string
		ids  []string
		want string
	}{
		{"one missing", ids[:2], fmt.Sprintf("1 of 2 tasks has no data under %s (%s): %s", folder, ids[1], fix)},
		{"many missing", ids, fmt.Sprintf("7 of 8 tasks have no data under %s (%s and 2 more): %s", folder, strings.Join(ids[1:6], ", "), fix)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			config := "ops-nodata-" + strings.ReplaceAll(c.name, " ", "-")
			args := []string{"start", "--config", config, "--data-source", dataSource}
			for _, id := range c.ids {
				args = append(args, "--task", id)
			}
			out, stderr, code := arcbench(t, args...)
			if code == 0 {
				t.Fatalf("start of tasks without data: exit 0, stdout %q", out)
			}
			oneLine(t, stderr, c.want)

			// Nothing started: the configuration has no run.
			out, stderr, code = arcbench(t, "runs", "--config", config, "--json")
			if code != 0 {
				t.Fatalf("runs: exit %d: %s", code, stderr)
			}
			if strings.TrimSpace(out) != "[]" {
				t.Errorf("a run was made: %s", out)
			}
		})
	}
}

// notStarted is a Step Functions API that starts nothing and counts the tries.
type notStarted struct{ calls atomic.Int64 }

func (n *notStarted) StartExecution(context.Context, *sfn.StartExecutionInput, ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error) {
	n.calls.Add(1)
	return nil, errors.New("not started")
}

func (n *notStarted) DescribeExecution(context.Context, *sfn.DescribeExecutionInput, ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error) {
	return nil, errors.New("no execution")
}

func (n *notStarted) StopExecution(context.Context, *sfn.StopExecutionInput, ...func(*sfn.Options)) (*sfn.StopExecutionOutput, error) {
	return nil, errors.New("no execution")
}

// Both listings read every page. The local stage's S3 server answers a
// listing in one page whatever its size; the in-memory one pages by 1,000
// keys, as S3 does, so the operator runs against it here.
func TestTaskDataListingsReadEveryPage(t *testing.T) {
	ctx := context.Background()
	c := testenv.DirectS3(t)
	bucket := fmt.Sprintf("paging-%d", dataSources.Add(1))
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	sf := &notStarted{}
	op := &operator.Operator{Stage: &operator.Stage{Name: "paging", Bucket: bucket}, S3: c, SFN: sf, Now: time.Now}
	files := make([]arcdata.TaskFile, 1001)
	for i := range files {
		id := fmt.Sprintf("t%04d", i)
		files[i] = arcdata.TaskFile{ID: id, Path: id + ".json", Body: fmt.Appendf(nil, `{"train":[],"test":[{"input":[[%d]]}]}`, i%10)}
	}

	var calls [][2]int
	r, err := op.UploadTasks(ctx, files, "paged", func(done, total int) { calls = append(calls, [2]int{done, total}) })
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Uploaded) != 1001 || len(r.Unchanged) != 0 {
		t.Fatalf("first upload: %d uploaded, %d unchanged", len(r.Uploaded), len(r.Unchanged))
	}
	for i, call := range calls {
		if call != [2]int{i, 1001} {
			t.Fatalf("progress call %d was %v, want [%d 1001]", i, call, i)
		}
	}
	if len(calls) != 1002 {
		t.Errorf("%d progress calls, want 1002 (0 to 1001)", len(calls))
	}

	// t1000 is the one key of the second page.
	if r, err = op.UploadTasks(ctx, files, "paged", nil); err != nil {
		t.Fatal(err)
	} else if len(r.Uploaded) != 0 {
		t.Errorf("second upload uploaded %v again", r.Uploaded)
	}
	_, err = op.Start(ctx, operator.StartInput{ConfigName: "c", DataSource: "paged", TaskIDs: []string{"t1000", "t0000", "absent"}})
	want := "1 of 3 tasks has no data under s3://" + bucket + "/tasks/paged/ (absent): "
	var ue *operator.Error
	if !errors.As(err, &ue) || !strings.Contains(ue.Msg, want) {
		t.Errorf("start: %v, want an operator.Error with %q", err, want)
	}
	if n := sf.calls.Load(); n != 0 {
		t.Errorf("%d executions started", n)
	}
}

// Withheld test outputs, and grids of 1x1 and 30x30, are ARC's: uploaded,
// byte for byte.
func TestTasksUploadAcceptsWithheldOutputs(t *testing.T) {
	dataSource := freshDataSource()
	dir := t.TempDir()
	full := "[" + strings.Repeat("["+strings.Repeat("3,", 29)+"3],", 29) + "[" + strings.Repeat("3,", 29) + "3]]"
	bodies := map[string][]byte{
		"0934a4d8": []byte(`{"train":[{"input":[[1]],"output":[[2]]}],"test":[{"input":` + full + `}]}`),
		"135a2760": []byte("{\n  \"test\": [{\"input\": [[0, 1]]}, {\"input\": [[2]], \"output\": [[4]]}],\n  \"train\": [{\"output\": [[1, 0]], \"input\": [[0, 1]]}]\n}\n"),
	}
	for id, body := range bodies {
		if err := os.WriteFile(filepath.Join(dir, id+".json"), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if r := uploadJSON(t, dir, dataSource); !slices.Equal(r.Uploaded, []string{"0934a4d8", "135a2760"}) {
		t.Errorf("uploaded %v", r.Uploaded)
	}
	checkStored(t, dataSource, bodies)
}

// UploadTasks checks every file it is given, not only LoadDir's, before it
// writes any: a bad one anywhere in the list leaves the bucket untouched.
func TestUploadTasksChecksEveryFileBeforeWritingAny(t *testing.T) {
	ctx := context.Background()
	c := testenv.DirectS3(t)
	bucket := fmt.Sprintf("checked-%d", dataSources.Add(1))
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	op := &operator.Operator{Stage: &operator.Stage{Name: "checked", Bucket: bucket}, S3: c, SFN: &notStarted{}, Now: time.Now}
	good := func(id string) arcdata.TaskFile {
		return arcdata.TaskFile{ID: id, Path: "data/" + id + ".json", Body: []byte(`{"train":[],"test":[{"input":[[1]]}]}`)}
	}
	cases := []struct {
		name string
		bad  arcdata.TaskFile
		want string
	}{
		{"Train", arcdata.TaskFile{ID: "0badf00d", Path: "data/0badf00d.json", Body: []byte(`{"Train":[],"test":[{"input":[[1]]}]}`)},
			`data/0badf00d.json: unknown key "Train": an ARC task has exactly "train" and "test", in lower case`},
		{"31 columns", arcdata.TaskFile{ID: "0badf00d", Path: "data/0badf00d.json", Body: []byte(`{"train":[],"test":[{"input":[[` + strings.Repeat("1,", 30) + `1]]}]}`)},
			"data/0badf00d.json: test[0].input: 31 columns, ARC grids have 1 to 30"},
		{"a bad id", arcdata.TaskFile{ID: "a/b", Path: "data/a/b.json", Body: good("x").Body},
			`data/a/b.json: task id "a/b" has characters outside [A-Za-z0-9._-]`},
		{"an id twice", good("00000001"), "data/00000001.json and data/00000001.json are both task 00000001"},
	}
	for _, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			files := []arcdata.TaskFile{good("00000001"), good("00000002"), cs.bad, good("00000003")}
			r, err := op.UploadTasks(ctx, files, "refused", nil)
			var ue *operator.Error
			if !errors.As(err, &ue) || ue.Msg != cs.want {
				t.Errorf("UploadTasks: %v, %v; want an operator.Error %q", r, err, cs.want)
			}
			list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Contents) != 0 {
				t.Errorf("%d objects written", len(list.Contents))
			}
		})
	}
}

// oneLine fails unless stderr is one line containing want.
func oneLine(t *testing.T, stderr, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Errorf("stderr %q, want one line with %q", stderr, want)
	}
}
