// Package cliutil holds what fiberdb's commands (cmd/demo, cmd/fiberdb)
// share in how they report errors.
package cliutil

import "strings"

// OneLine joins the lines of a (possibly joined) error with "; ", so that a
// command's failure reads as one line.
func OneLine(err error) string {
	var parts []string
	for line := range strings.SplitSeq(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, "; ")
}
