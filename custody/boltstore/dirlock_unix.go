//go:build unix

package boltstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/coid-project/coid/custody"
)

// LockFileName is the data directory's lock file. A read-write store holds
// it exclusively for as long as it is open, a read-only one shared, so no
// other process can take the database file in the moment the store closes
// and reopens it (see Store.refresh).
const LockFileName = "coid.lock"

// lockDir takes the data directory's lock, waiting up to timeout. A
// read-only open of a directory without a lock file (or one it cannot
// create a file in) goes without: bbolt's own lock still applies.
func lockDir(dir string, readOnly bool, timeout time.Duration) (*os.File, error) {
	path := filepath.Join(dir, LockFileName)
	how := syscall.LOCK_EX
	var f *os.File
	var err error
	if readOnly {
		how = syscall.LOCK_SH
		if f, err = os.Open(path); err != nil {
			return nil, nil
		}
	} else if f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock data directory: %w", err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("open store %s: another coid process holds it (stop it first): %w", dir, custody.ErrInUse)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
