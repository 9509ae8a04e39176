package model

import (
	"fmt"
	"regexp"
)

// MaxNameLength bounds config names, data sources and task ids (they become
// parts of run ids, S3 keys, DynamoDB keys, environment values and
// CloudWatch dimensions).
const MaxNameLength = 128

// IDRule is the one rule for task ids, config names and data sources, at
// every entry point: ARC ids are 8 hex characters.
const IDRule = "1 to 128 characters of [A-Za-z0-9._-]"

var namePattern = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// ValidateName checks a config name or data source and names the field when it fails.
func ValidateName(field, value string) error {
	switch {
	case value == "":
		return &InvalidInputError{Field: field, Reason: "is required and must not be empty"}
	case len(value) > MaxNameLength:
		return &InvalidInputError{Field: field, Reason: fmt.Sprintf("is %d characters long, at most %d allowed", len(value), MaxNameLength)}
	case !namePattern.MatchString(value):
		return &InvalidInputError{Field: field, Reason: fmt.Sprintf("%q has characters outside [A-Za-z0-9._-]", value)}
	}
	return nil
}

// ValidTaskID tells whether id follows IDRule.
func ValidTaskID(id string) bool {
	return len(id) >= 1 && len(id) <= MaxNameLength && namePattern.MatchString(id)
}

// ValidateTaskIDs checks a run's task list: present, non-empty, every id
// following IDRule (a worker trims its TASK_ID, a slash escapes a folder, a
// long id fails DynamoDB after other writes), none repeated.
func ValidateTaskIDs(field string, ids []string) error {
	if len(ids) == 0 {
		return &InvalidInputError{Field: field, Reason: "is required and must be a non-empty list of strings"}
	}
	seen := make(map[string]int, len(ids))
	for i, id := range ids {
		if !ValidTaskID(id) {
			shown := id
			if len(shown) > 40 {
				shown = shown[:40] + "..."
			}
			return &InvalidInputError{Field: fmt.Sprintf("%s[%d]", field, i), Reason: fmt.Sprintf("%q (%d bytes) is not a task id: want %s", shown, len(id), IDRule)}
		}
		if first, dup := seen[id]; dup {
			return &InvalidInputError{Field: fmt.Sprintf("%s[%d]", field, i), Reason: fmt.Sprintf("%q repeats %s[%d]", id, field, first)}
		}
		seen[id] = i
	}
	return nil
}

// maxRunIDLength is the longest run id initialize makes: run-, a config
// name, a timestamp and 8 hex digits.
const maxRunIDLength = len("run-") + MaxNameLength + len("-20060102-150405-") + 8

// ValidateRunID checks a run id given by a user: what initialize makes,
// never control characters, spaces or slashes.
func ValidateRunID(id string) error {
	if id == "" || len(id) > maxRunIDLength || !namePattern.MatchString(id) {
		return &InvalidInputError{Field: "run id", Reason: fmt.Sprintf("%q is not a run id: want 1 to %d characters of [A-Za-z0-9._-], as `arcbench runs` lists them", id, maxRunIDLength)}
	}
	return nil
}
