//go:build !unix

package storegen

import "time"

// CPUTime is not measured here: zero.
func CPUTime() time.Duration { return 0 }
