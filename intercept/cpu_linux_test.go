package intercept

import "syscall"

// threadCPU is the CPU time the calling OS thread has used, in
// microseconds: on a loaded machine wall time measures the queue, this
// measures the work.
func threadCPU() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return ru.Utime.Nano()/1000 + ru.Stime.Nano()/1000
}
