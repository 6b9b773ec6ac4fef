package main

import (
	"fmt"
	"syscall"
)

// parentDeathSignal is the signal the demo gets when its parent dies. The
// kernel sends it each time the parent *thread* exits, so a dying
// multi-threaded parent (the go command) sends it several times: the demo
// shuts down on the first and ignores the rest (see serve).
const parentDeathSignal = syscall.SIGHUP

// stopWithParent asks the kernel to send the demo parentDeathSignal when
// the process that started it dies, so that the demo shuts down gracefully.
// Under `go run`, a SIGTERM reaches the go command, which dies without
// passing it on: without this, the demo and its PostgreSQL would run on,
// orphaned. If the parent died before the request took effect, no signal
// would come, so the demo signals itself.
func stopWithParent() error {
	ppid := syscall.Getppid()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(parentDeathSignal), 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_PDEATHSIG): %w", errno)
	}
	if syscall.Getppid() != ppid {
		if err := syscall.Kill(syscall.Getpid(), parentDeathSignal); err != nil {
			return fmt.Errorf("signal self: %w", err)
		}
	}
	return nil
}
