package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
	"github.com/coid-project/coid/custody/verifiable/witness/witnesstest"
	"github.com/coid-project/coid/labels/report"
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

// TestReportsCarryTheWitnessedCheckpoint: with a witness configured, a
// custody report carries the latest checkpoint the quorum cosigned, with
// the cosignature, and says so; coid audit --witness-key --quorum checks
// it. A chain with records newer than any witnessed checkpoint gets the
// operator's checkpoint alone, and the report says that instead. What
// was last seen of the witness survives a restart.
func TestReportsCarryTheWitnessedCheckpoint(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	coordTok := addUser(t, dir, "coord", custody.RoleCoordinator)
	qaTok := addUser(t, dir, "qa1", custody.RoleQA)
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
	enroll := func(mrn string) string {
		t.Helper()
		code, m := coord.do("POST", "/chains", map[string]any{
			"patient": map[string]any{"name": "Maria Example", "birth_date": "1961-04-30", "mrn": mrn},
			"product": "Autologous anti-CD19 CAR-T", "sites": map[string]any{"collection": "Metro Apheresis", "manufacturing": "CellWorks NJ", "treatment": "Metro BMT"}})
		if code != 201 {
			t.Fatalf("enroll: %d %v", code, m)
		}
		return m["coi"].(string)
	}
	witnessState := func() map[string]any {
		t.Helper()
		_, m := coord.do("GET", "/proofs/witnesses", nil)
		list, _ := m["witnesses"].([]any)
		if len(list) != 1 {
			t.Fatalf("witnesses: %v", m)
		}
		return list[0].(map[string]any)
	}
	reportOf := func(coi string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.url+"/api/v1/chains/"+coi+"/report.pdf", nil)
		req.Header.Set("Authorization", "Bearer "+qaTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("report: %d %s", resp.StatusCode, b)
		}
		p := filepath.Join(t.TempDir(), "report.pdf")
		writeFile(t, p, b)
		return p
	}
	audit := func(pdf string, args ...string) (string, int) {
		t.Helper()
		out, stderr, exit, err := runCmd(t, nil, append(append([]string{"audit", "--key", logKey}, args...), pdf)...)
		if err != nil {
			out += err.Error()
		}
		return out + stderr, exit
	}
	pdfText := func(pdf string) string {
		t.Helper()
		bin, err := exec.LookPath("pdftotext")
		if err != nil {
			t.Skip("pdftotext (poppler) is not installed")
		}
		out, err := exec.Command(bin, "-layout", pdf, "-").Output()
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(strings.Fields(string(out)), " ")
	}
	withWitness := []string{"--witness-key", w.VerifierKey(), "--quorum", "1"}

	first := enroll("MRN-1")
	var cosigned float64
	for deadline := time.Now().Add(60 * time.Second); cosigned < 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no cosignature (hang); witness requests: %q", w.Requests())
		}
		cosigned, _ = witnessState()["cosigned_size"].(float64)
	}
	pdf := reportOf(first)
	if out, exit := audit(pdf, withWitness...); exit != 0 || !strings.Contains(out, "cosigned by witness witness.example/e2e") {
		t.Fatalf("audit of the witnessed report: exit %d\n%s", exit, out)
	}
	if txt := pdfText(pdf); !strings.Contains(txt, "Proof witnesses cosigned by witness.example/e2e (quorum 1 reached)") {
		t.Fatalf("the verification block does not name the witness:\n%s", txt)
	}
	// Every byte of the cosignature flipped fails the audit with the
	// witness's key and quorum.
	raw, _ := os.ReadFile(pdf)
	r, err := report.ReadPDF(raw)
	if err != nil || len(r.Files) != 1 {
		t.Fatalf("read back: %v", err)
	}
	bundle := r.Files[0]
	wkey, err := verifiable.ParseCosignerKey(w.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	policy := verifiable.WitnessPolicy{Keys: []verifiable.CosignerKey{wkey}, Quorum: 1}
	if _, err := auditData(bundle, []string{logKey}, policy); err != nil {
		t.Fatal(err)
	}
	line := []byte("\u2014 witness.example/e2e ")
	at := bytes.Index(bundle, line)
	end := at + bytes.Index(bundle[at:], []byte(`\n`))
	if at < 0 || end < at+len(line)+10 {
		t.Fatalf("no cosignature line in the bundle:\n%s", bundle)
	}
	for i := at; i < end; i++ {
		bad := bytes.Clone(bundle)
		bad[i] ^= 0x01
		if _, err := auditData(bad, []string{logKey}, policy); err == nil || exitCode(err) != 1 {
			t.Fatalf("cosignature byte %d (%q) flipped: %v", i-at, bundle[i], err)
		}
	}

	// The witness refuses from now on: a new chain's records are in no
	// witnessed checkpoint.
	w.Set(witnesstest.Refuse, 0)
	second := enroll("MRN-2")
	for deadline := time.Now().Add(60 * time.Second); witnessState()["outcome"] != "refused"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the witness's refusal was not seen (hang): %v", witnessState())
		}
	}
	pdf = reportOf(second)
	if out, exit := audit(pdf); exit != 0 || strings.Contains(out, "witness.example/e2e") {
		t.Fatalf("audit of the report without a witnessed checkpoint: exit %d\n%s", exit, out)
	}
	if out, exit := audit(pdf, withWitness...); exit != 1 || !strings.Contains(out, "0 of the 1 witness keys given cosigned") {
		t.Fatalf("audit with the witness's quorum of the operator's checkpoint: exit %d\n%s", exit, out)
	}
	if txt := pdfText(pdf); !strings.Contains(txt, "Proof witnesses none yet: no checkpoint holding these records has reached the witness quorum (1)") {
		t.Fatalf("the verification block does not say the checkpoint is not witnessed:\n%s", txt)
	}

	// A restart reports the witness as it was last seen.
	before := witnessState()
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	srv = startServer(t, dir, env...)
	coord = &client{t, srv.url + "/api/v1", coordTok}
	after := witnessState()
	for _, k := range []string{"cosigned_size", "outcome", "error"} {
		if after[k] != before[k] || before[k] == nil {
			t.Fatalf("after a restart the witness's %s is %v, before %v", k, after[k], before[k])
		}
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
}
