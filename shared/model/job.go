package model

import (
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"
)

// jobDescription is the part of a Batch job description (the Cause of a
// failed .sync job, PascalCase from Step Functions or camelCase from Batch:
// JSON field matching is case-insensitive) that tells an operator why.
type jobDescription struct {
	JobID        string `json:"jobId"`
	Status       string `json:"status"`
	StatusReason string `json:"statusReason"`
	Container    *struct {
		ExitCode *int   `json:"exitCode"`
		Reason   string `json:"reason"`
	} `json:"container"`
	Attempts []struct {
		StatusReason string `json:"statusReason"`
		Container    struct {
			ExitCode *int   `json:"exitCode"`
			Reason   string `json:"reason"`
		} `json:"container"`
	} `json:"attempts"`
}

// JobFailure returns the status reason and the container's exit code when
// cause is a Batch job description, and nothing otherwise.
func JobFailure(cause string) (reason string, exitCode *int) {
	var job jobDescription
	if json.Unmarshal([]byte(cause), &job) != nil || (job.JobID == "" && job.Status == "") {
		return "", nil
	}
	reason = job.StatusReason
	if job.Container != nil {
		exitCode = job.Container.ExitCode
		if reason == "" {
			reason = job.Container.Reason
		}
	}
	if n := len(job.Attempts); n > 0 {
		last := job.Attempts[n-1]
		if exitCode == nil {
			exitCode = last.Container.ExitCode
		}
		if reason == "" {
			reason = last.StatusReason
		}
		if reason == "" {
			reason = last.Container.Reason
		}
	}
	return reason, exitCode
}

// JobTimeoutReason is the status reason Batch gives a job it stopped at its
// attempt time limit.
const JobTimeoutReason = "Job attempt duration exceeded timeout"

// StoppedAtTimeLimit tells whether a job error (a check-task's job_error)
// is Batch stopping the job at its time limit.
func StoppedAtTimeLimit(jobError string) bool {
	return strings.Contains(jobError, JobTimeoutReason)
}

// Truncate keeps the first n characters (not bytes) of s, adding mark when
// it cut: what a record keeps of a text that may be long.
func Truncate(s string, n int, mark string) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	cut := 0
	for i := range s {
		if n == 0 {
			cut = i
			break
		}
		n--
	}
	return s[:cut] + mark
}

// JobUsage is what a Batch job description says the job ran: its size, its
// CPU architecture and, for each attempt that started, when it ran.
type JobUsage struct {
	// VCPU is as Batch writes it ("0.25"); MemoryMiB in MiB.
	VCPU      string
	MemoryMiB int
	// Arch is the container's CPU architecture (X86_64, ARM64); "" when the
	// description names none.
	Arch string
	// Runs are the attempts that started, each from StartedAt to StoppedAt
	// (Unix milliseconds): Batch retries a job's infrastructure failures, and
	// Fargate bills each.
	Runs []JobRunTimes
}

// JobRunTimes is when one attempt of a job ran, in Unix milliseconds.
type JobRunTimes struct{ StartedAt, StoppedAt int64 }

// Millis is how long the attempt ran.
func (t JobRunTimes) Millis() int64 { return t.StoppedAt - t.StartedAt }

// jobUsage is the part of a job description JobUsageOf reads (field names
// match in either case, as Step Functions and Batch write them).
type jobUsage struct {
	JobID     string `json:"jobId"`
	StartedAt int64  `json:"startedAt"`
	StoppedAt int64  `json:"stoppedAt"`
	Container *struct {
		ResourceRequirements []struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"resourceRequirements"`
		Vcpus           json.Number `json:"vcpus"`
		Memory          int         `json:"memory"`
		RuntimePlatform *struct {
			CPUArchitecture string `json:"cpuArchitecture"`
		} `json:"runtimePlatform"`
	} `json:"container"`
	Attempts []struct {
		StartedAt int64 `json:"startedAt"`
		StoppedAt int64 `json:"stoppedAt"`
	} `json:"attempts"`
}

// JobUsageOf reads a Batch job description (what a .sync job state returns,
// or the Cause of its failure). ok is false when desc is not one, or names no
// size: then nothing can be priced.
func JobUsageOf(desc []byte) (u JobUsage, ok bool) {
	var j jobUsage
	if json.Unmarshal(desc, &j) != nil || j.JobID == "" || j.Container == nil {
		return JobUsage{}, false
	}
	for _, r := range j.Container.ResourceRequirements {
		switch strings.ToUpper(r.Type) {
		case "VCPU":
			u.VCPU = r.Value
		case "MEMORY":
			u.MemoryMiB, _ = strconv.Atoi(r.Value)
		}
	}
	if u.VCPU == "" && j.Container.Vcpus != "" {
		u.VCPU = j.Container.Vcpus.String()
	}
	if u.MemoryMiB == 0 {
		u.MemoryMiB = j.Container.Memory
	}
	if rp := j.Container.RuntimePlatform; rp != nil {
		u.Arch = rp.CPUArchitecture
	}
	if u.VCPU == "" || u.MemoryMiB <= 0 {
		return JobUsage{}, false
	}
	add := func(start, stop int64) {
		if start > 0 && stop >= start {
			u.Runs = append(u.Runs, JobRunTimes{StartedAt: start, StoppedAt: stop})
		}
	}
	for _, a := range j.Attempts {
		add(a.StartedAt, a.StoppedAt)
	}
	if len(j.Attempts) == 0 {
		add(j.StartedAt, j.StoppedAt)
	}
	return u, true
}
