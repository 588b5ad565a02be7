package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
	bolt "go.etcd.io/bbolt"
)

// TestVerifyCommandCatchesChangedAuditEntry changes the reason of a
// registry change's audit entry on disk: `coid verify` must fail (exit 3)
// and name the audit trail's entry.
func TestVerifyCommandCatchesChangedAuditEntry(t *testing.T) {
	dir := t.TempDir()
	st, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := custody.NewService(custody.Config{Store: st, Hasher: passwd.Fast(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC) }, FIN: "A9999"})
	if err != nil {
		t.Fatal(err)
	}
	admin := custody.User{ID: "admin1", Role: custody.RoleAdmin}
	ctx := context.Background()
	if _, err := svc.RegisterOrganisation(ctx, admin, custody.Organisation{Code: "FASTCO", Name: "FastCo", Kind: custody.OrgCourier}, "contract signed"); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"verify", "--data", dir}, nil, nil, &out, &errb); err != nil {
		t.Fatalf("verify of an untouched file: %v %s %s", err, out.String(), errb.String())
	}

	db, err := bolt.Open(filepath.Join(dir, "coid.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("registry_audit"))
		k := []byte{0, 0, 0, 0, 0, 0, 0, 1}
		v := bytes.Replace(b.Get(k), []byte("contract signed"), []byte("contract pending"), 1)
		return b.Put(k, v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = run(ctx, []string{"verify", "--data", dir}, nil, nil, &out, &errb)
	if !errors.Is(err, errVerifyFailed) || exitCode(err) != 3 {
		t.Fatalf("verify of a changed audit entry: %v (exit %d)", err, exitCode(err))
	}
	if !strings.Contains(out.String(), "registry_audit") || !strings.Contains(out.String(), "does not match its hash") {
		t.Fatalf("verify did not name the audit entry: %q", out.String())
	}
}
