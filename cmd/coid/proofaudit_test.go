package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/custody/verifiable"
	"github.com/coid-project/coid/labels/report"
)

// ledgerHandle is a data directory opened in a test to grow its ledger
// and sign checkpoints, as a running service would.
type ledgerHandle struct {
	store *boltstore.Store
	svc   *custody.Service
	log   *verifiable.Log
}

func openLedger(t testing.TB, dir string) *ledgerHandle {
	t.Helper()
	store, err := boltstore.Open(dir, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	now := func() time.Time { return reportAt }
	lg := slog.New(slog.DiscardHandler)
	svc, err := custody.NewService(custody.Config{Store: store, Hasher: passwd.Fast(), Logger: lg, Now: now, FIN: "A9999",
		Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles())), Telemetry: custody.TelemetryConfig{Readings: store}})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := verifiable.LoadKeys(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &ledgerHandle{store: store, svc: svc, log: verifiable.NewLog(store, keys, now, lg)}
}

// grow enrolls n chains (a record each) named after tag.
func (h *ledgerHandle) grow(t *testing.T, tag string, n int) {
	t.Helper()
	for i := range n {
		if _, err := h.svc.Enroll(context.Background(), custody.User{ID: "coord", Name: "Printed coord", Role: custody.RoleCoordinator},
			custody.EnrollRequest{Patient: custody.PHI{Name: tag + " Patient", BirthDate: "1970-01-0" + string(rune('1'+i)), MRN: tag + "-" + string(rune('a'+i))},
				Product: "autologous anti-BCMA CAR-T", Sites: custody.Sites{Collection: "Mercy Apheresis", Manufacturing: "CellWorks Plant 2", Treatment: "Mercy BMT"}}); err != nil {
			t.Fatal(err)
		}
	}
}

// checkpoint signs a checkpoint of the ledger as it is and writes it to
// a file.
func (h *ledgerHandle) checkpoint(t *testing.T, path string) verifiable.Checkpoint {
	t.Helper()
	signed, c, err := h.log.Sign(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, signed)
	return c
}

// consistency writes the ledger's consistency proof between two sizes.
func (h *ledgerHandle) consistency(t *testing.T, path string, from, to int64) {
	t.Helper()
	p, err := h.log.Consistency(context.Background(), from, to)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(p)
	writeFile(t, path, b)
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

// auditReportFixture is the report fixture's ledger with a custody
// report written by the command, and the ledger's verifier key.
func auditReportFixture(t *testing.T) (f *reportFixture, key, pdf string) {
	t.Helper()
	f = newReportFixture(t)
	key, _, _, err := runCmd(t, nil, "key", "show", "--data", f.dir)
	if err != nil {
		t.Fatal(err)
	}
	pdf = filepath.Join(t.TempDir(), "report.pdf")
	if _, stderr, _, err := runCmd(t, nil, "report", "--data", f.dir, "--user", "qa1", "--at", reportAt.Format(time.RFC3339), "-o", pdf, string(f.coi)); err != nil {
		t.Fatalf("report: %v %s", err, stderr)
	}
	return f, strings.TrimSpace(key), pdf
}

// TestAuditReportEndToEnd: coid report writes a report offline, coid
// audit verifies it with the verifier key alone (and the bundle poppler's
// pdfdetach extracts, and the EPCIS export); another key, a report
// without a proof, or a bad key fail with the documented exit codes.
func TestAuditReportEndToEnd(t *testing.T) {
	f, key, pdf := auditReportFixture(t)
	out, stderr, exit, err := runCmd(t, nil, "audit", "--key", key, pdf)
	if err != nil || exit != 0 || !strings.HasPrefix(out, "OK: ") || !strings.Contains(out, verifiable.KeyID(key)) {
		t.Fatalf("audit: exit %d %v\n%s%s", exit, err, out, stderr)
	}
	// The EPCIS export carries the same proof.
	epcisFile := filepath.Join(t.TempDir(), "epcis.json")
	if _, stderr, _, err := runCmd(t, nil, "report", "--data", f.dir, "--format", "epcis", "--at", reportAt.Format(time.RFC3339), "-o", epcisFile, string(f.coi)); err != nil {
		t.Fatalf("report epcis: %v %s", err, stderr)
	}
	if out2, _, exit, err := runCmd(t, nil, "audit", "--key", key, epcisFile); exit != 0 || strings.Fields(out2)[1] != strings.Fields(out)[1] {
		t.Fatalf("audit of the EPCIS export: exit %d %v %s", exit, err, out2)
	}
	// The bundle, as poppler extracts it, verifies alone.
	if bin, err := exec.LookPath("pdfdetach"); err == nil {
		bundle := filepath.Join(t.TempDir(), "bundle.json")
		if b, err := exec.Command(bin, "-save", "1", "-o", bundle, pdf).CombinedOutput(); err != nil {
			t.Fatalf("pdfdetach: %v %s", err, b)
		}
		if _, _, exit, err := runCmd(t, nil, "audit", "--key", key, bundle); exit != 0 {
			t.Fatalf("audit of the extracted bundle: %v", err)
		}
	} else {
		skipUnlessCI(t, "pdfdetach (poppler-utils) is not installed")
	}
	other, err := verifiable.CreateKeys(t.TempDir(), strings.Split(key, "+")[0], rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, exit, err := runCmd(t, nil, "audit", "--key", other.Verifier(), pdf); exit != 1 || !strings.Contains(err.Error(), "checkpoint") {
		t.Errorf("another key of the same name: exit %d %v, want 1 naming the checkpoint", exit, err)
	}
	// A report without a proof (rendered as before proofs) fails, saying so.
	old := filepath.Join(t.TempDir(), "old.pdf")
	writeFile(t, old, f.apiPDFWithout(t))
	if _, _, exit, err := runCmd(t, nil, "audit", "--key", key, old); exit != 1 || !strings.Contains(err.Error(), "0 proof bundles") {
		t.Errorf("report without a proof: exit %d %v", exit, err)
	}
	for _, args := range [][]string{{pdf}, {"--key", "nonsense", pdf}, {"--key", key}, {"--key", key, pdf, pdf},
		{"--key", key, filepath.Join(t.TempDir(), "missing.pdf")}, {"--key", key, "--proof", pdf, pdf}} {
		if _, _, exit, err := runCmd(t, nil, append([]string{"audit"}, args...)...); exit != 2 {
			t.Errorf("audit %q: exit %d %v, want 2", args, exit, err)
		}
	}
}

// apiPDFWithout renders the fixture's chain report with no proof, as
// reports were before they carried one.
func (f *reportFixture) apiPDFWithout(t *testing.T) []byte {
	t.Helper()
	h := openLedger(t, f.dir)
	in, err := report.Build(context.Background(), report.ServiceSource{Service: h.svc}, f.coi, offlineOperator, reportAt)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := report.Write(&buf, in); err != nil {
		t.Fatal(err)
	}
	h.store.Close()
	return buf.Bytes()
}

// TestAuditFailsWithAnyFlippedByte flips every byte of the report's proof
// bundle (checkpoint, signature, key IDs, each record's bytes and proof):
// coid audit's check fails each time, naming the record when a record's
// bytes or proof changed; every byte of the attachment as stored in the
// PDF (every 7th byte) flipped fails too, or reads back the same bundle
// (a flip in the deflate stream's unused bits).
func TestAuditFailsWithAnyFlippedByte(t *testing.T) {
	_, key, pdfPath := auditReportFixture(t)
	pdf, _ := os.ReadFile(pdfPath)
	r, err := report.ReadPDF(pdf)
	if err != nil || len(r.Files) != 1 {
		t.Fatalf("read back: %v %d files", err, len(r.Files))
	}
	bundle := r.Files[0]
	keys := []string{key}
	if _, err := auditData(bundle, keys, verifiable.WitnessPolicy{}); err != nil {
		t.Fatal(err)
	}
	recordsAt := bytes.Index(bundle, []byte(`"records"`))
	for i := range bundle {
		bad := bytes.Clone(bundle)
		bad[i] ^= 0x01
		_, err := auditData(bad, keys, verifiable.WitnessPolicy{})
		if err == nil {
			t.Fatalf("bundle byte %d (%q) flipped: verified", i, bundle[i])
		}
		if exitCode(err) != 1 {
			t.Fatalf("bundle byte %d flipped: exit %d", i, exitCode(err))
		}
		if i > recordsAt+20 && bundle[i] != '"' && bundle[i] != ',' && bundle[i] != ':' && !strings.Contains(err.Error(), "at record ") &&
			!strings.Contains(err.Error(), "proof bundle") {
			t.Fatalf("bundle byte %d (%q) flipped: %v does not name the record", i, bundle[i], err)
		}
	}
	// The attachment's stored (compressed) bytes.
	at := bytes.Index(pdf, []byte("/Type /EmbeddedFile"))
	start := at + bytes.Index(pdf[at:], []byte("stream\n")) + len("stream\n")
	end := at + bytes.Index(pdf[at:], []byte("\nendstream"))
	for i := start; i < end; i += 7 { // every 7th: each read inflates the whole PDF
		bad := bytes.Clone(pdf)
		bad[i] ^= 0x01
		// A flip in the deflate stream's unused bits changes nothing read.
		if _, err := auditData(bad, keys, verifiable.WitnessPolicy{}); err == nil {
			if r, _ := report.ReadPDF(bad); r == nil || len(r.Files) != 1 || !bytes.Equal(r.Files[0], bundle) {
				t.Fatalf("PDF byte %d of the attachment flipped: a changed bundle verified", i)
			}
		}
	}
}

// TestAuditChecksThePrintedRecords: the proof must be of the records the
// report prints, and of the checkpoint it prints.
func TestAuditChecksThePrintedRecords(t *testing.T) {
	_, key, pdfPath := auditReportFixture(t)
	pdf, _ := os.ReadFile(pdfPath)
	r, _ := report.ReadPDF(pdf)
	v, err := verifiable.VerifyBundle(r.Files[0], key)
	if err != nil {
		t.Fatal(err)
	}
	if err := printedIs(r.Text, v); err != nil {
		t.Fatal(err)
	}
	for _, drop := range []string{v.Records[2].Hash.String()[:16], v.Checkpoint.Root.String(), "Records (" + itoa(len(v.Records)) + ", in chain order)"} {
		text := slices.DeleteFunc(slices.Clone(r.Text), func(s string) bool { return s == drop })
		if err := printedIs(text, v); err == nil {
			t.Errorf("report text without %q: accepted", drop)
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestAuditSinceDetectsRollbackAndRewrite: a later checkpoint extends the
// report's (a consistency proof from a file, and from the running
// service); a ledger rolled back to a backup, or rewritten from a point,
// fails against a later checkpoint; after a key rotation the old report
// still verifies with the exported keys.
func TestAuditSinceDetectsRollbackAndRewrite(t *testing.T) {
	f, key, oldPDF := auditReportFixture(t)
	tmp := t.TempDir()
	backup := filepath.Join(tmp, "backup")
	copyDir(t, f.dir, backup)

	h := openLedger(t, f.dir)
	r, _ := report.ReadPDF(mustRead(t, oldPDF))
	v, err := verifiable.VerifyBundle(r.Files[0], key)
	if err != nil {
		t.Fatal(err)
	}
	s1 := v.Checkpoint.Size
	h.grow(t, "later", 3)
	newCP := filepath.Join(tmp, "new.cp")
	c2 := h.checkpoint(t, newCP)
	proof := filepath.Join(tmp, "proof.json")
	h.consistency(t, proof, s1, c2.Size)
	if out, _, exit, err := runCmd(t, nil, "audit", "--key", key, "--since", oldPDF, "--proof", proof, newCP); exit != 0 || !strings.Contains(out, "only grew") {
		t.Fatalf("grown ledger: exit %d %v %s", exit, err, out)
	}
	// Through the running service: the proof and the latest checkpoint.
	tok, err := h.svc.AddUser(context.Background(), "aud1", "Printed aud1", custody.RoleQA, pw("aud1"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Service: h.svc, Logger: slog.New(slog.DiscardHandler), Version: "test", Log: h.log})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	env := []string{"COID_TOKEN=" + tok}
	if out, _, exit, err := runCmd(t, env, "audit", "--key", key, "--since", oldPDF, "--url", hs.URL); exit != 0 || !strings.Contains(out, "only grew") {
		t.Fatalf("--url: exit %d %v %s", exit, err, out)
	}
	if _, _, exit, _ := runCmd(t, nil, "audit", "--key", key, "--since", oldPDF, "--url", hs.URL); exit != 2 {
		t.Errorf("--url without COID_TOKEN: exit %d, want 2", exit)
	}
	hs.Close()
	h.store.Close()

	// Rolled back to the backup: the backup's checkpoint is older than
	// the one seen.
	hb := openLedger(t, backup)
	backCP := filepath.Join(tmp, "back.cp")
	hb.checkpoint(t, backCP)
	if _, _, exit, err := runCmd(t, nil, "audit", "--key", key, "--since", newCP, backCP); exit != 1 || !strings.Contains(err.Error(), "cut back") {
		t.Errorf("rolled back: exit %d %v, want 1 (cut back)", exit, err)
	}
	// Rewritten from the backup's point: other records after it, as many
	// and then more.
	hb.grow(t, "forged", 3)
	same := filepath.Join(tmp, "same.cp")
	hb.checkpoint(t, same)
	if _, _, exit, err := runCmd(t, nil, "audit", "--key", key, "--since", newCP, same); exit != 1 || !strings.Contains(err.Error(), "rewritten") {
		t.Errorf("rewritten, same size: exit %d %v, want 1", exit, err)
	}
	hb.grow(t, "forged2", 2)
	longer := filepath.Join(tmp, "longer.cp")
	c3 := hb.checkpoint(t, longer)
	forgedProof := filepath.Join(tmp, "forged-proof.json")
	hb.consistency(t, forgedProof, c2.Size, c3.Size)
	if _, _, exit, err := runCmd(t, nil, "audit", "--key", key, "--since", newCP, "--proof", forgedProof, longer); exit != 1 || !strings.Contains(err.Error(), "checkpoint") {
		t.Errorf("rewritten and longer: exit %d %v, want 1", exit, err)
	}
	// The rewritten ledger still extends the report's checkpoint, which
	// it kept: that is not an error.
	hb.consistency(t, forgedProof, s1, c3.Size)
	if _, _, exit, err := runCmd(t, nil, "audit", "--key", key, "--since", oldPDF, "--proof", forgedProof, longer); exit != 0 {
		t.Errorf("from the kept point: exit %d %v", exit, err)
	}
	hb.store.Close()

	// Key rotation: the old report verifies with the exported keys, not
	// with the new key alone.
	if _, _, _, err := runCmd(t, nil, "key", "rotate", "--data", f.dir); err != nil {
		t.Fatal(err)
	}
	export, _, _, err := runCmd(t, nil, "key", "export", "--data", f.dir)
	if err != nil {
		t.Fatal(err)
	}
	keysFile := filepath.Join(tmp, "keys")
	writeFile(t, keysFile, []byte(export))
	newKey, _, _, _ := runCmd(t, nil, "key", "show", "--data", f.dir)
	if _, _, exit, err := runCmd(t, nil, "audit", "--key", keysFile, oldPDF); exit != 0 {
		t.Errorf("old report with the exported keys: exit %d %v", exit, err)
	}
	if _, _, exit, _ := runCmd(t, nil, "audit", "--key", strings.TrimSpace(newKey), oldPDF); exit != 1 {
		t.Errorf("old report with the new key only: exit %d, want 1", exit)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BenchmarkAuditReport is coid audit of the fixture's custody report
// (read the PDF, extract the proof, verify the checkpoint and every
// record, check the printed records), through run.
func BenchmarkAuditReport(b *testing.B) {
	f := newReportFixture(b)
	// QA reviews, each a record and a review block, make it five pages.
	h := openLedger(b, f.dir)
	qa, err := h.store.User(context.Background(), "qa1")
	if err != nil {
		b.Fatal(err)
	}
	for i := range 6 {
		data, _ := json.Marshal(custody.ReviewData{Statement: "Custody record reviewed against the batch record, pass " + itoa(i+1) +
			": identity, chain of custody and the cold chain are complete and consistent."})
		if _, err := h.svc.Record(context.Background(), qa, f.coi, custody.StepRequest{Step: custody.StepReview, Data: data,
			Signatures: []custody.SignatureRequest{{User: "qa1", Password: pw("qa1"), Meaning: custody.MeaningReviewed}}}); err != nil {
			b.Fatal(err)
		}
	}
	h.store.Close()
	key, _, _, err := runCmd(b, nil, "key", "show", "--data", f.dir)
	if err != nil {
		b.Fatal(err)
	}
	pdf := filepath.Join(b.TempDir(), "report.pdf")
	if _, _, _, err := runCmd(b, nil, "report", "--data", f.dir, "--user", "qa1", "--at", reportAt.Format(time.RFC3339), "-o", pdf, string(f.coi)); err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command("pdfinfo", pdf).Output(); err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "Pages:") {
				b.Logf("report: %s", strings.Join(strings.Fields(l), " "))
			}
		}
	}
	args := []string{"audit", "--key", strings.TrimSpace(key), pdf}
	b.ResetTimer()
	for b.Loop() {
		if err := run(context.Background(), args, nil, nil, io.Discard, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
