package boltstore

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// rawUpdate runs fn on the closed store's file directly, as damage or an
// older coid would leave it.
func rawUpdate(t *testing.T, dir string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAccountsOnAnOlderFile: a file from before the accounts' buckets
// verifies read-only, lists no audit entries and its tokens without times;
// opened for writing it gets the buckets, and its tokens keep working.
func TestAccountsOnAnOlderFile(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openT(t, dir)
	tok := custody.TokenHash("coid_older_file_token")
	if err := s.CreateUser(ctx, custody.User{ID: "nurse1", Name: "N", Role: custody.RoleNurse, Created: t0}, tok); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawUpdate(t, dir, func(tx *bolt.Tx) error {
		for _, b := range accountBuckets {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return nil
	})
	ro, err := Open(dir, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ro.CheckFile(ctx); err != nil {
		t.Fatalf("CheckFile of an older file: %v", err)
	}
	if l, err := ro.AuditEntries(ctx, custody.AuditFilter{}); err != nil || len(l) != 0 {
		t.Fatalf("audit of an older file: %v %v", l, err)
	}
	if toks, err := ro.Tokens(ctx, "nurse1"); err != nil || len(toks) != 1 || !toks[0].Created.IsZero() {
		t.Fatalf("tokens of an older file: %+v %v", toks, err)
	}
	ro.Close()
	s = openT(t, dir)
	defer s.Close()
	if u, err := s.UserByToken(ctx, tok); err != nil || u.ID != "nurse1" {
		t.Fatalf("token after the upgrade: %v", err)
	}
	if err := s.TouchToken(ctx, tok, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(ctx, custody.AuditEntry{Time: t0, Actor: "admin1", Action: custody.AuditUserUnlock, Kind: custody.KindUser, Code: "nurse1", New: custody.AuditValues(map[string]string{"disabled": "false"})}); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckFile(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCheckFileFindsDamagedAccountEntries: coid verify's whole-file check
// decodes the audit log and the tokens' metadata.
func TestCheckFileFindsDamagedAccountEntries(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bucket []byte
		key    []byte
		value  []byte
	}{
		{"audit entry not JSON", bucketAudit, u64(1), []byte("{not json")},
		{"audit entry under another number", bucketAudit, u64(1), []byte(`{"seq":7,"time":"2026-11-23T08:00:00Z","actor":"a","action":"x","kind":"user","code":"y"}`)},
		{"token metadata key", bucketTokenInfo, []byte("nurse1"), []byte(`{}`)},
		{"token metadata value", bucketTokenInfo, tokenInfoKey("nurse1", make([]byte, custody.HashSize)), []byte("[")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openT(t, dir)
			if _, err := s.AppendAudit(context.Background(), custody.AuditEntry{Time: t0, Actor: "admin1", Action: custody.AuditUserAdd, Kind: custody.KindUser, Code: "nurse1", New: custody.AuditValues(map[string]string{"disabled": "false"})}); err != nil {
				t.Fatal(err)
			}
			s.Close()
			rawUpdate(t, dir, func(tx *bolt.Tx) error { return tx.Bucket(tc.bucket).Put(tc.key, tc.value) })
			ro, err := Open(dir, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			var fd *FileDamage
			if err := ro.CheckFile(context.Background()); !errors.As(err, &fd) || fd.Bucket != string(tc.bucket) || !errors.Is(err, custody.ErrDamaged) {
				t.Fatalf("CheckFile: %v, want damage in %s", err, tc.bucket)
			}
		})
	}
}
