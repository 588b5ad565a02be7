package custody_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// vector pins encoding version 1: a record's fields, its canonical bytes
// and its SHA-256. Other implementations can check themselves against
// testdata/ledger/vectors.json.
type vector struct {
	Name      string          `json:"name"`
	Record    json.RawMessage `json:"record"`
	Canonical string          `json:"canonical"`
	SHA256    string          `json:"sha256"`
}

func vectorRecords() []struct {
	name string
	rec  custody.Record
} {
	t := time.Date(2026, 11, 22, 13, 0, 0, 123456000, time.UTC)
	var h1, h2 custody.Hash
	for i := range h1 {
		h1[i], h2[i] = byte(i), byte(255-i)
	}
	sigs := []custody.Signature{
		{User: "nurse1", Name: "Zoë O'Brien-Łukasik", Role: custody.RoleNurse, Meaning: custody.MeaningPerformed, Time: custody.FormatTime(t), Method: "password"},
		{User: "nurse2", Name: "Nurse \"Two\" \\ \t", Role: custody.RoleNurse, Meaning: custody.MeaningVerified, Time: custody.FormatTime(t), Method: "password"},
	}
	return []struct {
		name string
		rec  custody.Record
	}{
		{"first enroll", custody.Record{V: 1, Seq: 1, Chain: "CHA999926000001", ChainSeq: 1, Step: custody.StepEnroll, Time: t,
			Site: "Metro Apheresis", SubmittedBy: "coord",
			Data:       json.RawMessage(`{"facility":"A9999","patient_commitment":"00ff","product":"CAR-T","sites":{"collection":"a","manufacturing":"b","treatment":"c"}}`),
			Signatures: []custody.Signature{{User: "coord", Name: "C", Role: custody.RoleCoordinator, Meaning: custody.MeaningAuthored, Time: custody.FormatTime(t), Method: "token"}}}},
		{"collect with unicode and escapes", custody.Record{V: 1, Seq: 7, Prev: h1, Chain: "CHA999926000001", ChainSeq: 2, ChainPrev: h2,
			Step: custody.StepCollect, Time: t, Site: "Zürich €", SubmittedBy: "nurse1",
			Data: json.RawMessage(`{"bags":2,"din":"A999926123456","ended_at":"2026-11-22T12:00:00Z","started_at":"2026-11-22T09:00:00Z","volume_ml":212.5}`), Signatures: sigs}},
		{"system record without site", custody.Record{V: 1, Seq: 1000000, Prev: h2, Chain: "CHA999926999999", ChainSeq: 31, ChainPrev: h1,
			Step: custody.StepExcursion, Time: t, SubmittedBy: "system",
			Data:       json.RawMessage(`{"big":1e+21,"kind":"temperature","small":1e-7,"worst_c":-120.25}`),
			Signatures: []custody.Signature{custody.SystemSignature(t)}}},
	}
}

func TestCanonicalEncodingVectors(t *testing.T) {
	path := "../testdata/ledger/vectors.json"
	var got []vector
	for _, v := range vectorRecords() {
		canon := v.rec.Canonical(nil)
		// The hand-written encoder must agree with generic RFC 8785
		// canonicalization of the record's JSON without its hash.
		generic, err := json.Marshal(v.rec)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.Unmarshal(generic, &m)
		delete(m, "hash")
		generic, _ = json.Marshal(m)
		jcs, err := custody.Canonicalize(generic)
		if err != nil {
			t.Fatal(err)
		}
		if string(jcs) != string(canon) {
			t.Fatalf("%s: Canonical differs from RFC 8785 of the record:\n%s\n%s", v.name, canon, jcs)
		}
		sum := sha256.Sum256(canon)
		rj, _ := json.Marshal(v.rec)
		got = append(got, vector{Name: v.name, Record: rj, Canonical: string(canon), SHA256: hex.EncodeToString(sum[:])})
	}
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	var want []vector
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(got) {
		t.Fatalf("%d vectors on file, %d computed", len(want), len(got))
	}
	for i := range want {
		if want[i].Canonical != got[i].Canonical || want[i].SHA256 != got[i].SHA256 {
			t.Errorf("vector %q changed: the record encoding is pinned (encoding version %d); a change is a compatibility break\nwant %s %s\ngot  %s %s",
				want[i].Name, custody.EncodingVersion, want[i].SHA256, want[i].Canonical, got[i].SHA256, got[i].Canonical)
		}
		// The stored canonical bytes decode back to the same record.
		h, _ := custody.ParseHash(want[i].SHA256)
		r, err := custody.DecodeRecord([]byte(want[i].Canonical), h)
		if err != nil {
			t.Fatalf("%s: %v", want[i].Name, err)
		}
		if string(r.Canonical(nil)) != want[i].Canonical {
			t.Fatalf("%s: decode/encode round trip differs", want[i].Name)
		}
	}
}

// FuzzRecordRoundTrip builds records from fuzzed fields: sealing then
// decoding must give back the same record, and the fast link reader must
// agree with the full decoder.
func FuzzRecordRoundTrip(f *testing.F) {
	f.Add(uint64(1), uint64(1), "note", "Metro", "Ana Nurse", []byte(`{"text":"hello"}`), int64(0))
	f.Add(uint64(99), uint64(3), "collect", "", "Zoë \"Z\" \\", []byte(`{"a":[1,2,{"b":null}],"c":"\u2028"}`), int64(1700000000123456789))
	f.Fuzz(func(t *testing.T, seq, chainSeq uint64, step, site, name string, data []byte, nanos int64) {
		canonData, err := custody.Canonicalize(data)
		if err != nil || len(canonData) == 0 || canonData[0] != '{' {
			return
		}
		tm := time.Unix(0, nanos).UTC()
		r := custody.Record{V: 1, Seq: seq, Chain: "CHA999926000001", ChainSeq: chainSeq, Step: custody.Step(step), Time: tm,
			Site: site, SubmittedBy: "u", Data: canonData,
			Signatures: []custody.Signature{{User: "u", Name: name, Role: custody.RoleNurse, Meaning: custody.MeaningPerformed, Time: custody.FormatTime(tm), Method: "password"}}}
		r.Prev[0], r.ChainPrev[31] = byte(seq), byte(chainSeq)
		body := r.Seal(nil)
		if !json.Valid(body) {
			t.Fatalf("sealed record is not JSON: %s", body)
		}
		got, err := custody.DecodeRecord(body, r.Hash)
		if err != nil {
			// Only invalid UTF-8, which the encoder replaces, may change a field.
			return
		}
		if string(got.Canonical(nil)) != string(body) {
			t.Fatalf("round trip changed the encoding:\n%s\n%s", body, got.Canonical(nil))
		}
		l, err := custody.ReadLinks(body, r.Hash)
		if err != nil {
			t.Fatalf("ReadLinks: %v", err)
		}
		want := custody.Links{Seq: got.Seq, Prev: got.Prev, Chain: got.Chain, ChainSeq: got.ChainSeq, ChainPrev: got.ChainPrev, Hash: r.Hash}
		if !reflect.DeepEqual(l, want) {
			t.Fatalf("ReadLinks %+v, decoder %+v", l, want)
		}
		// Any change to the bytes is caught by the hash.
		mod := append([]byte(nil), body...)
		mod[len(mod)/2] ^= 1
		if _, err := custody.DecodeRecord(mod, r.Hash); !errors.Is(err, custody.ErrChainBroken) {
			t.Fatalf("altered record decoded: %v", err)
		}
	})
}

// FuzzDecodeRecord feeds arbitrary bytes to the record decoders: they must
// refuse with ErrChainBroken or return a record that re-encodes stably.
func FuzzDecodeRecord(f *testing.F) {
	for _, v := range vectorRecords() {
		f.Add(v.rec.Canonical(nil))
	}
	f.Add([]byte(`{"chain":"x"}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h := custody.Hash(sha256.Sum256(b))
		r, err := custody.DecodeRecord(b, h)
		_, lerr := custody.ReadLinks(b, h)
		if err != nil && !errors.Is(err, custody.ErrChainBroken) {
			t.Fatalf("decode error is not ErrChainBroken: %v", err)
		}
		if lerr != nil && !errors.Is(lerr, custody.ErrChainBroken) {
			t.Fatalf("ReadLinks error is not ErrChainBroken: %v", lerr)
		}
		var wrong custody.Hash
		if _, err := custody.DecodeRecord(b, wrong); !errors.Is(err, custody.ErrChainBroken) && h != wrong {
			t.Fatalf("decoded against the wrong hash: %v", err)
		}
		if err != nil || len(r.Data) == 0 || !json.Valid(r.Data) {
			return
		}
		if c, cerr := custody.Canonicalize(r.Data); cerr != nil || string(c) != string(r.Data) {
			return // only canonical data re-encodes byte for byte
		}
		once := r.Canonical(nil)
		r2, err := custody.DecodeRecord(once, sha256.Sum256(once))
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v\n%s", err, once)
		}
		if twice := r2.Canonical(nil); string(twice) != string(once) {
			t.Fatalf("encoding not stable:\n%s\n%s", once, twice)
		}
	})
}

// TestPresealMatchesSeal checks the path the store takes (Preseal in the
// caller, links set and Seal in the writer) against Record.Seal for every
// vector, and that Len bounds the encoding so the writer never regrows it.
func TestPresealMatchesSeal(t *testing.T) {
	for _, v := range vectorRecords() {
		t.Run(v.name, func(t *testing.T) {
			unlinked := v.rec
			unlinked.Seq, unlinked.Prev, unlinked.ChainSeq, unlinked.ChainPrev = 0, custody.Hash{}, 0, custody.Hash{}
			p := unlinked.Preseal()
			for _, seq := range []uint64{v.rec.Seq, 1<<64 - 1} {
				want, got := v.rec, unlinked
				want.Seq, got.Seq = seq, seq
				got.Prev, got.ChainSeq, got.ChainPrev = v.rec.Prev, v.rec.ChainSeq, v.rec.ChainPrev
				wantBytes := want.Seal(nil)
				gotBytes := p.Seal(&got, nil)
				if string(gotBytes) != string(wantBytes) || got.Hash != want.Hash {
					t.Fatalf("presealed:\n%s\nsealed:\n%s", gotBytes, wantBytes)
				}
				if len(gotBytes) > p.Len() {
					t.Fatalf("Len %d < encoding %d", p.Len(), len(gotBytes))
				}
			}
		})
	}
}
