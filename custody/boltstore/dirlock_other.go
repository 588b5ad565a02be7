//go:build !unix

package boltstore

import (
	"os"
	"time"
)

// LockFileName is the data directory's lock file; it is used on Unix only.
const LockFileName = "coid.lock"

// lockDir does nothing here: bbolt's own lock on the file applies, and a
// second process could take the file while the store reopens it.
func lockDir(dir string, readOnly bool, timeout time.Duration) (*os.File, error) { return nil, nil }
