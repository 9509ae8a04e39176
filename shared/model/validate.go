package model

import (
	"fmt"
	"regexp"
)

// MaxNameLength bounds config names and data sources (they become parts of
// run ids, S3 keys and CloudWatch dimensions).
const MaxNameLength = 128

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

// ValidateTaskIDs checks a run's task list: present, non-empty, no empty or
// repeated id.
func ValidateTaskIDs(field string, ids []string) error {
	if len(ids) == 0 {
		return &InvalidInputError{Field: field, Reason: "is required and must be a non-empty list of strings"}
	}
	seen := make(map[string]int, len(ids))
	for i, id := range ids {
		if id == "" {
			return &InvalidInputError{Field: fmt.Sprintf("%s[%d]", field, i), Reason: "must not be empty"}
		}
		if first, dup := seen[id]; dup {
			return &InvalidInputError{Field: fmt.Sprintf("%s[%d]", field, i), Reason: fmt.Sprintf("%q repeats %s[%d]", id, field, first)}
		}
		seen[id] = i
	}
	return nil
}
