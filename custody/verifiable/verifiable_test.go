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
