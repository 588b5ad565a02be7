package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
	"github.com/coid-project/coid/custody/verifiable/witness"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// withVerifiableLog rebuilds e's server with a verifiable log over its
// store, keys in a fresh directory.
func withVerifiableLog(t *testing.T, e *env) *verifiable.Log {
	t.Helper()
	keys, err := verifiable.OpenKeys(t.TempDir(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	l := verifiable.NewLog(e.store, keys, func() time.Time { return fixedNow }, nil)
	srv, err := api.New(api.Config{Service: e.svc, Logger: slog.New(slog.DiscardHandler), Version: "test", Log: l})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	return l
}

type signedCheckpoint struct {
	Checkpoint  string `json:"checkpoint"`
	Origin      string `json:"origin"`
	Size        int64  `json:"size"`
	Root        []byte `json:"root"`
	VerifierKey string `json:"verifier_key"`
}

func b64s(t *testing.T, hs []string) [][]byte {
	t.Helper()
	out := make([][]byte, len(hs))
	for i, h := range hs {
		b, err := base64.StdEncoding.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("%s: %v", r, err)
	}
	return v
}

// TestProofRoutes proves every record of a ledger built through the API
// against the signed checkpoint, with an RFC 6962 library independent of
// the server's, and reads the same tree through its tiles.
func TestProofRoutes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	l := withVerifiableLog(t, e)
	coiA, coiB := e.enroll(t, patientA), e.enroll(t, patientB)
	e.advance(t, coiA, patientA.MRN, 4)
	e.advance(t, coiB, patientB.MRN, 2)
	n := int64(e.ledgerRecords(t))

	r := e.do(t, http.MethodPost, "/api/v1/proofs/checkpoint", nurse1, nil)
	if r.Code != http.StatusCreated {
		t.Fatal(r)
	}
	cp := decode[signedCheckpoint](t, e.do(t, http.MethodGet, "/api/v1/proofs/checkpoint", nurse1, nil))
	c, err := verifiable.Open([]byte(cp.Checkpoint), l.Keys().Verifier())
	if err != nil || c.Size != n || cp.Size != n || !bytes.Equal(c.Root[:], cp.Root) || cp.VerifierKey != l.Keys().Verifier() || cp.Origin != l.Keys().Origin() {
		t.Fatalf("checkpoint %+v (%v), ledger of %d", cp, err, n)
	}
	h := rfc6962.DefaultHasher
	for seq := int64(1); seq <= n; seq++ {
		rec, err := e.store.Record(ctx, uint64(seq))
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []int64{seq, n} {
			r := e.do(t, http.MethodGet, fmt.Sprintf("/api/v1/proofs/inclusion?seq=%d&size=%d", seq, size), nurse1, nil)
			p := decode[struct {
				Seq      int64    `json:"seq"`
				TreeSize int64    `json:"tree_size"`
				Root     []byte   `json:"root"`
				Proof    []string `json:"proof"`
			}](t, r)
			if r.Code != http.StatusOK || p.Seq != seq || p.TreeSize != size {
				t.Fatalf("inclusion %d@%d: %s", seq, size, r)
			}
			root := cp.Root
			if size != n {
				root = p.Root // checked by the consistency proof below
			}
			if err := proof.VerifyInclusion(h, uint64(seq-1), uint64(size), h.HashLeaf(rec.Canonical(nil)), b64s(t, p.Proof), root); err != nil {
				t.Fatalf("inclusion %d@%d: %v", seq, size, err)
			}
			if size == n {
				continue
			}
			cr := e.do(t, http.MethodGet, fmt.Sprintf("/api/v1/proofs/consistency?from=%d", size), nurse1, nil)
			cons := decode[struct {
				To    int64    `json:"to"`
				Proof []string `json:"proof"`
			}](t, cr)
			if cr.Code != http.StatusOK || cons.To != n {
				t.Fatalf("consistency %d..: %s", size, cr)
			}
			if err := proof.VerifyConsistency(h, uint64(size), uint64(n), b64s(t, cons.Proof), p.Root, cp.Root); err != nil {
				t.Fatalf("consistency %d..%d: %v", size, n, err)
			}
		}
	}

	// The same log through tlog-tiles: the checkpoint, the leaf hashes
	// and the entries, in partial tiles that may be cached only briefly.
	r = e.do(t, http.MethodGet, "/api/v1/log/checkpoint", nurse1, nil)
	if r.Code != http.StatusOK || string(r.Body) != cp.Checkpoint || r.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("log checkpoint: %s", r)
	}
	tiles := e.do(t, http.MethodGet, fmt.Sprintf("/api/v1/log/tile/0/000.p/%d", n), nurse1, nil)
	entries := e.do(t, http.MethodGet, fmt.Sprintf("/api/v1/log/tile/entries/000.p/%d", n), nurse1, nil)
	for _, r := range []response{tiles, entries} {
		if r.Code != http.StatusOK || r.Header.Get("Cache-Control") != "private, max-age=5" {
			t.Fatalf("tile: %d %v", r.Code, r.Header)
		}
	}
	if len(tiles.Body) != int(n)*32 {
		t.Fatalf("hash tile of %d bytes for %d records", len(tiles.Body), n)
	}
	data := entries.Body
	for seq := int64(1); seq <= n; seq++ {
		rec, _ := e.store.Record(ctx, uint64(seq))
		enc := rec.Canonical(nil)
		k := int(binary.BigEndian.Uint16(data))
		if !bytes.Equal(data[2:2+k], enc) || !bytes.Equal(tiles.Body[(seq-1)*32:seq*32], h.HashLeaf(enc)) {
			t.Fatalf("record %d: the tiles do not hold it", seq)
		}
		data = data[2+k:]
	}
	// No patient identifier is in what the log serves.
	for _, p := range []patient{patientA, patientB} {
		for _, s := range []string{p.Name, p.MRN, p.BirthDate} {
			if bytes.Contains(entries.Body, []byte(s)) {
				t.Fatalf("the entry bundle holds %q", s)
			}
		}
	}

	for _, c := range []struct {
		target string
		code   int
	}{
		{"/api/v1/proofs/inclusion?seq=0", 400},
		{"/api/v1/proofs/inclusion", 400},
		{"/api/v1/proofs/inclusion?seq=x", 400},
		{fmt.Sprintf("/api/v1/proofs/inclusion?seq=%d", n+1), 404},
		{fmt.Sprintf("/api/v1/proofs/inclusion?seq=1&size=%d", n+1), 404},
		{"/api/v1/proofs/consistency?from=5&to=4", 400},
		{"/api/v1/proofs/consistency", 400},
		{fmt.Sprintf("/api/v1/proofs/consistency?from=1&to=%d", n+1), 404},
		{"/api/v1/log/tile/0/000", 404},
		{"/api/v1/log/tile/entries/000", 404},
		{fmt.Sprintf("/api/v1/log/tile/0/000.p/%d", n+1), 404},
		{"/api/v1/log/tile/0/../../checkpoint", 404},
	} {
		if r := e.do(t, http.MethodGet, c.target, nurse1, nil); r.Code != c.code {
			t.Errorf("GET %s: %s, want %d", c.target, r, c.code)
		}
	}
	for _, target := range []string{"/api/v1/proofs/checkpoint", "/api/v1/log/checkpoint", "/api/v1/log/tile/entries/000.p/1", "/api/v1/proofs/inclusion?seq=1"} {
		if r := e.do(t, http.MethodGet, target, "", nil); r.Code != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: %s", target, r)
		}
	}
}

// TestProofRoutesWithoutALog: a server given no log answers 404.
func TestProofRoutesWithoutALog(t *testing.T) {
	e := newEnv(t)
	for _, target := range []string{"/api/v1/proofs/checkpoint", "/api/v1/log/checkpoint", "/api/v1/log/tile/0/000.p/1"} {
		if r := e.do(t, http.MethodGet, target, nurse1, nil); r.Code != http.StatusNotFound {
			t.Errorf("GET %s: %s, want 404", target, r)
		}
	}
}

// TestWitnessRoutes: the cosignatures kept of the latest checkpoint are
// served with it (as further signature lines, the log's own still
// verifying), the witnessed checkpoints are paged with their quorum, and
// the witnesses' states are listed; a server with no witness answers 404.
func TestWitnessRoutes(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	for _, target := range []string{"/api/v1/proofs/witnesses", "/api/v1/proofs/witnessed"} {
		if r := e.do(t, http.MethodGet, target, nurse1, nil); r.Code != http.StatusNotFound {
			t.Errorf("GET %s without witnesses: %s, want 404", target, r)
		}
	}
	keys, err := verifiable.OpenKeys(t.TempDir(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	l := verifiable.NewLog(e.store, keys, func() time.Time { return fixedNow }, nil)
	var ws []witness.Witness
	for _, name := range []string{"w.example/a", "w.example/b"} {
		_, vkey, err := note.GenerateKey(rand.Reader, name)
		if err != nil {
			t.Fatal(err)
		}
		w, err := witness.Parse(name + "=https://" + name + "+" + vkey)
		if err != nil {
			t.Fatal(err)
		}
		ws = append(ws, w)
	}
	sub, err := witness.New(witness.Config{Witnesses: ws, Quorum: 2, Log: l, Store: e.store, Now: func() time.Time { return fixedNow },
		After: func(time.Duration) <-chan time.Time { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Service: e.svc, Logger: slog.New(slog.DiscardHandler), Version: "test", Log: l, Witnesses: sub})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	coi := e.enroll(t, patientA)
	e.advance(t, coi, patientA.MRN, 2)
	signed, cp, err := l.Sign(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]string{"w.example/a": "— w.example/a AAAAAQAAAAAAAAAA\n", "w.example/b": "— w.example/b AAAAAgAAAAAAAAAA\n"}
	for _, size := range []int64{1, 2, cp.Size} {
		for _, w := range []string{"w.example/a", "w.example/b"} {
			if size == 2 && w == "w.example/b" {
				continue // size 2 falls short of the quorum
			}
			if err := e.store.AddCosignature(ctx, custody.Cosignature{Size: size, Witness: w, Line: lines[w], Time: fixedNow}); err != nil {
				t.Fatal(err)
			}
		}
	}
	r := e.do(t, http.MethodGet, "/api/v1/log/checkpoint", nurse1, nil)
	if want := string(signed) + lines["w.example/a"] + lines["w.example/b"]; r.Code != http.StatusOK || string(r.Body) != want {
		t.Fatalf("GET /log/checkpoint: %s\nwant\n%s", r, want)
	}
	if _, err := verifiable.Open(r.Body, keys.Verifier()); err != nil {
		t.Fatalf("the served checkpoint no longer verifies with the log's key: %v", err)
	}
	got := decode[signedCheckpoint](t, e.do(t, http.MethodGet, "/api/v1/proofs/checkpoint", nurse1, nil))
	if got.Checkpoint != string(r.Body) {
		t.Fatalf("proofs/checkpoint: %q", got.Checkpoint)
	}
	type page struct {
		Quorum      int                 `json:"quorum"`
		Checkpoints []witness.Witnessed `json:"checkpoints"`
		Next        int64               `json:"next"`
	}
	var all []witness.Witnessed
	for target := "/api/v1/proofs/witnessed?limit=2"; ; {
		r := e.do(t, http.MethodGet, target, nurse1, nil)
		if r.Code != http.StatusOK {
			t.Fatal(r)
		}
		p := decode[page](t, r)
		all = append(all, p.Checkpoints...)
		if p.Next == 0 {
			break
		}
		target = fmt.Sprintf("/api/v1/proofs/witnessed?limit=2&after=%d", p.Next)
	}
	var quorum []int64
	for _, c := range all {
		if c.Quorum {
			quorum = append(quorum, c.Size)
		}
	}
	if len(all) != 3 || fmt.Sprint(quorum) != fmt.Sprint([]int64{1, cp.Size}) {
		t.Fatalf("witnessed %+v", all)
	}
	for _, bad := range []string{"?limit=0", "?limit=501", "?after=x", "?after=0"} {
		if r := e.do(t, http.MethodGet, "/api/v1/proofs/witnessed"+bad, nurse1, nil); r.Code != http.StatusBadRequest {
			t.Errorf("witnessed%s: %s, want 400", bad, r)
		}
	}
	r = e.do(t, http.MethodGet, "/api/v1/proofs/witnesses", nurse1, nil)
	if r.Code != http.StatusOK || !bytes.Contains(r.Body, []byte(`"name":"w.example/b"`)) || !bytes.Contains(r.Body, []byte(`"quorum":2`)) {
		t.Fatal(r)
	}
	if r := e.do(t, http.MethodGet, "/api/v1/proofs/witnesses", "", nil); r.Code != http.StatusUnauthorized {
		t.Errorf("without a token: %s", r)
	}
}
