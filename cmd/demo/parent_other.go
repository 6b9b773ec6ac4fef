//go:build !linux

package main

import "syscall"

// parentDeathSignal is SIGHUP, a terminal's hangup, where there is no
// parent-death signal.
const parentDeathSignal = syscall.SIGHUP

// stopWithParent is a no-op where there is no parent-death signal: stop the
// demo itself (Ctrl-C), not `go run`.
func stopWithParent() error { return nil }
