package labels

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// exceptionalLabel is fpLabel released by an exceptional release.
func exceptionalLabel(t testing.TB) Label {
	l := fpLabel(t)
	l.Notice = custody.LabelExceptionalRelease
	return l
}

// TestNoticePrinted: a label with a notice prints it, eye-readable, on a
// reverse band at its foot, in the PDF (read back with pdftotext) and in
// the ZPL (a reversed text field over a filled box), for every symbology;
// a label without one prints no band (its bytes are TestGolden's).
func TestNoticePrinted(t *testing.T) {
	pdftotext, err := exec.LookPath("pdftotext")
	if err != nil {
		skipUnlessCI(t, "pdftotext not installed (apt-get install poppler-utils)")
	}
	for _, sym := range []Symbology{QR, DataMatrix, Both} {
		for _, base := range []Label{aphLabel(t), fpLabel(t)} {
			for _, notice := range []string{"", custody.LabelExceptionalRelease} {
				l := base
				l.Symbology, l.Notice = sym, notice
				name := sym.String() + "/" + l.Bag.String()
				if notice != "" {
					name += "/notice"
				}
				t.Run(name, func(t *testing.T) {
					var pdf bytes.Buffer
					if err := WritePDF(&pdf, []Label{l}, DefaultStock, created); err != nil {
						t.Fatal(err)
					}
					path := filepath.Join(t.TempDir(), "label.pdf")
					if err := os.WriteFile(path, pdf.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					out, err := exec.Command(pdftotext, "-enc", "UTF-8", path, "-").CombinedOutput()
					if err != nil {
						t.Fatalf("pdftotext: %v: %s", err, out)
					}
					text := string(out)
					if got := strings.Contains(text, custody.LabelExceptionalRelease); got != (notice != "") {
						t.Errorf("PDF text has the notice: %v, want %v:\n%s", got, notice != "", text)
					}
					var zpl bytes.Buffer
					if err := WriteZPL(&zpl, l, DefaultStock); err != nil {
						t.Fatal(err)
					}
					found := false
					for _, f := range zplFields(t, zpl.String()) {
						if f.text == custody.LabelExceptionalRelease {
							found = true
							if !strings.Contains(f.cmds, "^FR") {
								t.Errorf("ZPL notice field is not reversed: %q", f.cmds)
							}
						}
					}
					if found != (notice != "") {
						t.Errorf("ZPL has the notice field: %v, want %v", found, notice != "")
					}
					lay, err := layoutLabel(l, DefaultStock)
					if err != nil {
						t.Fatal(err)
					}
					bands := 0
					for _, b := range lay.boxes {
						if b.fill {
							bands++
						}
					}
					want := 1 // the autologous band
					if notice != "" {
						want = 2
					}
					if bands != want {
						t.Errorf("%d filled bands, want %d", bands, want)
					}
					for _, tx := range lay.texts {
						if bottom := tx.base + tx.em()*0.22; bottom > DefaultStock.HeightMM-0.5*margin {
							t.Errorf("%q ends at %.2f mm, off the foot of the label", tx.s, bottom)
						}
					}
				})
			}
		}
	}
}

// TestNoticeValidated: a notice is checked like the label's other text.
func TestNoticeValidated(t *testing.T) {
	for _, n := range []string{"   ", strings.Repeat("X", MaxNoticeLen+1), "RELEASE\tNOW", "RELEASED ☢"} {
		l := fpLabel(t)
		l.Notice = n
		if err := l.Validate(); !errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), "notice") {
			t.Errorf("notice %q: %v, want ErrInvalid naming the notice", n, err)
		}
	}
	if err := exceptionalLabel(t).Validate(); err != nil {
		t.Fatal(err)
	}
	if l := FromContent(custody.LabelContent{Notice: custody.LabelExceptionalRelease}, Options{}); l.Notice != custody.LabelExceptionalRelease {
		t.Errorf("FromContent dropped the notice: %q", l.Notice)
	}
}

// TestNoticeGolden pins the bytes of an exceptionally released product's
// label, PDF and ZPL.
func TestNoticeGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		render func(*bytes.Buffer) error
	}{
		{"fp-exceptional.zpl", func(b *bytes.Buffer) error { return WriteZPL(b, exceptionalLabel(t), DefaultStock) }},
		{"fp-exceptional.pdf", func(b *bytes.Buffer) error {
			return WritePDF(b, []Label{exceptionalLabel(t)}, DefaultStock, created)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a bytes.Buffer
			if err := tc.render(&a); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, a.Bytes())
		})
	}
}
