package model

import (
	"reflect"
	"testing"
)

func TestJobUsageReadsWhatBatchDescribes(t *testing.T) {
	for _, c := range []struct {
		name string
		desc string
		want JobUsage
		ok   bool
	}{
		{"Step Functions' PascalCase, one attempt per Batch retry", `{"JobId":"j1","Status":"FAILED","StartedAt":5000,"StoppedAt":9000,
			"Container":{"ResourceRequirements":[{"Type":"VCPU","Value":"0.25"},{"Type":"MEMORY","Value":"512"}],"RuntimePlatform":{"CpuArchitecture":"ARM64"}},
			"Attempts":[{"StartedAt":1000,"StoppedAt":3000},{"StartedAt":5000,"StoppedAt":9000}]}`,
			JobUsage{VCPU: "0.25", MemoryMiB: 512, Arch: "ARM64", Runs: []JobRunTimes{{1000, 3000}, {5000, 9000}}}, true},
		{"Batch's camelCase, no attempts listed", `{"jobId":"j2","startedAt":100,"stoppedAt":700,
			"container":{"resourceRequirements":[{"type":"MEMORY","value":"2048"},{"type":"VCPU","value":"1"}]}}`,
			JobUsage{VCPU: "1", MemoryMiB: 2048, Runs: []JobRunTimes{{100, 700}}}, true},
		{"a job terminated while queued never ran", `{"JobId":"j3","Status":"FAILED","Container":{"Vcpus":1,"Memory":2048}}`,
			JobUsage{VCPU: "1", MemoryMiB: 2048}, true},
		{"no size", `{"JobId":"j4","StartedAt":1,"StoppedAt":2,"Container":{}}`, JobUsage{}, false},
		{"not a job (a Lambda error's cause)", `{"errorType":"ServiceError","errorMessage":"x"}`, JobUsage{}, false},
		{"not JSON", `Batch.AWSBatchException: throttled`, JobUsage{}, false},
	} {
		got, ok := JobUsageOf([]byte(c.desc))
		if ok != c.ok || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: JobUsageOf = %+v, %v; want %+v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
