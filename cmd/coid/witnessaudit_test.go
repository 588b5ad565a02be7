package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
	"github.com/coid-project/coid/custody/verifiable/witness/witnesstest"
	"github.com/coid-project/coid/labels/report"
	"golang.org/x/mod/sumdb/note"
)

// cosignLine returns the witness's C2SP tlog-cosignature line for the
// signed checkpoint.
func cosignLine(t *testing.T, w *witnesstest.Witness, signed string) string {
	t.Helper()
	c, err := verifiable.ParseCheckpoint(signed[:strings.Index(signed, "\n\n")+1])
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Sign(&note.Note{Text: c.Text()}, w.Signer())
	if err != nil {
		t.Fatal(err)
	}
	s := string(n)
	return s[strings.LastIndex(s, "\n\n")+2:]
}

// TestAuditWitnessedBundle: a bundle whose checkpoint carries witness
// cosignatures audits with coid's key alone (the cosignatures listed as
// unverified, as note.Open ignores unknown keys); --quorum needs that many
// of the --witness-key witnesses to have cosigned; a changed cosignature
// fails once its witness's key is given.
func TestAuditWitnessedBundle(t *testing.T) {
	_, key, pdfPath := auditReportFixture(t)
	pdf, _ := os.ReadFile(pdfPath)
	r, err := report.ReadPDF(pdf)
	if err != nil || len(r.Files) != 1 {
		t.Fatalf("read back: %v", err)
	}
	b, err := verifiable.ParseBundle(r.Files[0])
	if err != nil {
		t.Fatal(err)
	}
	wA, err := witnesstest.New("witness.example/a", key, 7)
	if err != nil {
		t.Fatal(err)
	}
	wB, err := witnesstest.New("witness.example/b", key, 8)
	if err != nil {
		t.Fatal(err)
	}
	lineA := cosignLine(t, wA, b.Checkpoint)
	b.Checkpoint = string(verifiable.WithCosignatures([]byte(b.Checkpoint), []custody.Cosignature{{Line: lineA}}))
	dir := t.TempDir()
	write := func(name string, b *verifiable.Bundle) string {
		data, err := b.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		writeFile(t, p, data)
		return p
	}
	witnessed := write("witnessed.json", b)
	// The cosignature with a byte of its signature (past the key hash)
	// changed.
	flipped := *b
	f := strings.Fields(lineA)
	sig := []byte(f[2])
	if sig[20] == 'A' {
		sig[20] = 'B'
	} else {
		sig[20] = 'A'
	}
	flipped.Checkpoint = strings.Replace(b.Checkpoint, lineA, f[0]+" "+f[1]+" "+string(sig)+"\n", 1)
	bad := write("flipped.json", &flipped)

	for _, tc := range []struct {
		name  string
		args  []string
		file  string
		exit  int
		out   string // in stdout (exit 0) or the error
		noOut string
	}{
		{"no witness keys", nil, witnessed, 0, "unverified (no key given, ignored): witness.example/a+", "cosigned by"},
		{"the witness's key", []string{"--witness-key", wA.VerifierKey()}, witnessed, 0, "cosigned by witness witness.example/a at ", "unverified"},
		{"quorum 1, the witness's key", []string{"--witness-key", wA.VerifierKey(), "--quorum", "1"}, witnessed, 0, "cosigned by witness witness.example/a", ""},
		{"quorum 1, another witness's key", []string{"--witness-key", wB.VerifierKey(), "--quorum", "1"}, witnessed, 1, "0 of the 1 witness keys given cosigned", ""},
		{"quorum 2 of both", []string{"--witness-key", wA.VerifierKey(), "--witness-key", wB.VerifierKey(), "--quorum", "2"}, witnessed, 1, "1 of the 2 witness keys given cosigned", ""},
		{"quorum 1 without witness keys", []string{"--quorum", "1"}, witnessed, 2, "--quorum 1", ""},
		{"flipped cosignature, no witness key", nil, bad, 0, "unverified (no key given, ignored): witness.example/a+", ""},
		{"flipped cosignature, its witness's key", []string{"--witness-key", wA.VerifierKey()}, bad, 1, "witness.example/a", ""},
		{"not a witness key", []string{"--witness-key", "nonsense"}, witnessed, 2, "--witness-key", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"audit", "--key", key}, tc.args...)
			out, stderr, exit, err := runCmd(t, nil, append(args, tc.file)...)
			if exit != tc.exit {
				t.Fatalf("exit %d, want %d: %v\n%s%s", exit, tc.exit, err, out, stderr)
			}
			got := out
			if err != nil {
				got = err.Error()
			}
			if !strings.Contains(got, tc.out) || (tc.noOut != "" && strings.Contains(got, tc.noOut)) {
				t.Fatalf("want %q (and not %q) in:\n%s", tc.out, tc.noOut, got)
			}
			if exit == 0 && !strings.HasPrefix(out, "OK: ") {
				t.Fatalf("exit 0 without OK:\n%s", out)
			}
		})
	}
}
