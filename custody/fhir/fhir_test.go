package fhir_test

import (
	"errors"
	"testing"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/fhir"
)

// TestProvenanceID: a Provenance id names the chain and the record's
// position, and only that form is read back.
func TestProvenanceID(t *testing.T) {
	const coi = custody.COI("CHA999926000001")
	if got := fhir.ProvenanceID(coi, 12); got != "CHA999926000001-12" {
		t.Fatalf("ProvenanceID = %q", got)
	}
	for _, tc := range []struct {
		id  string
		seq uint64 // 0: refused
	}{
		{"CHA999926000001-12", 12},
		{"CHA999926000001-1", 1},
		{"CHA999926000001-0", 0},
		{"CHA999926000001-012", 0},
		{"CHA999926000001-+1", 0},
		{"CHA999926000001-", 0},
		{"CHA999926000001", 0},
		{"CHA999926000001K-1", 0}, // the check character is not part of an id
		{"cha999926000001-1", 0},
		{"CHA999926000001-APH-01", 0},
		{"", 0},
	} {
		gotCOI, seq, err := fhir.ParseProvenanceID(tc.id)
		switch {
		case tc.seq == 0 && !errors.Is(err, custody.ErrInvalid):
			t.Errorf("%q: %s %d %v, want ErrInvalid", tc.id, gotCOI, seq, err)
		case tc.seq != 0 && (err != nil || gotCOI != coi || seq != tc.seq):
			t.Errorf("%q: %s %d %v, want %s %d", tc.id, gotCOI, seq, err, coi, tc.seq)
		}
	}
}

// TestReadNeedsAChain: there is nothing to map without records.
func TestReadNeedsAChain(t *testing.T) {
	for _, in := range []*fhir.Input{nil, {}, {Chain: &custody.Chain{COI: "CHA999926000001"}}} {
		if _, err := fhir.Read(in); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("Read(%+v) = %v, want ErrInvalid", in, err)
		}
	}
}

// TestOutcomeCodes: each HTTP status an error answers with has its FHIR
// issue type.
func TestOutcomeCodes(t *testing.T) {
	for status, want := range map[int]string{400: "invalid", 401: "login", 403: "forbidden", 404: "not-found",
		409: "conflict", 413: "too-costly", 429: "throttled", 500: "exception", 503: "transient"} {
		o := fhir.Outcome(status, "why")
		if len(o.Issue) != 1 || o.Issue[0].Code.Code() != want || o.Issue[0].Severity.Code() != "error" || *o.Issue[0].Diagnostics != "why" {
			t.Errorf("Outcome(%d) = %+v, want issue code %s", status, o, want)
		}
	}
}
