package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
)

// TestUserNetworkCLI: coid user add --org --site binds a new person;
// coid user network rebinds one, with a reason, audited; bad codes are
// refused and change nothing.
func TestUserNetworkCLI(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	cli := func(stdin string, args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(ctx, append(args, "--data", dir), nil, strings.NewReader(stdin), &out, &errb)
		return out.String(), err
	}
	if _, err := cli("long-password\n", "user", "add", "--id", "admin", "--name", "A", "--role", "admin"); err != nil {
		t.Fatal(err)
	}
	// Register the network through the service, on the stopped ledger.
	st, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := custody.NewService(custody.Config{Store: st, Hasher: passwd.Fast(), Logger: slog.New(slog.DiscardHandler), FIN: "A9999", Now: func() time.Time { return time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := st.User(ctx, "admin")
	for _, o := range []custody.Organisation{{Code: "HOSPA", Name: "A", Kind: custody.OrgHospital}, {Code: "HOSPB", Name: "B", Kind: custody.OrgHospital}} {
		if _, err := svc.RegisterOrganisation(ctx, admin, o, "set-up"); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range [][2]string{{"HOSP-1", "HOSPA"}, {"HOSP-0", "HOSPA"}, {"HOSP-2", "HOSPB"}} {
		site := custody.Site{Code: s[0], Name: s[0], Kinds: []custody.SiteRole{custody.SiteCollection}, Organisation: s[1], TimeZone: "UTC",
			Address: "x", Country: "FR", Accreditation: custody.Accreditation{Status: custody.AccreditationNone}}
		if _, err := svc.RegisterSite(ctx, admin, site, "set-up"); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	if _, err := cli("long-password\n", "user", "add", "--id", "n1", "--name", "N", "--role", "nurse", "--org", "HOSPA", "--site", "HOSP-1", "--site", "HOSP-0"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{
		{"user", "add", "--id", "n2", "--name", "N", "--role", "nurse", "--org", "HOSPA", "--site", "HOSP-2"},
		{"user", "add", "--id", "n2", "--name", "N", "--role", "nurse", "--org", "NOPE"},
		{"user", "network", "--id", "n1", "--org", "HOSPB", "--site", "HOSP-2"}, // no reason
		{"user", "network", "--id", "n1", "--org", "HOSPB", "--site", "HOSP-1", "--reason", "moved"},
	} {
		if _, err := cli("long-password\n", bad...); err == nil || exitCode(err) != 1 {
			t.Fatalf("%v: %v, want a refusal", bad, err)
		}
	}
	out, err := cli("", "user", "network", "--id", "n1", "--org", "HOSPB", "--site", "HOSP-2", "--reason", "moved to B")
	if err != nil || out != "n1\tHOSPB\tHOSP-2\n" {
		t.Fatalf("user network: %q %v", out, err)
	}
	if out, err := cli("", "user", "list"); err != nil || !strings.Contains(out, "HOSPB") || !strings.Contains(out, "HOSP-2") {
		t.Fatalf("user list: %q %v", out, err)
	}
	st, err = boltstore.Open(dir, boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.User(ctx, "n2"); err == nil {
		t.Fatal("a refused user add created the user")
	}
	trail, err := st.AuditEntries(ctx, custody.AuditFilter{})
	if err != nil || len(trail) == 0 {
		t.Fatal(trail, err)
	}
	last := trail[len(trail)-1]
	if last.Action != custody.AuditUserNetwork || last.Actor != "offline" || last.Reason != "moved to B" ||
		string(last.Old) != `{"organisation":"HOSPA","sites":"HOSP-0,HOSP-1"}` || string(last.New) != `{"organisation":"HOSPB","sites":"HOSP-2"}` {
		t.Fatalf("audit entry: %+v old %s new %s", last, last.Old, last.New)
	}
}
