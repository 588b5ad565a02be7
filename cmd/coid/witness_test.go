package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable/witness/witnesstest"
	"golang.org/x/mod/sumdb/note"
)

// TestServeWithWitnesses: coid serve --witness submits its checkpoints to
// a tlog-witness that is not coid's code; the cosignature is served with
// the checkpoint (both signatures verify with outside verifiers), listed
// by `coid witnessed` as reaching the quorum, and kept across a restart.
func TestServeWithWitnesses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	coordTok := addUser(t, dir, "coord", custody.RoleCoordinator)
	logKey := strings.TrimSpace(keyCmd(t, dir, "show"))
	w, err := witnesstest.New("witness.example/e2e", logKey, 7)
	if err != nil {
		t.Fatal(err)
	}
	ws := httptest.NewServer(w)
	defer ws.Close()
	defer w.Close()
	spec := "witness.example/e2e=" + ws.URL + witnesstest.Prefix + "+" + w.VerifierKey()
	env := []string{"COID_CHECKPOINT_INTERVAL=100ms", "COID_WITNESSES=" + spec, "COID_WITNESS_QUORUM=1"}

	srv := startServer(t, dir, env...)
	coord := &client{t, srv.url + "/api/v1", coordTok}
	if code, m := coord.do("POST", "/chains", map[string]any{
		"patient": map[string]any{"name": "Maria Example", "birth_date": "1961-04-30", "mrn": "MRN-77123"},
		"product": "Autologous anti-CD19 CAR-T", "sites": map[string]any{"collection": "Metro Apheresis", "manufacturing": "CellWorks NJ", "treatment": "Metro BMT"}}); code != 201 {
		t.Fatalf("enroll: %d %v", code, m)
	}
	var cosigned float64
	for deadline := time.Now().Add(60 * time.Second); cosigned == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no cosignature (hang); witness requests: %q", w.Requests())
		}
		_, m := coord.do("GET", "/proofs/witnesses", nil)
		list, _ := m["witnesses"].([]any)
		if len(list) == 1 {
			cosigned, _ = list[0].(map[string]any)["cosigned_size"].(float64)
		}
	}
	logV, err := note.NewVerifier(logKey)
	if err != nil {
		t.Fatal(err)
	}
	checkServed := func(s *server) {
		t.Helper()
		cp := getCheckpoint(t, s, coordTok)
		n, err := note.Open(cp, note.VerifierList(logV, w.Signer().Verifier()))
		if err != nil || len(n.Sigs) != 2 {
			t.Fatalf("served checkpoint %q: %v, %d signatures verified; want the log's and the witness's", cp, err, len(n.Sigs))
		}
	}
	checkServed(srv)
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"witnessed", "--data", dir, "--quorum", "1"}, nil, strings.NewReader(""), &out, &errb); err != nil {
		t.Fatalf("witnessed: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "yes") || !strings.Contains(out.String(), "witness.example/e2e") {
		t.Fatalf("coid witnessed printed:\n%s", out.String())
	}
	// After a restart, without the witness configured, the kept
	// cosignature is still served with the checkpoint.
	srv = startServer(t, dir, "COID_CHECKPOINT_INTERVAL=100ms")
	checkServed(srv)
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	// A bad configuration is refused before anything starts.
	var errb2 bytes.Buffer
	if err := run(context.Background(), append(serveArgs(dir), "--witness", "witness.example/e2e="+ws.URL), nil,
		strings.NewReader(""), &bytes.Buffer{}, &errb2); err == nil || !strings.Contains(err.Error(), "--witness") {
		t.Fatalf("serve with a witness without a key: %v", err)
	}
}
