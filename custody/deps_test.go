package custody_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestImportsStayStdlib holds the dependency rule of the domain core:
// custody itself imports only the standard library, and so does each
// subpackage declared stdlib-only below. A subpackage may wrap one outside
// dependency only when it is declared here with that purpose, and a new
// subpackage must be declared one way or the other.
func TestImportsStayStdlib(t *testing.T) {
	const module = "github.com/coid-project/coid"
	const core = module + "/custody"
	// stdlibOnly lists the packages that import the standard library and
	// other stdlib-only packages of this list, nothing else.
	stdlibOnly := []string{core, core + "/coldchain", core + "/epcis", core + "/storetest", core + "/ical"}
	// outside lists the subpackages that each wrap an outside dependency.
	outside := map[string]string{
		core + "/boltstore":      "the bbolt store",
		core + "/pgstore":        "the PostgreSQL store (pgx)",
		core + "/pgstore/pgtest": "the tests' PostgreSQL schemas (pgx)",
		core + "/passwd":         "argon2id from golang.org/x/crypto",
		core + "/phitext":        "Unicode normalisation and confusable folding",
		core + "/fhir":           "the FHIR R4 model structs",
		core + "/verifiable":     "Merkle tree, proofs and signed notes from golang.org/x/mod/sumdb, cosignatures from transparency-dev/formats",
	}
	outside[core+"/boltstore/storegen"] = "the benchmarks' kept stores, walked through the service over boltstore (no outside import of its own)"
	outside[core+"/verifiable/witness"] = "the C2SP tlog-witness client, over verifiable's signed notes"
	outside[core+"/verifiable/witness/witnesstest"] = "a tlog-witness for tests from golang.org/x/mod/sumdb and filippo.io/torchwood"
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH:", err)
	}
	list := func(args ...string) []goPackage {
		t.Helper()
		cmd := exec.Command(goBin, append([]string{"list", "-e", "-json"}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list %v: %v\n%s", args, err, stderr.String())
		}
		var pkgs []goPackage
		dec := json.NewDecoder(bytes.NewReader(out))
		for {
			var p goPackage
			if err := dec.Decode(&p); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("go list %v: decode: %v", args, err)
			}
			if p.Error != nil {
				t.Fatalf("go list: %s: %s", p.ImportPath, p.Error.Err)
			}
			pkgs = append(pkgs, p)
		}
		return pkgs
	}

	for _, p := range list(core + "/...") {
		if p.ImportPath == core || strings.Contains(p.ImportPath, "/internal/") {
			continue
		}
		if _, ok := outside[p.ImportPath]; !ok && !slices.Contains(stdlibOnly, p.ImportPath) {
			t.Errorf("subpackage %s is neither declared stdlib-only nor declared as wrapping an outside dependency", p.ImportPath)
		}
	}
	for _, pkg := range stdlibOnly {
		for _, d := range list(append([]string{"-deps"}, pkg)...) {
			if d.Standard || d.ImportPath == pkg {
				continue
			}
			if !slices.Contains(stdlibOnly, d.ImportPath) {
				t.Errorf("%s is declared stdlib-only but depends on %s", pkg, d.ImportPath)
			}
		}
	}
}

// TestOutsideDependenciesHaveOneHome holds the rule for the rest of the
// module: each outside dependency is imported by the packages that own it
// and by no other, so that replacing a library touches one place (cmd/coid,
// which wires everything, imports none). A new dependency is declared here
// with its home.
func TestOutsideDependenciesHaveOneHome(t *testing.T) {
	const module = "github.com/coid-project/coid"
	homes := map[string][]string{ // module path prefix -> packages that may import it
		"go.etcd.io/bbolt":                     {"/custody/boltstore"},
		"github.com/jackc/pgx/":                {"/custody/pgstore", "/custody/pgstore/pgtest"},
		"golang.org/x/crypto/":                 {"/custody/passwd"},
		"golang.org/x/text/":                   {"/custody/phitext"},
		"golang.org/x/mod/":                    {"/custody/verifiable", "/custody/verifiable/witness/witnesstest"},
		"github.com/transparency-dev/formats":  {"/custody/verifiable"},
		"filippo.io/torchwood":                 {"/custody/verifiable/witness/witnesstest"},
		"github.com/mtibben/confusables":       {"/custody/phitext"},
		"github.com/labstack/echo/":            {"/api", "/api/web"},
		"codeberg.org/go-pdf/fpdf":             {"/labels", "/labels/report", "/labels/auditreport"},
		"github.com/skip2/go-qrcode":           {"/labels"},
		"github.com/boombuler/barcode":         {"/labels"},
		"github.com/eclipse/paho.mqtt.golang":  {"/sensors"},
		"github.com/mochi-mqtt/server/":        {"/sensors"},
		"golang.org/x/net/":                    {"/sensors"},
		"github.com/samply/":                   {"/custody/fhir"},
		"github.com/prometheus/client_golang/": {"/api/metrics"},
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH:", err)
	}
	cmd := exec.Command(goBin, "list", "-e", "-json", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	seen := 0
	for {
		var p goPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list: decode: %v", err)
		}
		seen++
		pkg := strings.TrimPrefix(p.ImportPath, module)
		for _, imp := range p.Imports {
			if !strings.Contains(strings.Split(imp, "/")[0], ".") || strings.HasPrefix(imp, module) {
				continue // standard library or this module
			}
			declared := false
			for prefix, allowed := range homes {
				if imp == strings.TrimSuffix(prefix, "/") || strings.HasPrefix(imp, prefix) ||
					strings.HasPrefix(imp, prefix+"/") {
					declared = true
					if !slices.Contains(allowed, pkg) {
						t.Errorf("%s imports %s, whose home is %v", p.ImportPath, imp, allowed)
					}
				}
			}
			if !declared {
				t.Errorf("%s imports %s, an outside dependency not declared with its home here", p.ImportPath, imp)
			}
		}
	}
	if seen < 10 {
		t.Fatalf("go list found %d packages: the test is not reading the module", seen)
	}
}

// goPackage is the part of go list -json output the import rules read.
type goPackage struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Error      *struct{ Err string }
}
