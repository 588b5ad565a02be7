package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/verifiable"
)

// appendMarked appends one-record chains from..to to the store in dir,
// their data carrying "record marker NNNN" (as realStore's).
func appendMarked(t *testing.T, dir, marker string, from, to int) {
	t.Helper()
	st, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	for i := from; i <= to; i++ {
		coi, err := custody.NewCOI("A9999", 2026, uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.Append(context.Background(), custody.Draft{Record: custody.Record{V: custody.EncodingVersion, Chain: coi, Step: custody.StepEnroll,
			Time: at, Site: "CellWorks NJ", SubmittedBy: "qa1", Data: fmt.Appendf(nil, `{"text":"%s %04d"}`, marker, i)},
			NewChain: true, State: custody.StateEnrolled, Product: "CAR-T"})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// signCheckpoint signs a checkpoint of the ledger in dir as it is now,
// with its key, as the service does, and writes it to a file.
func signCheckpoint(t *testing.T, dir string) (string, verifiable.Checkpoint) {
	t.Helper()
	keys, err := verifiable.LoadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	signed, c, err := verifiable.NewLog(st, keys, time.Now, slog.New(slog.DiscardHandler)).Sign(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "checkpoint")
	if err := os.WriteFile(p, signed, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, c
}

// dataCopy copies the data directory dir to a new one.
func dataCopy(t *testing.T, dir string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "copy")
	copyDir(t, dir, to)
	return to
}

// replaceIn replaces old with new (the same length) in the file's bytes.
func replaceIn(old, new string) func(t *testing.T, b []byte) {
	return func(t *testing.T, b []byte) {
		if !bytes.Contains(b, []byte(old)) {
			t.Fatalf("%q not in the file", old)
		}
		copy(b, bytes.ReplaceAll(b, []byte(old), []byte(new)))
	}
}

// TestVerifySince: coid verify --since a checkpoint kept at 200 records
// passes on the ledger grown to 300 records, also after the key that
// signed it was retired; catches a record changed after the checkpoint
// (record verification, exit 3), one changed before it, a ledger rewritten
// from a point before it with the same key (the consistency proof: the
// old root is no longer the root of its first 200 records) and a ledger
// rolled back to before it; and refuses, with exit 2, a checkpoint file
// that is malformed, forged, signed by another ledger's key, or missing.
func TestVerifySince(t *testing.T) {
	base := filepath.Join(t.TempDir(), "data")
	realStore(t, base)
	cp, c := signCheckpoint(t, base)
	if c.Size != 200 {
		t.Fatalf("checkpoint at %d records, want 200", c.Size)
	}
	backup := dataCopy(t, base)
	appendMarked(t, base, "record marker", 201, 300)
	signed, err := os.ReadFile(cp)
	if err != nil {
		t.Fatal(err)
	}
	writeCP := func(t *testing.T, b []byte) string {
		p := filepath.Join(t.TempDir(), "cp")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// Another history of 300 records signed with the same key: the
	// ledger rewritten from its first record, links and tree rebuilt.
	rewritten := func(t *testing.T) (string, string) {
		other := filepath.Join(t.TempDir(), "data")
		if err := os.MkdirAll(other, 0o700); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{verifiable.KeyFile, verifiable.VerifierFile} {
			b, err := os.ReadFile(filepath.Join(base, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(other, f), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		addUser(t, other, "qa1", custody.RoleQA)
		appendMarked(t, other, "rewritten marker", 1, 300)
		return other, cp
	}
	// The same data, its own key.
	foreignKey := func(t *testing.T) (string, string) {
		other := filepath.Join(t.TempDir(), "data")
		realStore(t, other)
		p, _ := signCheckpoint(t, other)
		return base, p
	}
	flipped := bytes.Clone(signed)
	// A character in the middle of the signature's base64 changed: still
	// base64, no longer the signature.
	if i := len(flipped) - 20; flipped[i] == 'A' {
		flipped[i] = 'B'
	} else {
		flipped[i] = 'A'
	}
	sizeChanged := bytes.Replace(signed, []byte("\n200\n"), []byte("\n199\n"), 1)
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T) (dir, cpFile string)
		exit  int
		out   string
	}{
		{"unchanged", func(t *testing.T) (string, string) { return dataCopy(t, base), cp }, 0, "extends the checkpoint of 200 records"},
		{"changed after", func(t *testing.T) (string, string) {
			dir := dataCopy(t, base)
			editFile(t, dir, replaceIn("record marker 0250", "record marker 9250"))
			return dir, cp
		}, 3, "record 250"},
		{"changed before", func(t *testing.T) (string, string) {
			dir := dataCopy(t, base)
			editFile(t, dir, replaceIn("record marker 0120", "record marker 9120"))
			return dir, cp
		}, 3, "record 120"},
		{"rewritten before, same key", rewritten, 3, "checkpoint of 200 records"},
		{"rolled back", func(t *testing.T) (string, string) {
			later, _ := signCheckpoint(t, base)
			return dataCopy(t, backup), later
		}, 3, "fewer than the 300 of the checkpoint"},
		{"retired key", func(t *testing.T) (string, string) {
			dir := dataCopy(t, base)
			keyCmd(t, dir, "rotate")
			return dir, cp
		}, 0, "extends the checkpoint of 200 records"},
		{"as the API answers it", func(t *testing.T) (string, string) {
			j, err := json.Marshal(map[string]any{"checkpoint": string(signed), "size": 200, "origin": c.Origin})
			if err != nil {
				t.Fatal(err)
			}
			return base, writeCP(t, j)
		}, 0, "extends the checkpoint of 200 records"},
		{"JSON without the note", func(t *testing.T) (string, string) { return base, writeCP(t, []byte(`{"size":200}`)) }, 2, `"checkpoint" member`},
		{"forged signature", func(t *testing.T) (string, string) { return base, writeCP(t, flipped) }, 2, "not a checkpoint signed"},
		{"size changed", func(t *testing.T) (string, string) { return base, writeCP(t, sizeChanged) }, 2, "not a checkpoint signed"},
		{"malformed", func(t *testing.T) (string, string) { return base, writeCP(t, []byte("200:abc\n")) }, 2, "not a checkpoint signed"},
		{"another ledger's key", foreignKey, 2, "not a checkpoint signed"},
		{"missing file", func(t *testing.T) (string, string) { return base, filepath.Join(t.TempDir(), "none") }, 2, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, p := tc.setup(t)
			var out, errb bytes.Buffer
			err := run(context.Background(), []string{"verify", "--data", dir, "--since", p}, nil, nil, &out, &errb)
			code := 0
			if err != nil {
				code = exitCode(err)
			}
			all := out.String() + fmt.Sprint(err)
			t.Logf("exit %d: %s", code, all)
			if code != tc.exit || !strings.Contains(all, tc.out) {
				t.Fatalf("exit %d, want %d; want %q in:\n%s\n%s", code, tc.exit, tc.out, all, errb.String())
			}
			if code == 3 && !strings.Contains(out.String(), "FAILED") {
				t.Fatalf("exit 3 without FAILED: %s", out.String())
			}
		})
	}
}

// TestVerifySinceWithCheckpoint: --since and --checkpoint together are a
// usage error.
func TestVerifySinceWithCheckpoint(t *testing.T) {
	cp := filepath.Join(t.TempDir(), "cp")
	if err := os.WriteFile(cp, []byte("not read\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, exit, err := runCmd(t, nil, "verify", "--since", cp, "--checkpoint", "1:"+strings.Repeat("ab", 32), "--data", t.TempDir())
	if exit != 2 || !strings.Contains(fmt.Sprint(err), "not both") {
		t.Fatalf("exit %d, %v; want a usage error", exit, err)
	}
}

// TestCheckSinceFallsBackToTheWholeCheck: a store that cannot check its
// tree from a record on (the PostgreSQL store) has checkSince run its
// whole check instead, and a failure of it fails verification.
func TestCheckSinceFallsBackToTheWholeCheck(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	realStore(t, dir)
	_, c := signCheckpoint(t, dir)
	st, err := boltstore.Open(dir, boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	called := 0
	whole := func(err error) func(context.Context) error {
		return func(context.Context) error { called++; return err }
	}
	// Only the tree's Source methods: no CheckTreeFrom.
	tree := struct{ verifiable.Source }{st}
	if err := checkSince(ctx, stores{tree: tree, checkFile: whole(nil)}, c); err != nil || called != 1 {
		t.Fatalf("sound: %v, whole check run %d times", err, called)
	}
	broken := fmt.Errorf("record 7: %w", custody.ErrChainBroken)
	var f *sinceFailure
	if err := checkSince(ctx, stores{tree: tree, checkFile: whole(broken)}, c); !errors.As(err, &f) || !strings.Contains(err.Error(), "record 7") {
		t.Fatalf("broken: %v, want a sinceFailure naming record 7", err)
	}
}
