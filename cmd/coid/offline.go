package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/custody/phitext"
)

// parseInterspersed parses fs from args, letting flags come before or
// after the positional arguments, which it returns.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	quiet(fs)
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return nil, flagError(fs, err)
		}
		if fs.NArg() == 0 {
			return pos, checkStoreFlag(fs)
		}
		pos = append(pos, fs.Arg(0))
		rest = fs.Args()[1:]
	}
}

// parseZone loads an IANA time zone named by a flag; "Local" is refused
// because it would depend on the machine.
func parseZone(cmd, flagName, name string) (*time.Location, error) {
	if name == "" || strings.EqualFold(name, "Local") {
		return nil, usagef("%s: --%s must be an IANA time zone name such as Europe/Berlin", cmd, flagName)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, usagef("%s: --%s %q is not a known IANA time zone (e.g. Europe/Berlin)", cmd, flagName, name)
	}
	return loc, nil
}

// openOffline opens the data directory for an offline command and a
// service over it, with the telemetry readings wired in. The caller closes
// the store.
func openOffline(s settings, stderr io.Writer, readOnly bool, now func() time.Time) (*custody.Service, stores, error) {
	log, err := newLogger(stderr, s.logLevel, s.logFormat)
	if err != nil {
		return nil, stores{}, err
	}
	st, err := openStores(s.data, storeOptions{readOnly: readOnly, url: s.store, cmd: "coid", keyFile: s.checkpointKey})
	if err != nil {
		return nil, stores{}, err
	}
	// The built-in temperature profiles are known offline, so a product
	// registered offline (coid registry import) may name one.
	svc, err := custody.NewService(custody.Config{Store: st.ledger, Hasher: passwd.Default(), Logger: log, Now: now, FIN: "A9999",
		Profiles:  slices.Sorted(maps.Keys(custody.BuiltinProfiles())),
		Telemetry: custody.TelemetryConfig{Readings: st.telemetry}, Folder: phitext.Folder{}})
	if err != nil {
		st.close()
		return nil, stores{}, err
	}
	return svc, st, nil
}

// offlineUser looks up the user an offline command acts as.
func offlineUser(ctx context.Context, users custody.UserStore, cmd, id string) (custody.User, error) {
	u, err := users.User(ctx, id)
	if err != nil {
		return custody.User{}, fmt.Errorf("%s: user %s: %w", cmd, id, err)
	}
	if u.Disabled {
		return custody.User{}, fmt.Errorf("%s: user %s is disabled: %w", cmd, id, custody.ErrForbidden)
	}
	return u, nil
}

// writeOutput writes b to stdout, or to path through a temporary file in
// the same directory (so a reader never sees half of it), readable by its
// owner only: labels and reports hold patient data.
func writeOutput(cmd string, stdout io.Writer, path string, b []byte) error {
	if path == "" {
		_, err := stdout.Write(b)
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: write %s: %w", cmd, path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: write %s: %w", cmd, path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	return nil
}
