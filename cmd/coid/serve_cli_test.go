package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// runCmd runs coid with args through run and returns its outputs and
// exit status.
func runCmd(t testing.TB, env []string, args ...string) (stdout, stderr string, exit int, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), args, env, strings.NewReader(""), &out, &errb)
	if err != nil {
		exit = exitCode(err)
	}
	return out.String(), errb.String(), exit, err
}

// TestServeRefusesDirectoryWithoutLedger: serve on a mistyped or empty
// --data creates nothing and says which directory and how to start a
// ledger; --init starts one; a ledger user add started is served.
func TestServeRefusesDirectoryWithoutLedger(t *testing.T) {
	tmp := t.TempDir()
	empty := filepath.Join(tmp, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{filepath.Join(tmp, "typo"), empty} {
		_, _, exit, err := runCmd(t, nil, "serve", "--data", dir, "--http", "127.0.0.1:0", "--mqtt-listen", "off")
		if !errors.Is(err, custody.ErrNotFound) || exit != 1 {
			t.Fatalf("serve %s: exit %d (%v), want 1 wrapping ErrNotFound", dir, exit, err)
		}
		for _, w := range []string{dir, "--data", "coid user add", "--init"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q does not say %q", err, w)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, "typo")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the mistyped directory was created: %v", err)
	}
	if ents, err := os.ReadDir(empty); err != nil || len(ents) != 0 {
		t.Errorf("the empty directory now holds %v (%v)", ents, err)
	}

	// --init serves an empty ledger (startServer passes it).
	startServer(t, filepath.Join(tmp, "new")).stop()
	if _, err := os.Stat(filepath.Join(tmp, "new", "coid.db")); err != nil {
		t.Errorf("--init: %v", err)
	}
	// A ledger started by user add needs no --init.
	dir := filepath.Join(tmp, "added")
	addUser(t, dir, "admin1", custody.RoleAdmin)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"serve", "--data", dir, "--http", "127.0.0.1:0", "--mqtt-listen", "off"}, nil, strings.NewReader(""), pw, io.Discard)
		pw.CloseWithError(fmt.Errorf("run returned: %v", err))
		done <- err
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	cancel()
	go io.Copy(io.Discard, pr)
	if err != nil || !strings.Contains(line, "serving HTTP") {
		t.Errorf("serve of a ledger user add started: %q, %v", line, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(60 * time.Second): // only a hang
		t.Fatal("serve did not stop")
	}
}

// TestServeHTTPPortTaken: a taken HTTP port is a usage error that says
// how to move the service: --http, COID_HTTP or make run RUN_FLAGS.
func TestServeHTTPPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	_, _, exit, err := runCmd(t, nil, "serve", "--init", "--data", t.TempDir(), "--http", addr, "--mqtt-listen", "off")
	if err == nil || exit != 2 {
		t.Fatalf("exit %d (%v), want 2", exit, err)
	}
	for _, w := range []string{addr, "already in use", "--http ", "COID_HTTP=", `make run RUN_FLAGS="--http `} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q does not say %q", err, w)
		}
	}
}

// TestServeShareGroupUsage: --mqtt-share-group is refused, saying why,
// where it cannot work: without an external broker, with an invalid name,
// or with the default client ID every instance would share.
func TestServeShareGroupUsage(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"embedded broker", []string{"--mqtt-listen", "127.0.0.1:0", "--mqtt-client-id", "coid-a"}, "give --mqtt-url"},
		{"bad name", []string{"--mqtt-url", "tcp://127.0.0.1:1", "--mqtt-share-group", "a/b", "--mqtt-client-id", "coid-a"}, `"a/b"`},
		{"default client id", []string{"--mqtt-url", "tcp://127.0.0.1:1"}, "--mqtt-client-id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--init", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--mqtt-share-group", "coid"}, tc.args...)
			_, _, exit, err := runCmd(t, nil, args...)
			if err == nil || exit != 2 {
				t.Fatalf("exit %d (%v), want 2", exit, err)
			}
			if !strings.Contains(err.Error(), "--mqtt-share-group") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%q does not name --mqtt-share-group and %q", err, tc.want)
			}
		})
	}
}
