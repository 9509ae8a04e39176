package model

import (
	"encoding/json"
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
