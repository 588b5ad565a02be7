//go:build unix

package storegen

import (
	"syscall"
	"time"
)

// CPUTime returns the process's user and system CPU time so far, so a
// benchmark on a shared machine can report what it costs apart from how
// long it waited for a core.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
