package pagescore

import (
	"syscall"
	"time"
)

// threadCPU is the CPU time the calling OS thread has used: on a machine
// shared with other builds, wall time per operation says more about the
// neighbours than about the code.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
