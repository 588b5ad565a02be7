package epcis_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/epcis")

// hashRE matches a SHA-256 in hex: record hashes and the chain head, which
// differ between runs (signatures are salted).
var hashRE = regexp.MustCompile(`[0-9a-f]{64}`)

// normalise names each hash by its order of first appearance, so that the
// golden file shows which identifiers are the same record's.
func normalise(b []byte) []byte {
	seen := map[string]int{}
	return hashRE.ReplaceAllFunc(b, func(h []byte) []byte {
		n, ok := seen[string(h)]
		if !ok {
			n = len(seen) + 1
			seen[string(h)] = n
		}
		return fmt.Appendf(nil, "HASH%02d", n)
	})
}

// TestGolden compares the full journey's document, hashes normalised,
// with testdata/epcis/full-journey.jsonld (go test -update rewrites it):
// a change of identifier, event or member shows in review.
func TestGolden(t *testing.T) {
	e := newEnv(t)
	got := normalise(export(t, e, fullJourney(e)))
	path := filepath.Join("..", "..", "testdata", "epcis", "full-journey.jsonld")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("export differs from %s (go test -update rewrites it; check the diff):\n%s", path, got)
	}
}
