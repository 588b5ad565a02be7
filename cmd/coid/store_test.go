package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStoreFlag: --store (and COID_STORE) with a PostgreSQL URL is refused
// by every command that opens the store, saying what the PostgreSQL store
// lacks, without repeating the password and without creating anything in
// --data; anything but a postgres:// URL is a usage error.
func TestStoreFlag(t *testing.T) {
	const pg = "postgres://coid:s3cret@db.example:5432/coid"
	tests := []struct {
		name string
		env  []string
		args []string
	}{
		{"serve flag", nil, []string{"serve", "--store", pg, "--http", "127.0.0.1:0", "--mqtt-listen", "off"}},
		{"serve env", []string{"COID_STORE=" + pg}, []string{"serve", "--http", "127.0.0.1:0", "--mqtt-listen", "off"}},
		{"verify", nil, []string{"verify", "--store", pg}},
		{"report", nil, []string{"report", "--store", pg, "--user", "qa1", "A9999-26-000001"}},
		{"registry list", nil, []string{"registry", "list", "--store", pg, "--actor", "admin1", "--kind", "site"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			args := append(append([]string{}, tt.args...), "--data", dir)
			_, _, exit, err := runCmd(t, tt.env, args...)
			if !errors.Is(err, errors.ErrUnsupported) || exit != 1 {
				t.Fatalf("exit %d, %v; want 1 wrapping errors.ErrUnsupported", exit, err)
			}
			msg := err.Error()
			if strings.Contains(msg, "s3cret") || !strings.Contains(msg, "db.example") || !strings.Contains(msg, "does not keep") {
				t.Errorf("refusal %q: must name the server, say what is missing and never the password", msg)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("--data %s created by a refused --store: %v", dir, err)
			}
		})
	}
	_, _, exit, err := runCmd(t, nil, "verify", "--store", "mysql://db/coid", "--data", t.TempDir())
	if exit != 2 || err == nil || !strings.Contains(err.Error(), "postgres://") {
		t.Fatalf("bad --store: exit %d, %v; want a usage error naming postgres://", exit, err)
	}
}
