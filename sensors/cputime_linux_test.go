package sensors_test

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time (user and system) the process has used,
// so that a benchmark on a shared machine can report what it costs apart
// from how long it waited for a core.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
