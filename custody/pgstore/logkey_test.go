package pgstore_test

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/custody/verifiable"
)

// TestOneLogKey: two instances on one schema given the same key file sign
// checkpoints that verify with the one verifier key the database records
// at the first checkpoint; an instance with another key is refused at
// bind and, had it not been stopped, at every checkpoint it tries to keep,
// writing nothing.
func TestOneLogKey(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	a, b, c := open(t, url), open(t, url), open(t, url)
	path := filepath.Join(t.TempDir(), "log.key")
	if _, err := verifiable.CreateKeyFile(path, "coid.test/shared", rand.Reader); err != nil {
		t.Fatal(err)
	}
	load := func(p string) *verifiable.Keys {
		k, err := verifiable.LoadKeyFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	ka, kb := load(path), load(path)
	other, err := verifiable.CreateKeys(t.TempDir(), "coid.test/shared", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	// Nothing recorded and nothing signed: every key binds, nothing is
	// written by binding.
	for _, x := range []struct {
		s *pgstore.Store
		k *verifiable.Keys
	}{{a, ka}, {b, kb}, {c, other}} {
		if err := x.s.BindLogKey(ctx, x.k.Verifier()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.LogKey(ctx); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("log key before any checkpoint: %v, want ErrNotFound", err)
	}

	la, lb, lc := verifiable.NewLog(a, ka, nil, nil), verifiable.NewLog(b, kb, nil, nil), verifiable.NewLog(c, other, nil, nil)
	appendChains(t, []*pgstore.Store{a, b}, 1, 2, 3)
	signedA, _, err := la.Sign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.LogKey(ctx); err != nil || got != ka.Verifier() {
		t.Fatalf("recorded log key %q, %v; want %q", got, err, ka.Verifier())
	}
	// c, bound before the key was recorded, is refused in the checkpoint's
	// transaction: nothing kept.
	if _, _, err := lc.Sign(ctx); !errors.Is(err, pgstore.ErrLogKey) || !errors.Is(err, custody.ErrConflict) {
		t.Fatalf("sign with another key after the log's was recorded: %v, want ErrLogKey", err)
	}
	if got, err := a.LatestCheckpoint(ctx); err != nil || string(got) != string(signedA) {
		t.Fatalf("latest checkpoint after the refusal: %q, %v", got, err)
	}
	appendChains(t, []*pgstore.Store{b}, 3, 1, 2)
	signedB, _, err := lb.Sign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	logKey, err := b.LogKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name, signed := range map[string][]byte{"a": signedA, "b": signedB} {
		if _, err := verifiable.Open(signed, logKey); err != nil {
			t.Errorf("instance %s's checkpoint with the log's verifier key: %v", name, err)
		}
	}

	// A restarted instance with another key is refused at bind.
	d := open(t, url)
	if err := d.BindLogKey(ctx, other.Verifier()); !errors.Is(err, pgstore.ErrLogKey) {
		t.Fatalf("bind another key: %v, want ErrLogKey", err)
	}
	if err := d.BindLogKey(ctx, ka.Verifier()); err != nil {
		t.Fatalf("bind the log's key: %v", err)
	}
	// A rotation replaces the recorded key only from the log's own.
	if err := d.ReplaceLogKey(ctx, other.Verifier(), other.Verifier()); !errors.Is(err, pgstore.ErrLogKey) {
		t.Fatalf("replace the log's key from another: %v, want ErrLogKey", err)
	}
	if got, _ := d.LogKey(ctx); got != ka.Verifier() {
		t.Fatalf("a refused replacement changed the key to %q", got)
	}
	if err := d.ReplaceLogKey(ctx, ka.Verifier(), other.Verifier()); err != nil {
		t.Fatal(err)
	}
	if got, _ := d.LogKey(ctx); got != other.Verifier() {
		t.Fatalf("after the replacement the log's key is %q", got)
	}
	if err := a.BindLogKey(ctx, ka.Verifier()); !errors.Is(err, pgstore.ErrLogKey) {
		t.Fatalf("bind the replaced key: %v, want ErrLogKey", err)
	}
}

// TestLogKeyOfAnOlderStore: a store whose checkpoints were signed before
// the key was recorded (an older coid, or a copy by coid migrate) binds
// only the key that signed its latest checkpoint.
func TestLogKeyOfAnOlderStore(t *testing.T) {
	ctx := context.Background()
	url := pgtest.Schema(t)
	s := open(t, url)
	appendChains(t, []*pgstore.Store{s}, 1, 1, 3)
	old, err := verifiable.CreateKeys(t.TempDir(), "coid.test/old", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Signed unbound, as before the key was recorded.
	if _, _, err := verifiable.NewLog(s, old, nil, nil).Sign(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LogKey(ctx); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("an unbound store recorded a key: %v", err)
	}
	other, err := verifiable.CreateKeys(t.TempDir(), "coid.test/old", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s2 := open(t, url)
	if err := s2.BindLogKey(ctx, other.Verifier()); !errors.Is(err, pgstore.ErrLogKey) {
		t.Fatalf("bind a key that did not sign the latest checkpoint: %v, want ErrLogKey", err)
	}
	// Refused at bind, the key signs nothing, and is not recorded.
	if _, _, err := verifiable.NewLog(s2, other, nil, nil).Sign(ctx); !errors.Is(err, pgstore.ErrLogKey) {
		t.Fatalf("sign with a key refused at bind: %v, want ErrLogKey", err)
	}
	if _, err := s2.LogKey(ctx); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("a refused key was recorded: %v", err)
	}
	s3 := open(t, url)
	if err := s3.BindLogKey(ctx, old.Verifier()); err != nil {
		t.Fatal(err)
	}
	if _, err := s3.LogKey(ctx); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("binding wrote the key: %v", err)
	}
}
