package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
	bolt "go.etcd.io/bbolt"
)

// auditFixture writes a data directory whose trail holds an
// organisation's registration (entry 1) and its renaming (entry 2), on
// different days.
func auditFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	st, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	svc, err := custody.NewService(custody.Config{Store: st, Hasher: passwd.Fast(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return now }, FIN: "A9999"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := svc.AddUser(ctx, "qa1", "Quinn QA", custody.RoleQA, "a long enough password"); err != nil {
		t.Fatal(err)
	}
	admin := custody.User{ID: "admin1", Role: custody.RoleAdmin}
	if _, err := svc.RegisterOrganisation(ctx, admin, custody.Organisation{Code: "FASTCO", Name: "FastCo", Kind: custody.OrgCourier}, "contract signed"); err != nil {
		t.Fatal(err)
	}
	now = now.Add(48 * time.Hour)
	if _, err := svc.UpdateOrganisation(ctx, admin, "FASTCO", custody.Organisation{Code: "FASTCO", Name: "FastCo Logistics", Kind: custody.OrgCourier}, "+renamed"); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestAuditCommand(t *testing.T) {
	dir := auditFixture(t)
	out := t.TempDir()
	pdf, csvf := filepath.Join(out, "a.pdf"), filepath.Join(out, "a.csv")
	var so, se bytes.Buffer
	err := run(context.Background(), []string{"audit", "--data", dir, "--user", "qa1", "--from", "2026-11-24", "--kind", "organisation",
		"--at", "2026-12-01T10:00:00Z", "--pdf", pdf, "--csv", csvf}, nil, nil, &so, &se)
	if err != nil {
		t.Fatalf("coid audit: %v\n%s", err, se.String())
	}
	b, err := os.ReadFile(csvf)
	if err != nil {
		t.Fatal(err)
	}
	// coid audit given the trail's flags is coid audit-trail.
	trail := filepath.Join(out, "trail.csv")
	if err := run(context.Background(), []string{"audit-trail", "--data", dir, "--user", "qa1", "--from", "2026-11-24", "--kind", "organisation",
		"--at", "2026-12-01T10:00:00Z", "--csv", trail}, nil, nil, io.Discard, io.Discard); err != nil {
		t.Fatalf("coid audit-trail: %v", err)
	}
	if b2, _ := os.ReadFile(trail); !bytes.Equal(b2, b) {
		t.Error("coid audit-trail and coid audit --csv differ")
	}
	rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(rows) != 2 {
		t.Fatalf("csv %q: %v", rows, err)
	}
	if rows[1][0] != "2" || rows[1][6] != "'+renamed" || rows[1][7] != "name: FastCo -> FastCo Logistics" {
		t.Errorf("csv row %q", rows[1])
	}
	if fi, err := os.Stat(pdf); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("pdf: %v %v", fi, err)
	}
	if bin, err := exec.LookPath("pdftotext"); err == nil {
		txt, err := exec.Command(bin, pdf, "-").Output()
		if err != nil {
			t.Fatal(err)
		}
		flat := strings.Join(strings.Fields(string(txt)), " ")
		for _, w := range []string{"Administrative audit trail", "name: FastCo -> FastCo Logistics", "Quinn QA (qa1, qa)", "Verified", "page 1 of 1"} {
			if !strings.Contains(flat, w) {
				t.Errorf("PDF lacks %q:\n%s", w, flat)
			}
		}
	}
	for _, tc := range []struct {
		name string
		args []string
		exit int
	}{
		{"no output", []string{"--data", dir}, 2},
		{"bad period", []string{"--data", dir, "--from", "2026-12-02", "--to", "2026-12-01", "--csv", csvf}, 2},
		{"code without kind", []string{"--data", dir, "--code", "FASTCO", "--csv", csvf}, 2},
		{"nurse", []string{"--data", dir, "--user", "ghost", "--csv", csvf}, 1},
		{"too many", []string{"--data", dir, "--max", "1", "--csv", csvf}, 1},
	} {
		err := run(context.Background(), append([]string{"audit"}, tc.args...), nil, nil, io.Discard, io.Discard)
		if err == nil || exitCode(err) != tc.exit {
			t.Errorf("%s: %v (exit %d), want exit %d", tc.name, err, exitCode(err), tc.exit)
		}
	}
}

// TestVerifyAndAuditCatchChangedValues changes the new value of a stored
// registry change on disk: coid verify fails naming the entry, and coid
// audit still writes its report, saying the trail is broken, and exits 3.
func TestVerifyAndAuditCatchChangedValues(t *testing.T) {
	dir := auditFixture(t)
	db, err := bolt.Open(filepath.Join(dir, "coid.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("registry_audit"))
		k := []byte{0, 0, 0, 0, 0, 0, 0, 2}
		v := bytes.Replace(b.Get(k), []byte("FastCo Logistics"), []byte("SlowCo Logistics"), 1)
		return b.Put(k, v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = run(context.Background(), []string{"verify", "--data", dir}, nil, nil, &out, io.Discard)
	if !errors.Is(err, errVerifyFailed) || exitCode(err) != 3 || !strings.Contains(out.String(), "registry_audit") {
		t.Fatalf("verify of a changed new value: %v (exit %d) %q", err, exitCode(err), out.String())
	}
	csvf := filepath.Join(t.TempDir(), "a.csv")
	var se bytes.Buffer
	err = run(context.Background(), []string{"audit", "--data", dir, "--csv", csvf}, nil, nil, io.Discard, &se)
	if exitCode(err) != 3 || !strings.Contains(se.String(), "VERIFICATION FAILED") || !strings.Contains(se.String(), "audit entry 2") {
		t.Fatalf("audit of a broken trail: %v (exit %d) %s", err, exitCode(err), se.String())
	}
	if _, err := os.Stat(csvf); err != nil {
		t.Errorf("the report of a broken trail was not written: %v", err)
	}
}
