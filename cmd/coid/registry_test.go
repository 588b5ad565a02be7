package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

const networkJSON = `{
 "organisations": [
  {"code": "APHP", "name": "AP-HP", "kind": "hospital"},
  {"code": "CUR", "name": "Courier Ltd", "kind": "courier"}
 ],
 "sites": [
  {"code": "PAR-1", "name": "Hopital Saint-Louis", "kinds": ["collection", "treatment"], "organisation": "APHP",
   "time_zone": "Europe/Paris", "address": "1 avenue Claude Vellefaux, 75010 Paris", "country": "FR",
   "accreditation": {"status": "accredited", "expiry": "2027-06-30"},
   "qualification": {"training_done": true, "date": "2026-01-15", "expiry": "2027-01-15"}}%s
 ],
 "products": [
  {"code": "CART-19", "name": "anti-CD19 CAR-T", "isbt_code": "S1234V00", "storage_profile": "cryogenic",
   "shelf_life_hours": 8760, "manufacturing_days": 14}
 ],
 "shippers": [{"id": "SHP-0042", "courier": "CUR", "requalification_due": "2027-03-01"}]
}`

// badSite is a site whose organisation is not registered: import must
// report it and register the rest.
const badSite = `,
  {"code": "LYO-1", "name": "Lyon", "kinds": ["treatment"], "organisation": "NOPE",
   "time_zone": "Europe/Paris", "address": "Lyon", "country": "FR",
   "accreditation": {"status": "accredited", "expiry": "2027-06-30"},
   "qualification": {"training_done": true, "date": "2026-01-15", "expiry": "2027-01-15"}}`

func writeNetwork(t *testing.T, extra string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "network.json")
	if err := os.WriteFile(p, []byte(strings.Replace(networkJSON, "%s", extra, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRegistryImport: an import registers the network, reports what
// failed with a non-zero exit, skips what exists on a re-run, and is
// refused without an administrator, a reason or a readable file.
func TestRegistryImport(t *testing.T) {
	dir := t.TempDir()
	addUser(t, dir, "admin1", custody.RoleAdmin)
	addUser(t, dir, "qa1", custody.RoleQA)

	bad := writeNetwork(t, badSite)
	out, _, exit, err := runCmd(t, nil, "registry", "import", "--data", dir, "--actor", "admin1", "--file", bad, "--reason", "bootstrap")
	if !errors.Is(err, custody.ErrInvalid) || exit != 1 {
		t.Fatalf("import with a bad site: exit %d (%v), want 1 wrapping ErrInvalid", exit, err)
	}
	if !strings.Contains(out, "registered 5, already registered 0, failed 1") || !strings.Contains(out, `site "LYO-1"`) {
		t.Fatalf("import output:\n%s", out)
	}

	good := writeNetwork(t, "")
	out, _, _, err = runCmd(t, nil, "registry", "import", "--data", dir, "--actor", "admin1", "--file", good, "--reason", "bootstrap")
	if err != nil || !strings.Contains(out, "registered 0, already registered 5, failed 0") {
		t.Fatalf("re-run: %v\n%s", err, out)
	}

	out, _, _, err = runCmd(t, nil, "registry", "list", "--data", dir, "--actor", "qa1")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"organisation  APHP", "organisation  CUR", "site          PAR-1", "CART-19", "SHP-0042"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "LYO-1") {
		t.Errorf("the failed site is listed:\n%s", out)
	}
	out, _, _, err = runCmd(t, nil, "registry", "list", "--data", dir, "--actor", "qa1", "--kind", "site")
	if err != nil || strings.Contains(out, "APHP  ") && strings.Contains(out, "organisation  ") {
		t.Fatalf("list --kind site: %v\n%s", err, out)
	}

	for _, c := range []struct {
		name string
		args []string
		exit int
		is   error
	}{
		{"not an administrator", []string{"--actor", "qa1", "--file", good, "--reason", "x"}, 1, custody.ErrForbidden},
		{"unknown actor", []string{"--actor", "ghost", "--file", good, "--reason", "x"}, 1, custody.ErrNotFound},
		{"no reason", []string{"--actor", "admin1", "--file", good, "--reason", " "}, 2, nil},
		{"no actor", []string{"--file", good, "--reason", "x"}, 2, nil},
		{"no file", []string{"--actor", "admin1", "--reason", "x"}, 2, nil},
		{"missing file", []string{"--actor", "admin1", "--file", filepath.Join(dir, "none.json"), "--reason", "x"}, 1, os.ErrNotExist},
	} {
		args := append([]string{"registry", "import", "--data", dir}, c.args...)
		_, _, exit, err := runCmd(t, nil, args...)
		if exit != c.exit || c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("%s: exit %d (%v), want %d wrapping %v", c.name, exit, err, c.exit, c.is)
		}
	}
	if _, _, exit, err := runCmd(t, nil, "registry", "list", "--data", dir, "--actor", "ghost"); exit != 1 || !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("an unknown actor lists the registries: exit %d (%v), want 1", exit, err)
	}
	if _, _, exit, err := runCmd(t, nil, "registry", "list", "--data", filepath.Join(dir, "typo"), "--actor", "admin1"); exit != 1 || !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("list on a mistyped --data: exit %d (%v)", exit, err)
	}
}

// TestRegistryImportRejectsUnknownFields: a misspelt field is an error
// before anything is registered, not a silently empty value.
func TestRegistryImportRejectsUnknownFields(t *testing.T) {
	dir := t.TempDir()
	addUser(t, dir, "admin1", custody.RoleAdmin)
	p := filepath.Join(t.TempDir(), "n.json")
	if err := os.WriteFile(p, []byte(`{"organisations":[{"code":"APHP","nmae":"x","kind":"hospital"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, exit, err := runCmd(t, nil, "registry", "import", "--data", dir, "--actor", "admin1", "--file", p, "--reason", "x")
	if exit != 1 || !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("exit %d (%v), want 1 wrapping ErrInvalid", exit, err)
	}
	out, _, _, err := runCmd(t, nil, "registry", "list", "--data", dir, "--actor", "admin1")
	if err != nil || strings.Contains(out, "APHP") {
		t.Fatalf("something was registered: %v\n%s", err, out)
	}
}
