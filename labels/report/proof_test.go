package report_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody/verifiable"
	"github.com/coid-project/coid/labels/report"
)

// withProof returns the full journey's input with a proof attached (the
// bundle's bytes are opaque to the renderer).
func withProof(t *testing.T) (*report.Input, *report.Proof) {
	c, tele := fullJourney(t)
	in := input(c, tele, berlin(t))
	p := &report.Proof{Bundle: []byte("{\"format\":\"" + verifiable.BundleFormat + "\",\"records\":[(\\)]}\n"),
		Checkpoint: verifiable.Checkpoint{Origin: "coid/0011223344556677", Size: 1234},
		KeyIDs:     []string{"coid/0011223344556677+a1b2c3d4"}}
	for i := range p.Checkpoint.Root {
		p.Checkpoint.Root[i] = byte(i * 7)
	}
	in.Proof = p
	return in, p
}

// TestProofAttachedAndPrinted: the bundle is a file attachment that
// poppler's pdfdetach (an independent reader) and ReadPDF both extract
// byte for byte; the verification block prints the checkpoint's size,
// root and key ID (pdftotext); ReadPDF reads the records' printed hashes.
func TestProofAttachedAndPrinted(t *testing.T) {
	in, p := withProof(t)
	pdf := render(t, in)
	text := squash(pdfText(t, pdf))
	for _, want := range []string{"Proof checkpoint size 1234 records", "Proof checkpoint root AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk=",
		"Proof key ID coid/0011223344556677+a1b2c3d4", verifiable.BundleFile} {
		if !strings.Contains(text, want) {
			t.Errorf("report text lacks %q", want)
		}
	}
	got, err := report.ReadPDF(pdf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Files) != 1 || !bytes.Equal(got.Files[0], p.Bundle) {
		t.Fatalf("ReadPDF files %q, want the bundle", got.Files)
	}
	printed := strings.Join(got.Text, "\n")
	for _, r := range in.Chain.Records {
		if !strings.Contains(printed, r.Hash.String()[:16]) {
			t.Errorf("ReadPDF text lacks record %d's hash", r.Seq)
		}
	}
	if !strings.Contains(printed, p.Checkpoint.Root.String()) {
		t.Error("ReadPDF text lacks the checkpoint root")
	}

	bin, err := exec.LookPath("pdfdetach")
	if err != nil {
		skipUnlessCI(t, "pdfdetach (poppler-utils) is not installed; install it to check the attachment independently")
	}
	dir := t.TempDir()
	f := filepath.Join(dir, "r.pdf")
	if err := os.WriteFile(f, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command(bin, "-list", f).CombinedOutput()
	if err != nil || !strings.Contains(string(list), verifiable.BundleFile) {
		t.Fatalf("pdfdetach -list: %v\n%s", err, list)
	}
	out := filepath.Join(dir, "bundle.json")
	if b, err := exec.Command(bin, "-save", "1", "-o", out, f).CombinedOutput(); err != nil {
		t.Fatalf("pdfdetach -save: %v\n%s", err, b)
	}
	if b, _ := os.ReadFile(out); !bytes.Equal(b, p.Bundle) {
		t.Fatalf("pdfdetach extracted %q, want the bundle", b)
	}
}

// TestReadPDFRefusesAChangedAttachment: an attachment whose bytes no
// longer match its checksum is refused, not read.
func TestReadPDFRefusesAChangedAttachment(t *testing.T) {
	in, _ := withProof(t)
	in.Proof.Bundle = bytes.Repeat([]byte("x"), 200) // stored uncompressible enough to find
	pdf := render(t, in)
	if _, err := report.ReadPDF(pdf); err != nil {
		t.Fatal(err)
	}
	if _, err := report.ReadPDF([]byte("not a pdf")); err == nil {
		t.Fatal("read a non-PDF")
	}
	i := bytes.Index(pdf, []byte("/CheckSum <")) + len("/CheckSum <")
	bad := bytes.Clone(pdf)
	bad[i] ^= 0x01
	if _, err := report.ReadPDF(bad); err == nil {
		t.Fatal("read an attachment whose checksum does not match")
	}
}
