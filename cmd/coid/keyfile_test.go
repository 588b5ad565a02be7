package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/custody/verifiable"
)

// TestCheckpointKeyFile: two instances on one PostgreSQL schema, each with
// its own --data, given one key file made by coid key create, sign
// checkpoints that all verify with its verifier key, which the database
// records; an instance with another key (its own in --data, or another
// file) refuses to start, exit status non-zero, signing nothing; a missing
// or malformed file is an error naming it, never repeating the key; on
// bbolt the flag is a usage error.
func TestCheckpointKeyFile(t *testing.T) {
	url := pgtest.Schema(t)
	ctx := context.Background()
	tmp := t.TempDir()
	keyFile := filepath.Join(tmp, "log.key")
	verifier, _, exit, err := runCmd(t, nil, "key", "create", "--out", keyFile, "--origin", "coid.test/one-log")
	if err != nil {
		t.Fatalf("key create: exit %d, %v", exit, err)
	}
	verifier = strings.TrimSpace(verifier)
	if !strings.HasPrefix(verifier, "coid.test/one-log+") {
		t.Fatalf("key create printed %q, want the verifier key", verifier)
	}
	if _, _, exit, err := runCmd(t, nil, "key", "create", "--out", keyFile); !errors.Is(err, custody.ErrConflict) || exit == 0 {
		t.Fatalf("key create over an existing file: exit %d, %v", exit, err)
	}
	if out, _, _, err := runCmd(t, []string{"COID_CHECKPOINT_KEY_FILE=" + keyFile}, "key", "show"); err != nil || strings.TrimSpace(out) != verifier {
		t.Fatalf("key show --checkpoint-key: %q, %v; want %q", out, err, verifier)
	}
	env := []string{"COID_STORE=" + url, "COID_CHECKPOINT_KEY_FILE=" + keyFile}

	dirA, dirB := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"user", "add", "--data", dirA, "--id", "coord", "--name", "Printed coord", "--role", string(roles["coord"])},
		env, strings.NewReader(pw("coord")+"\n"), &out, &errb); err != nil {
		t.Fatalf("user add: %v\n%s", err, errb.String())
	}
	token := strings.TrimSpace(out.String())
	if _, err := os.Stat(filepath.Join(dirA, verifiable.KeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a key was made in --data with --checkpoint-key given: %v", err)
	}
	// Each instance enrols a chain and signs its checkpoint at shutdown.
	for _, dir := range []string{dirA, dirB} {
		srv := startServer(t, dir, env...)
		c := &client{t, srv.url + "/api/v1", token}
		if code, m := c.do("POST", "/chains", map[string]any{
			"patient": map[string]any{"name": "Key Patient", "birth_date": "1961-04-30", "mrn": "MRN-K" + filepath.Base(dir)},
			"product": "p", "sites": map[string]any{"collection": "a", "manufacturing": "b", "treatment": "c"}}); code != 201 {
			t.Fatalf("enroll on %s: %d %v", dir, code, m)
		}
		if err := srv.stop(); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		if strings.Contains(srv.stderr.String(), "PRIVATE") {
			t.Fatal("the server logged the private key")
		}
	}
	st, err := pgstore.Open(ctx, url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got, err := st.LogKey(ctx); err != nil || got != verifier {
		t.Fatalf("the database records %q, %v; want %q", got, err, verifier)
	}
	countCheckpoints := func() int {
		n := 0
		if err := st.Checkpoints(ctx, func(size int64, signed []byte) error {
			n++
			if _, err := verifiable.Open(signed, verifier); err != nil {
				t.Errorf("checkpoint of %d records: %v", size, err)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := countCheckpoints(); n < 2 {
		t.Fatalf("%d checkpoints kept, want one of each instance", n)
	}
	before := countCheckpoints()

	otherFile := filepath.Join(tmp, "other.key")
	if _, _, _, err := runCmd(t, nil, "key", "create", "--out", otherFile, "--origin", "coid.test/one-log"); err != nil {
		t.Fatal(err)
	}
	garbled := filepath.Join(tmp, "garbled.key")
	priv, _ := os.ReadFile(keyFile)
	if err := os.WriteFile(garbled, priv[:len(priv)-10], 0o600); err != nil {
		t.Fatal(err)
	}
	serve := func(dir string) []string {
		return []string{"serve", "--data", dir, "--http", "127.0.0.1:0", "--mqtt-listen", "off"}
	}
	for _, tc := range []struct {
		name string
		env  []string
		want error
		says []string
	}{
		{"its own key in --data", []string{"COID_STORE=" + url}, pgstore.ErrLogKey, []string{verifier, "--checkpoint-key"}},
		{"another key file", []string{"COID_STORE=" + url, "COID_CHECKPOINT_KEY_FILE=" + otherFile}, pgstore.ErrLogKey, []string{verifier}},
		{"missing key file", []string{"COID_STORE=" + url, "COID_CHECKPOINT_KEY_FILE=" + filepath.Join(tmp, "nope.key")}, custody.ErrNotFound, []string{"nope.key"}},
		{"malformed key file", []string{"COID_STORE=" + url, "COID_CHECKPOINT_KEY_FILE=" + garbled}, custody.ErrInvalid, []string{garbled, "malformed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, exit, err := runCmd(t, tc.env, serve(filepath.Join(tmp, "c"))...)
			if !errors.Is(err, tc.want) || exit != 1 {
				t.Fatalf("serve: exit %d, %v; want %v", exit, err, tc.want)
			}
			for _, w := range tc.says {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q: %v", w, err)
				}
			}
			if strings.Contains(err.Error()+stderr, "PRIVATE") || strings.Contains(err.Error()+stderr, strings.TrimSpace(string(priv))[20:]) {
				t.Errorf("the error or log repeats a private key: %v\n%s", err, stderr)
			}
			if n := countCheckpoints(); n != before {
				t.Errorf("%d checkpoints after the refused start, want %d", n, before)
			}
		})
	}
	// coid verify --since opens a checkpoint with the key file's verifier
	// key, --data holding none.
	latest, err := st.LatestCheckpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	since := filepath.Join(tmp, "since.checkpoint")
	if err := os.WriteFile(since, latest, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, stderr, exit, err := runCmd(t, env, "verify", "--data", dirB, "--since", since); err != nil {
		t.Fatalf("verify --since with the key file: exit %d, %v\n%s%s", exit, err, out, stderr)
	}
	if _, _, exit, err := runCmd(t, []string{"COID_CHECKPOINT_KEY_FILE=" + keyFile}, append(serve(filepath.Join(tmp, "bolt")), "--init")...); exit != 2 {
		t.Fatalf("--checkpoint-key on bbolt: exit %d, %v; want a usage error", exit, err)
	}
	if _, err := os.Stat(ledgerFile(filepath.Join(tmp, "bolt"))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused bbolt serve started a ledger: %v", err)
	}
}

// TestKeyRotateOnPostgres: an instance on PostgreSQL signing with the key
// in its --data rotates it with coid key rotate, which replaces the
// database's record of the log's key too, so serve signs with the new key
// after it; the checkpoints of the old key still open with coid key
// export's keys.
func TestKeyRotateOnPostgres(t *testing.T) {
	url := pgtest.Schema(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	env := []string{"COID_STORE=" + url}
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"user", "add", "--data", dir, "--id", "coord", "--name", "Printed coord", "--role", string(roles["coord"])},
		env, strings.NewReader(pw("coord")+"\n"), &out, &errb); err != nil {
		t.Fatalf("user add: %v\n%s", err, errb.String())
	}
	token := strings.TrimSpace(out.String())
	enrolAndStop := func(mrn string) {
		srv := startServer(t, dir, env...)
		c := &client{t, srv.url + "/api/v1", token}
		if code, m := c.do("POST", "/chains", map[string]any{
			"patient": map[string]any{"name": "Rotate Patient", "birth_date": "1961-04-30", "mrn": mrn},
			"product": "p", "sites": map[string]any{"collection": "a", "manufacturing": "b", "treatment": "c"}}); code != 201 {
			t.Fatalf("enroll: %d %v", code, m)
		}
		if err := srv.stop(); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	}
	enrolAndStop("MRN-R1")
	if _, _, exit, err := runCmd(t, env, "key", "rotate", "--data", dir); err != nil {
		t.Fatalf("key rotate: exit %d, %v", exit, err)
	}
	enrolAndStop("MRN-R2") // serve starts: the database took the new key
	active, _, _, err := runCmd(t, env, "key", "show", "--data", dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := pgstore.Open(ctx, url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got, err := st.LogKey(ctx); err != nil || got != strings.TrimSpace(active) {
		t.Fatalf("the database records %q, %v; want the new key %q", got, err, active)
	}
	all, _, _, err := runCmd(t, env, "key", "export", "--data", dir)
	if err != nil {
		t.Fatal(err)
	}
	var verifiers []string
	for line := range strings.Lines(all) {
		f := strings.Fields(line)
		verifiers = append(verifiers, f[len(f)-1])
	}
	n := 0
	if err := st.Checkpoints(ctx, func(size int64, signed []byte) error {
		n++
		if _, err := verifiable.Open(signed, verifiers...); err != nil {
			t.Errorf("checkpoint of %d records: %v", size, err)
		}
		return nil
	}); err != nil || n < 2 {
		t.Fatalf("%d checkpoints, %v; want one before and one after the rotation", n, err)
	}
}
