package operator

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sync/errgroup"

	"arcbench/shared/arcdata"
	"arcbench/shared/model"
)

// uploadConcurrency bounds the PutObject calls in flight: enough to hide the
// round trips of small objects, few enough not to be throttled.
const uploadConcurrency = 8

// missingShown is how many ids of tasks without data an error names.
const missingShown = 5

// UploadReport is what an upload of task files did.
type UploadReport struct {
	DataSource string `json:"data_source"`
	Bucket     string `json:"bucket"`
	// Prefix is the data source's folder in the bucket, with its slash.
	Prefix     string `json:"prefix"`
	TotalTasks int    `json:"total_tasks"`
	// Uploaded and Unchanged are task ids, sorted.
	Uploaded  []string `json:"uploaded"`
	Unchanged []string `json:"unchanged"`
}

// String is the report's one-line summary.
func (r *UploadReport) String() string {
	return fmt.Sprintf("%d tasks in %s of s3://%s: %d uploaded, %d unchanged",
		r.TotalTasks, r.Prefix, r.Bucket, len(r.Uploaded), len(r.Unchanged))
}

// UploadTasks puts each task file at model.TaskDataKey(dataSource, id) in the
// stage's bucket, skipping the files stored already with the same bytes.
// Every file is checked (its id, and its bytes by arcdata.Decode, as
// arcdata.LoadDir checked them) before any is written, so a bad one never
// leaves a folder half uploaded, whoever gathered the files. progress, if
// not nil, is called with the number of files uploaded so far out of those
// to upload.
func (o *Operator) UploadTasks(ctx context.Context, files []arcdata.TaskFile, dataSource string, progress func(done, total int)) (*UploadReport, error) {
	if err := model.ValidateName("data_source", dataSource); err != nil {
		return nil, &Error{Msg: "--data-source: " + err.Error()}
	}
	if len(files) == 0 {
		return nil, &Error{Msg: "no task files to upload"}
	}
	if err := checkTaskFiles(files); err != nil {
		return nil, err
	}
	stored, err := o.listTaskData(ctx, dataSource)
	if err != nil {
		return nil, err
	}
	report := &UploadReport{DataSource: dataSource, Bucket: o.Stage.Bucket, Prefix: taskDataFolder(dataSource),
		TotalTasks: len(files), Uploaded: []string{}, Unchanged: []string{}}
	var todo []arcdata.TaskFile
	for _, f := range files {
		if obj, ok := stored[model.TaskDataKey(dataSource, f.ID)]; ok && obj.holds(f.Body) {
			report.Unchanged = append(report.Unchanged, f.ID)
		} else {
			todo = append(todo, f)
		}
	}
	if err := o.putTasks(ctx, todo, dataSource, progress); err != nil {
		return nil, err
	}
	for _, f := range todo {
		report.Uploaded = append(report.Uploaded, f.ID)
	}
	return report, nil
}

// checkTaskFiles refuses the first bad file, naming it: an id that is not
// one, bytes that are not an ARC task, or an id twice.
func checkTaskFiles(files []arcdata.TaskFile) error {
	seen := make(map[string]string, len(files))
	for _, f := range files {
		if err := arcdata.ValidID(f.ID); err != nil {
			return &Error{Msg: fmt.Sprintf("%s: %v", f.Path, err)}
		}
		if _, err := arcdata.Decode(f.Body); err != nil {
			return &Error{Msg: fmt.Sprintf("%s: %v", f.Path, err)}
		}
		if other, ok := seen[f.ID]; ok {
			return &Error{Msg: fmt.Sprintf("%s and %s are both task %s", other, f.Path, f.ID)}
		}
		seen[f.ID] = f.Path
	}
	return nil
}

// putTasks uploads files with bounded concurrency; the first failure stops
// the rest (a second upload skips what the first one finished).
func (o *Operator) putTasks(ctx context.Context, files []arcdata.TaskFile, dataSource string, progress func(done, total int)) error {
	if progress == nil {
		progress = func(int, int) {}
	}
	if len(files) == 0 {
		return nil
	}
	progress(0, len(files))
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(uploadConcurrency)
	var (
		mu   sync.Mutex
		done int
	)
	for _, f := range files {
		if ctx.Err() != nil {
			break // an upload failed: g.Wait says which
		}
		g.Go(func() error {
			if err := o.putTask(ctx, f, dataSource); err != nil {
				return err
			}
			// Under the lock, so progress sees the count grow one by one.
			mu.Lock()
			defer mu.Unlock()
			done++
			progress(done, len(files))
			return nil
		})
	}
	return g.Wait()
}

func (o *Operator) putTask(ctx context.Context, f arcdata.TaskFile, dataSource string) error {
	key := model.TaskDataKey(dataSource, f.ID)
	_, err := o.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(o.Stage.Bucket), Key: aws.String(key),
		Body: bytes.NewReader(f.Body), ContentType: aws.String("application/json"),
	})
	if err != nil {
		return Explain(fmt.Errorf("upload %s to s3://%s/%s: %w", f.Path, o.Stage.Bucket, key, err))
	}
	return nil
}

// requireTaskData refuses a run of tasks that have no data under their data
// source's folder: the worker would only find that out task by task, each
// failing its attempts after the run has started. Input that RunInput
// refuses is left to it, so that its message comes first.
func (o *Operator) requireTaskData(ctx context.Context, in StartInput) error {
	dataSource := orDefault(in.DataSource, model.DefaultDataSource)
	if model.ValidateName("config_name", in.ConfigName) != nil || model.ValidateName("data_source", dataSource) != nil ||
		model.ValidateTaskIDs("tasks", in.TaskIDs) != nil {
		return nil
	}
	stored, err := o.listTaskData(ctx, dataSource)
	if err != nil {
		return err
	}
	var missing []string
	for _, id := range in.TaskIDs {
		if _, ok := stored[model.TaskDataKey(dataSource, id)]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return &Error{Msg: o.missingDataMessage(missing, len(in.TaskIDs), dataSource)}
}

// missingDataMessage names how many tasks lack data, the first few of them,
// and the command that uploads them.
func (o *Operator) missingDataMessage(missing []string, total int, dataSource string) string {
	verb := "have"
	if len(missing) == 1 {
		verb = "has"
	}
	shown := strings.Join(missing[:min(len(missing), missingShown)], ", ")
	if more := len(missing) - missingShown; more > 0 {
		shown += fmt.Sprintf(" and %d more", more)
	}
	return fmt.Sprintf("%d of %d tasks %s no data under s3://%s/%s (%s): upload them with `arcbench tasks upload DIR --stage %s --data-source %s`",
		len(missing), total, verb, o.Stage.Bucket, taskDataFolder(dataSource), shown, o.Stage.Name, dataSource)
}

// storedObject is what a listing tells of one object.
type storedObject struct {
	ETag string
	Size int64
}

// holds tells whether the object has exactly these bytes: the ETag of an
// object put in one part is the hex MD5 of its bytes, in quotes (a multipart
// ETag never matches, and the file is uploaded again, which is only slower).
func (s storedObject) holds(body []byte) bool {
	sum := md5.Sum(body)
	return s.Size == int64(len(body)) && strings.EqualFold(strings.Trim(s.ETag, `"`), hex.EncodeToString(sum[:]))
}

// listTaskData lists the objects under a data source's folder, by key, in
// one pass over all pages: one call per 1,000 tasks, where a HeadObject per
// task would be 10,000 calls for a large run.
func (o *Operator) listTaskData(ctx context.Context, dataSource string) (map[string]storedObject, error) {
	// The slash keeps "evaluation" from matching "evaluation-v2/".
	prefix := taskDataFolder(dataSource)
	stored := map[string]storedObject{}
	pages := s3.NewListObjectsV2Paginator(o.S3, &s3.ListObjectsV2Input{Bucket: aws.String(o.Stage.Bucket), Prefix: aws.String(prefix)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, Explain(fmt.Errorf("list s3://%s/%s: %w", o.Stage.Bucket, prefix, err))
		}
		for _, obj := range page.Contents {
			stored[aws.ToString(obj.Key)] = storedObject{ETag: aws.ToString(obj.ETag), Size: aws.ToInt64(obj.Size)}
		}
	}
	return stored, nil
}

// taskDataFolder is a data source's folder with its trailing slash.
func taskDataFolder(dataSource string) string { return model.TaskDataPrefix(dataSource) + "/" }

// StoredTaskIDs are the ids of every task with data in the data source's
// folder, sorted: a run of "all the tasks" (arcbench start --all-tasks).
func (o *Operator) StoredTaskIDs(ctx context.Context, dataSource string) ([]string, error) {
	if err := model.ValidateName("data_source", dataSource); err != nil {
		return nil, &Error{Msg: "--data-source: " + err.Error()}
	}
	stored, err := o.listTaskData(ctx, dataSource)
	if err != nil {
		return nil, err
	}
	folder := taskDataFolder(dataSource)
	var ids []string
	for key := range stored {
		id, ok := strings.CutSuffix(strings.TrimPrefix(key, folder), ".json")
		if ok && !strings.Contains(id, "/") && model.ValidateTaskIDs("tasks", []string{id}) == nil {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil, &Error{Msg: fmt.Sprintf("no task data under s3://%s/%s: upload it with `arcbench tasks upload DIR --stage %s --data-source %s`",
			o.Stage.Bucket, folder, o.Stage.Name, dataSource)}
	}
	sort.Strings(ids)
	return ids, nil
}
