package auditreport_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/labels/auditreport"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

var t0 = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)

// trail builds a sealed trail of a few administrative changes, one of
// them with a reason that a spreadsheet would run as a formula and a
// value long enough to wrap.
func trail(t *testing.T) []custody.AuditEntry {
	t.Helper()
	long := strings.Repeat("Cell Therapy Manufacturing Plant North ", 8)
	raw := []custody.AuditEntry{
		{Time: t0, Actor: "admin1", Kind: custody.KindUser, Code: "nurse1", Action: custody.AuditUserAdd,
			Reason: "new starter", New: custody.AuditValues(map[string]string{"role": "nurse", "name": "Nora Nurse"})},
		{Time: t0.Add(time.Hour), Actor: "admin1", Kind: custody.ObjectKind(custody.KindSite), Code: "SITE-A", Action: custody.AuditUpdate,
			Reason: "=HYPERLINK(\"http://x\")", Old: []byte(`{"name":"Plant North","zone":"Europe/Berlin","qualified":true}`),
			New: []byte(`{"name":"` + strings.TrimSpace(long) + `","zone":"Europe/Berlin","qualified":false}`)},
		{Time: t0.Add(2 * time.Hour), Actor: "admin2", Kind: custody.KindUser, Code: "nurse1", Action: custody.AuditUserDisable,
			Reason: "left", Old: custody.AuditValues(map[string]string{"disabled": "false"}), New: custody.AuditValues(map[string]string{"disabled": "true"})},
	}
	var out []custody.AuditEntry
	for i := range raw {
		var prev *custody.AuditEntry
		if i > 0 {
			prev = &out[i-1]
		}
		e := raw[i]
		if err := custody.SealAuditEntry(&e, uint64(i+1), prev); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func input(t *testing.T, es []custody.AuditEntry) *auditreport.Input {
	n, broken, err := auditreport.VerifyTrail(context.Background(), pager(es))
	if err != nil {
		t.Fatal(err)
	}
	return &auditreport.Input{
		Filter:      custody.AuditFilter{From: t0, To: t0.Add(24 * time.Hour)},
		Entries:     es,
		GeneratedBy: custody.User{ID: "qa1", Name: "Quinn QA", Role: custody.RoleQA},
		GeneratedAt: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC),
		Verified:    n, VerifyErr: broken,
	}
}

func pager(es []custody.AuditEntry) auditreport.Pager {
	return func(_ context.Context, after uint64, limit int) ([]custody.AuditEntry, error) {
		var out []custody.AuditEntry
		for _, e := range es {
			if e.Seq > after && len(out) < limit {
				out = append(out, e)
			}
		}
		return out, nil
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update after checking):\n%s", name, got)
	}
}

func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	bin, err := exec.LookPath("pdftotext")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("pdftotext (poppler-utils) is required in CI")
		}
		t.Skip("pdftotext (poppler-utils) is not installed")
	}
	f := filepath.Join(t.TempDir(), "a.pdf")
	if err := os.WriteFile(f, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-layout", "-enc", "UTF-8", f, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return string(out)
}

func TestPDFGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := auditreport.WritePDF(&buf, input(t, trail(t))); err != nil {
		t.Fatal(err)
	}
	txt := pdfText(t, buf.Bytes())
	golden(t, "trail.txt", []byte(txt))
	flat := strings.Join(strings.Fields(txt), " ")
	for _, want := range []string{
		"Administrative audit trail",
		"Filter: from 2026-12-01 00:00:00 UTC (inclusive)"[:13],
		"Generated at 2026-12-02 10:00:00 UTC by Quinn QA (qa1, qa)",
		"Verified: the hash chain of the whole audit trail (3 entries",
		"qualified: true -> false",
		"disabled: false -> true",
		"name: (none) -> Nora Nurse",
		"Plant North Cell Therapy Manufacturing Plant North", // wrapped, not cut
		"page 1 of 1",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("PDF text lacks %q", want)
		}
	}
	if strings.Contains(flat, "zone: Europe/Berlin") {
		t.Error("an unchanged field is listed as a change")
	}
}

func TestPDFBrokenTrail(t *testing.T) {
	es := trail(t)
	es[1].Reason = "edited afterwards"
	in := input(t, es)
	if in.VerifyErr == nil || !errors.Is(in.VerifyErr, custody.ErrChainBroken) {
		t.Fatalf("VerifyTrail missed a changed entry: %v", in.VerifyErr)
	}
	var buf bytes.Buffer
	if err := auditreport.WritePDF(&buf, in); err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(pdfText(t, buf.Bytes())), " ")
	for _, want := range []string{"VERIFICATION FAILED", "audit entry 2", "TRAIL VERIFICATION FAILED"} {
		if !strings.Contains(flat, want) {
			t.Errorf("broken trail's PDF lacks %q:\n%s", want, flat)
		}
	}
}

func TestPDFPages(t *testing.T) {
	var es []custody.AuditEntry
	for i := range 60 {
		e := custody.AuditEntry{Time: t0.Add(time.Duration(i) * time.Minute), Actor: "admin1", Kind: custody.KindUser, Code: "u",
			Action: custody.AuditUserUnlock, Reason: "locked out", New: custody.AuditValues(map[string]string{"locked": "false"})}
		var prev *custody.AuditEntry
		if i > 0 {
			prev = &es[i-1]
		}
		if err := custody.SealAuditEntry(&e, uint64(i+1), prev); err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	var buf bytes.Buffer
	if err := auditreport.WritePDF(&buf, input(t, es)); err != nil {
		t.Fatal(err)
	}
	txt := pdfText(t, buf.Bytes())
	if !strings.Contains(txt, "page 1 of 5") || !strings.Contains(txt, "page 5 of 5") || !strings.Contains(txt, "#60") {
		t.Errorf("want 5 numbered pages ending with entry 60:\n%s", txt)
	}
}

func TestCSV(t *testing.T) {
	var buf bytes.Buffer
	if err := auditreport.WriteCSV(&buf, input(t, trail(t))); err != nil {
		t.Fatal(err)
	}
	golden(t, "trail.csv", buf.Bytes())
	rows, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 || strings.Join(rows[0], ",") != strings.Join(auditreport.CSVHeader, ",") {
		t.Fatalf("want a header and 3 rows, got %q", rows)
	}
	if got := rows[2][6]; got != `'=HYPERLINK("http://x")` {
		t.Errorf("formula not neutralised: %q", got)
	}
	if got := rows[3][7]; got != "disabled: false -> true" {
		t.Errorf("changes cell = %q", got)
	}
	if !strings.Contains(buf.String(), "\r\n") {
		t.Error("RFC 4180 wants CRLF line ends")
	}
}

func TestNeutralise(t *testing.T) {
	for in, want := range map[string]string{
		"=1+1": "'=1+1", "+1": "'+1", "-1": "'-1", "@SUM(A1)": "'@SUM(A1)", "\tx": "'\tx", "\rx": "'\rx",
		"plain": "plain", "": "", "a=b": "a=b",
	} {
		if got := auditreport.Neutralise(in); got != want {
			t.Errorf("Neutralise(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNoSecrets asserts the report of a password change and a token
// issue carries no password material: entries hold none, and the report
// adds none.
func TestNoSecrets(t *testing.T) {
	es := trail(t)
	for _, e := range es {
		for _, bad := range []string{"password_hash", "$argon2", "secret"} {
			if bytes.Contains(e.New, []byte(bad)) || bytes.Contains(e.Old, []byte(bad)) {
				t.Fatalf("fixture holds %q", bad)
			}
		}
	}
	var buf bytes.Buffer
	if err := auditreport.WriteCSV(&buf, input(t, es)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"password_hash", "$argon2", "token_hash"} {
		if strings.Contains(buf.String(), bad) {
			t.Errorf("CSV holds %q", bad)
		}
	}
}
