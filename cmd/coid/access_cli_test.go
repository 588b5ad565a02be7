package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestRegistryImportJurisdictions: an administrator extends the
// expanded-access jurisdictions from the network file; registry list
// shows the built-in one and the new one, and a malformed one fails.
func TestRegistryImportJurisdictions(t *testing.T) {
	dir := t.TempDir()
	addUser(t, dir, "admin1", custody.RoleAdmin)
	addUser(t, dir, "qa1", custody.RoleQA)
	p := filepath.Join(t.TempDir(), "jurisdictions.json")
	body := `{"organisations": [], "sites": [], "products": [], "shippers": [], "jurisdictions": [
  {"code": "UK-MHRA-NP", "name": "UK named patient", "required": [["loa-issued"]]},
  {"code": "BAD", "name": "Bad", "required": [["collect"]]}]}`
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, _, err := runCmd(t, nil, "registry", "import", "--data", dir, "--actor", "admin1", "--file", p, "--reason", "UK programme")
	if !errors.Is(err, custody.ErrInvalid) || !strings.Contains(out, "registered 1, already registered 0, failed 1") || !strings.Contains(out, `jurisdiction "BAD"`) {
		t.Fatalf("import: %v\n%s", err, out)
	}
	out, _, _, err = runCmd(t, nil, "registry", "list", "--data", dir, "--actor", "qa1", "--kind", "jurisdiction")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{custody.USFDASinglePatient, "UK-MHRA-NP"} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %s:\n%s", want, out)
		}
	}
}
