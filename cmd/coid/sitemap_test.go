package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
)

// TestSiteMapCommand maps an old chain's free-text site offline: the
// mapping is audited, a second run changes it, --list shows it, and
// `coid verify` still passes (the ledger is not rewritten).
func TestSiteMapCommand(t *testing.T) {
	dir := t.TempDir()
	st, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	svc, err := custody.NewService(custody.Config{Store: st, Hasher: passwd.Fast(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC) }, FIN: "A9999"})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		id   string
		role custody.Role
	}{{"admin1", custody.RoleAdmin}, {"coord1", custody.RoleCoordinator}} {
		if _, err := svc.AddUser(ctx, u.id, "Printed "+u.id, u.role, "pw-"+u.id+"-secret"); err != nil {
			t.Fatal(err)
		}
	}
	coord, _ := st.User(ctx, "coord1")
	if _, err := svc.Enroll(ctx, coord, custody.EnrollRequest{Patient: custody.PHI{Name: "Jane Q Doe", BirthDate: "1970-01-02", MRN: "MRN-1"},
		Product: "CAR-T", Sites: custody.Sites{Collection: "St. Mary Apheresis", Manufacturing: "CellWorks NJ", Treatment: "St. Mary BMT"}}); err != nil {
		t.Fatal(err)
	}
	admin, _ := st.User(ctx, "admin1")
	if _, err := svc.RegisterOrganisation(ctx, admin, custody.Organisation{Code: "STM", Name: "St. Mary", Kind: custody.OrgHospital}, "network"); err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{"STM-1", "STM-2"} {
		if _, err := svc.RegisterSite(ctx, admin, custody.Site{Code: code, Name: "St. Mary " + code, Kinds: []custody.SiteRole{custody.SiteCollection},
			Organisation: "STM", TimeZone: "America/Chicago", Address: "1 Main St", Country: "US",
			Accreditation: custody.Accreditation{Status: custody.AccreditationNone}}, "network"); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, append([]string{"site-map", "--data", dir}, args...), nil, nil, &out, &errb)
		return out.String() + errb.String(), err
	}
	if _, err := cmd("--name", "St. Mary Apheresis", "--site", "STM-1"); err == nil || !strings.Contains(err.Error(), "required") {
		t.Errorf("without --user and --reason: %v", err)
	}
	if _, err := cmd("--user", "coord1", "--name", "St. Mary Apheresis", "--site", "STM-1", "--reason", "x"); err == nil || !strings.Contains(err.Error(), "administrator") {
		t.Errorf("as a coordinator: %v", err)
	}
	if out, err := cmd("--user", "admin1", "--name", "St. Mary Apheresis", "--site", "STM-1", "--reason", "migration"); err != nil || !strings.Contains(out, `mapped: "St. Mary Apheresis" -> STM-1`) {
		t.Fatalf("map: %v %s", err, out)
	}
	if out, err := cmd("--user", "admin1", "--name", "St. Mary Apheresis", "--site", "STM-2", "--reason", "correction"); err != nil || !strings.Contains(out, "changed") {
		t.Fatalf("remap: %v %s", err, out)
	}
	if out, err := cmd("--list"); err != nil || !strings.Contains(out, "St. Mary Apheresis  STM-2") {
		t.Errorf("list: %v %q", err, out)
	}
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"verify", "--data", dir}, nil, nil, &out, &errb); err != nil {
		t.Fatalf("verify after mapping: %v %s %s", err, out.String(), errb.String())
	}
	st, err = boltstore.Open(dir, boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	trail, err := st.AuditEntries(ctx, custody.AuditFilter{Kind: custody.ObjectKind(custody.KindSiteMapping)})
	if err != nil || len(trail) != 2 || trail[1].Reason != "correction" || !strings.Contains(string(trail[1].Old), "STM-1") || trail[1].Actor != "admin1" {
		t.Errorf("audit trail: %+v %v", trail, err)
	}
}

// TestServeQualificationWarningDaysFlag: an out-of-range or unreadable
// warning period is refused before anything is opened.
func TestServeQualificationWarningDaysFlag(t *testing.T) {
	dir := t.TempDir() + "/data"
	for _, tc := range []struct {
		env  []string
		args []string
	}{
		{nil, []string{"--qualification-warning-days", "-1"}},
		{nil, []string{"--qualification-warning-days", "4000"}},
		{[]string{"COID_QUALIFICATION_WARNING_DAYS=thirty"}, nil},
	} {
		_, _, exit, err := runCmd(t, tc.env, append([]string{"serve", "--data", dir, "--http", "127.0.0.1:0"}, tc.args...)...)
		if exit != 2 || err == nil || !strings.Contains(err.Error(), "qualification-warning-days") {
			t.Errorf("%v %v: exit %d %v, want a usage error", tc.env, tc.args, exit, err)
		}
	}
}
