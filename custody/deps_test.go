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
	stdlibOnly := []string{core, core + "/coldchain", core + "/epcis", core + "/storetest"}
	// outside lists the subpackages that each wrap an outside dependency.
	outside := map[string]string{
		core + "/boltstore": "the bbolt store",
		core + "/passwd":    "argon2id from golang.org/x/crypto",
		core + "/phitext":   "Unicode normalisation and confusable folding",
	}
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

// goPackage is the part of go list -json output the import rule reads.
type goPackage struct {
	ImportPath string
	Standard   bool
	Error      *struct{ Err string }
}
