package verifiable_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
	"golang.org/x/mod/sumdb/note"
)

var t0 = time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)

func sample(origin string, size int64) verifiable.Checkpoint {
	c := verifiable.Checkpoint{Origin: origin, Size: size}
	for i := range c.Root {
		c.Root[i] = byte(i * 7)
	}
	return c
}

// TestCheckpointTextIsC2SP pins the body format: origin, decimal size,
// standard base64 root, each line ending in a newline.
func TestCheckpointTextIsC2SP(t *testing.T) {
	c := sample("coid/0011223344556677", 1234)
	want := "coid/0011223344556677\n1234\nAAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk=\n"
	if got := c.Text(); got != want {
		t.Fatalf("text %q, want %q", got, want)
	}
	back, err := verifiable.ParseCheckpoint(want + "extension line\n")
	if err != nil || back != c {
		t.Fatalf("parse: %+v %v", back, err)
	}
	for _, bad := range []string{"", "o\n1\n", "o\n01\nAAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk=\n", "o\n-1\nAAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk=\n",
		"\n1\nAAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk=\n", "o\n1\nAAcO\n", "o\n1\nAAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk="} {
		if _, err := verifiable.ParseCheckpoint(bad); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", bad, err)
		}
	}
}

// TestSignedCheckpointFailsWithAnyFlippedByte signs a checkpoint, which
// opens with the verifier key; every byte of the note flipped, it does
// not.
func TestSignedCheckpointFailsWithAnyFlippedByte(t *testing.T) {
	dir := t.TempDir()
	k, err := verifiable.CreateKeys(dir, "coid/test-log", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := sample(k.Origin(), 42)
	signed, err := verifiable.Sign(c, k.Signer())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := verifiable.Open(signed, k.Verifier()); err != nil || got != c {
		t.Fatalf("open: %+v %v", got, err)
	}
	for i := range signed {
		for _, bit := range []byte{0x01, 0x80} {
			bad := bytes.Clone(signed)
			bad[i] ^= bit
			if got, err := verifiable.Open(bad, k.Verifier()); err == nil {
				t.Fatalf("byte %d ^%#x: opened as %+v", i, bit, got)
			}
		}
	}
	// Another log's key, or one of the same name, does not open it.
	other, err := verifiable.CreateKeys(t.TempDir(), "coid/test-log", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verifiable.Open(signed, other.Verifier()); !errors.Is(err, verifiable.ErrBadSignature) {
		t.Fatalf("other key: %v, want ErrBadSignature", err)
	}
	// A key may only sign its own log's checkpoints.
	if _, err := verifiable.Sign(sample("coid/another", 1), k.Signer()); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("sign another origin: %v", err)
	}
}

// TestKeyRotationKeepsOldCheckpointsVerifiable rotates the key: new
// checkpoints are signed with the new key, the old ones still open with
// the verifier keys kept, and the private key file stays 0600 and is
// replaced.
func TestKeyRotationKeepsOldCheckpointsVerifiable(t *testing.T) {
	dir := t.TempDir()
	k, err := verifiable.OpenKeys(dir, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.Origin(), "coid/") {
		t.Fatalf("origin %q", k.Origin())
	}
	keyPath := filepath.Join(dir, verifiable.KeyFile)
	oldPriv, _ := os.ReadFile(keyPath)
	oldVerifier := k.Verifier()
	old, _ := verifiable.Sign(sample(k.Origin(), 10), k.Signer())
	if err := k.Rotate(rand.Reader, t0); err != nil {
		t.Fatal(err)
	}
	newer, _ := verifiable.Sign(sample(k.Origin(), 20), k.Signer())
	// Reloaded from the files, as a restarted service would.
	k2, err := verifiable.LoadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k2.Verifier() == oldVerifier || k2.Origin() != k.Origin() {
		t.Fatalf("after rotation: verifier %q origin %q", k2.Verifier(), k2.Origin())
	}
	for name, signed := range map[string][]byte{"old": old, "new": newer} {
		if _, err := verifiable.Open(signed, k2.Verifiers()...); err != nil {
			t.Errorf("%s checkpoint with every key: %v", name, err)
		}
	}
	if _, err := verifiable.Open(old, k2.Verifier()); !errors.Is(err, verifiable.ErrBadSignature) {
		t.Errorf("old checkpoint with only the new key: %v, want ErrBadSignature", err)
	}
	if _, err := verifiable.Open(newer, oldVerifier); !errors.Is(err, verifiable.ErrBadSignature) {
		t.Errorf("new checkpoint with the retired key: %v, want ErrBadSignature", err)
	}
	fi, err := os.Stat(keyPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v %v", fi.Mode(), err)
	}
	newPriv, _ := os.ReadFile(keyPath)
	if bytes.Equal(oldPriv, newPriv) {
		t.Fatal("the private key did not change")
	}
	exp := k2.Export()
	if strings.Contains(exp, "PRIVATE") || !strings.Contains(exp, oldVerifier) || !strings.Contains(exp, "retired 2026-12-04T09:00:00Z") {
		t.Fatalf("export:\n%s", exp)
	}
	// The verifier key is the signed-note format other tools read.
	if _, err := note.NewVerifier(k2.Verifier()); err != nil {
		t.Fatal(err)
	}
	if _, err := verifiable.CreateKeys(dir, "coid/x", rand.Reader); !errors.Is(err, custody.ErrConflict) {
		t.Fatalf("create over an existing key: %v", err)
	}
	if _, err := verifiable.LoadKeys(t.TempDir()); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("load from an empty dir: %v", err)
	}
}

// TestKeyFile checks the key file handed to every instance of a log: what
// CreateKeyFile writes loads again with the same verifier key (derived from
// the private key), signs checkpoints that verifier opens, and also loads
// from a data directory's key (the same format); a missing, empty or
// malformed file is a clear error that never repeats the file's content.
func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log.key")
	k, err := verifiable.CreateKeyFile(path, "coid/shared-log", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi, err)
	}
	if _, err := verifiable.CreateKeyFile(path, "coid/shared-log", rand.Reader); !errors.Is(err, custody.ErrConflict) {
		t.Fatalf("create over an existing file: %v", err)
	}
	a, err := verifiable.LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := verifiable.LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if a.Verifier() != k.Verifier() || b.Verifier() != k.Verifier() || a.Origin() != "coid/shared-log" {
		t.Fatalf("verifiers %q %q, want %q", a.Verifier(), b.Verifier(), k.Verifier())
	}
	// Two instances with the file sign checkpoints one verifier key opens.
	for i, keys := range []*verifiable.Keys{a, b} {
		signed, err := verifiable.Sign(sample(keys.Origin(), int64(10+i)), keys.Signer())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := verifiable.Open(signed, k.Verifier()); err != nil {
			t.Fatalf("instance %d's checkpoint: %v", i, err)
		}
	}
	if err := a.Rotate(rand.Reader, t0); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("rotate a key file's key: %v", err)
	}
	// A data directory's key file is the same format.
	ddir := t.TempDir()
	dk, err := verifiable.CreateKeys(ddir, "coid/dir-log", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	fk, err := verifiable.LoadKeyFile(filepath.Join(ddir, verifiable.KeyFile))
	if err != nil {
		t.Fatalf("a data directory's key as a key file: %v", err)
	}
	if fk.Verifier() != dk.Verifier() {
		t.Fatalf("a data directory's key as a key file: verifier %q want %q", fk.Verifier(), dk.Verifier())
	}

	priv, _ := os.ReadFile(path)
	secret := strings.TrimSpace(string(priv))
	for _, tc := range []struct {
		name    string
		content string // "" with missing: no file
		missing bool
		want    error
	}{
		{name: "missing", missing: true, want: custody.ErrNotFound},
		{name: "empty", content: "", want: custody.ErrInvalid},
		{name: "verifier key, not private", content: k.Verifier() + "\n", want: custody.ErrInvalid},
		{name: "truncated", content: secret[:len(secret)-6] + "\n", want: custody.ErrInvalid},
		{name: "two keys", content: secret + "\n" + secret + "\n", want: custody.ErrInvalid},
		{name: "garbage", content: "hello world\n", want: custody.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "key")
			if !tc.missing {
				if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := verifiable.LoadKeyFile(p)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error does not name the file: %v", err)
			}
			if strings.Contains(err.Error(), "PRIVATE") || strings.Contains(err.Error(), secret[len("PRIVATE+KEY+"):]) {
				t.Errorf("error repeats the key: %v", err)
			}
		})
	}
}
