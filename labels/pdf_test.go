package labels

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// pdfStream is one stream object of a PDF: its dictionary and raw data.
type pdfStream struct {
	dict string
	data []byte
}

var pdfLength = regexp.MustCompile(`/Length (\d+)`)

// pdfStreams returns the stream objects of an uncompressed-xref PDF such
// as fpdf writes, in file order.
func pdfStreams(t *testing.T, pdf []byte) []pdfStream {
	t.Helper()
	var out []pdfStream
	for off := 0; ; {
		i := bytes.Index(pdf[off:], []byte("stream\n"))
		if i < 0 {
			return out
		}
		i += off
		if i >= 3 && string(pdf[i-3:i]) == "end" {
			off = i + len("stream\n")
			continue
		}
		start := bytes.LastIndex(pdf[:i], []byte(" obj\n"))
		if start < 0 {
			t.Fatalf("stream at %d outside an object", i)
		}
		dict := string(pdf[start:i])
		m := pdfLength.FindStringSubmatch(dict)
		if m == nil {
			t.Fatalf("stream at %d without /Length", i)
		}
		n, _ := strconv.Atoi(m[1])
		data := i + len("stream\n")
		out = append(out, pdfStream{dict: dict, data: pdf[data : data+n]})
		off = data + n
	}
}

// pdfInline is a 2-D code drawn as an inline image: its pixels, and the
// side and bottom-left corner of its square, in points.
type pdfInline struct {
	img        *image.Gray
	side, x, y float64
}

var pdfInlineRE = regexp.MustCompile(`q ([0-9.]+) 0 0 ([0-9.]+) ([0-9.]+) ([0-9.]+) cm\nBI /W (\d+) /H (\d+) /CS /G /BPC 1 /F \[/AHx /Fl\] ID\n([0-9a-f\n]*)>\nEI Q`)

// pdfPageContents returns the decompressed content stream of each page,
// in page order (fpdf writes each page's content after its page object).
func pdfPageContents(t *testing.T, pdf []byte) []string {
	t.Helper()
	var out []string
	for _, s := range pdfStreams(t, pdf) {
		if strings.Contains(s.dict, "/Subtype") {
			continue
		}
		r, err := zlib.NewReader(bytes.NewReader(s.data))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// pdfInlineImages decodes the inline images of one page's content.
func pdfInlineImages(t *testing.T, content string) []pdfInline {
	t.Helper()
	var out []pdfInline
	for _, m := range pdfInlineRE.FindAllStringSubmatch(content, -1) {
		num := func(s string) float64 {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
		if m[1] != m[2] {
			t.Fatalf("code drawn %s x %s pt, not square", m[1], m[2])
		}
		w, _ := strconv.Atoi(m[5])
		h, _ := strconv.Atoi(m[6])
		z, err := hex.DecodeString(strings.ReplaceAll(m[7], "\n", ""))
		if err != nil {
			t.Fatal(err)
		}
		r, err := zlib.NewReader(bytes.NewReader(z))
		if err != nil {
			t.Fatal(err)
		}
		pix, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		stride := (w + 7) / 8
		if len(pix) != stride*h {
			t.Fatalf("1-bit inline image %dx%d has %d bytes", w, h, len(pix))
		}
		img := image.NewGray(image.Rect(0, 0, w, h))
		for i := range img.Pix {
			if pix[i/w*stride+i%w/8]&(0x80>>(i%w%8)) != 0 {
				img.Pix[i] = 0xff
			}
		}
		out = append(out, pdfInline{img: img, side: num(m[1]), x: num(m[3]), y: num(m[4])})
	}
	return out
}

// TestPDFEmbeddedCodes takes the code images out of a PDF and decodes
// them: what each page carries is the code of its label, at one pixel per
// printer dot, on the printer's dot grid.
func TestPDFEmbeddedCodes(t *testing.T) {
	labels := []Label{aphLabel(t), fpLabel(t)}
	for _, sym := range []Symbology{QR, DataMatrix} {
		for _, bag := range []custody.BagID{
			{COI: starCOI, Kind: custody.BagApheresis, N: 1},
			{COI: mustCOI(t, "B1234", 77), Kind: custody.BagFinalProduct, N: 4},
		} {
			l := aphLabel(t)
			l.Bag, l.Symbology = bag, sym
			labels = append(labels, l)
		}
	}
	for _, st := range []Stock{DefaultStock, {WidthMM: 76.2, HeightMM: 50.8, DPI: 203}, {WidthMM: 101.6, HeightMM: 76.2, DPI: 600}} {
		var buf bytes.Buffer
		if err := WritePDF(&buf, labels, st, created); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(buf.Bytes(), []byte("/Subtype /Image")) {
			t.Error("the PDF has image XObjects; codes are drawn inline")
		}
		pages := pdfPageContents(t, buf.Bytes())
		if len(pages) != len(labels) {
			t.Fatalf("%d pages for %d labels", len(pages), len(labels))
		}
		for i, l := range labels {
			t.Run(fmt.Sprintf("%d/%d/%s/%s", st.DPI, i, l.Symbology, l.Bag), func(t *testing.T) {
				lay, err := layoutLabel(l, st)
				if err != nil {
					t.Fatal(err)
				}
				imgs := pdfInlineImages(t, pages[i])
				if len(imgs) != 1 {
					t.Fatalf("page %d has %d codes, want 1", i+1, len(imgs))
				}
				got, c := imgs[0], lay.code
				want := c.sym.image(c.module, c.sideDots())
				if got.img.Bounds() != want.Bounds() || !bytes.Equal(got.img.Pix, want.Pix) {
					t.Fatalf("page %d's code is not the label's code at one pixel per dot", i+1)
				}
				pt := 72 / float64(st.DPI) // points per dot
				pageH := st.HeightMM * 72 / 25.4
				for _, v := range []struct {
					name      string
					got, want float64
				}{
					{"side", got.side, float64(c.sideDots()) * pt},
					{"x", got.x, float64(c.x) * pt},
					{"y", got.y, pageH - float64(c.y+c.sideDots())*pt},
				} {
					if math.Abs(v.got-v.want) > 1e-4 {
						t.Errorf("code %s %.5f pt, want %.5f (the dot grid)", v.name, v.got, v.want)
					}
				}
				checkDecoded(t, decode(t, got.img, l.Symbology).GetText(), l)
			})
		}
	}
}

// pdfText returns the decompressed page content streams of a PDF.
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	var b strings.Builder
	for _, s := range pdfStreams(t, pdf) {
		if strings.Contains(s.dict, "/Subtype") {
			continue
		}
		r, err := zlib.NewReader(bytes.NewReader(s.data))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(&b, r); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// pdfString is how fpdf writes s in a text operator: cp1252 bytes with
// backslash, parentheses and CR escaped.
func pdfString(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch c := cp1252Byte(r); c {
		case '\\', '(', ')':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return "(" + b.String() + ") Tj"
}

// TestPDFContent checks the page content of the fixtures, independently
// of the golden bytes: every field is on its page, in the right font.
func TestPDFContent(t *testing.T) {
	labels := []Label{aphLabel(t), fpLabel(t)}
	var buf bytes.Buffer
	if err := WritePDF(&buf, labels, DefaultStock, created); err != nil {
		t.Fatal(err)
	}
	pdf := buf.String()
	for _, want := range []string{
		"/CreationDate (D:20260314120000)",
		"/ModDate (D:20260314120000)",
		"/MediaBox [0 0 216.00 144.00]",
		"/BaseFont /Courier-Bold",
		"/Encoding /WinAnsiEncoding",
	} {
		if !strings.Contains(pdf, want) {
			t.Errorf("PDF lacks %q", want)
		}
	}
	if n := strings.Count(pdf, "/Type /Page\n"); n != len(labels) {
		t.Errorf("%d pages for %d labels", n, len(labels))
	}
	text := pdfText(t, buf.Bytes())
	for _, l := range labels {
		want := []string{
			l.Product, autologous, string(l.Bag.COI), string(l.Bag.COI.K()), l.Bag.String(),
			l.PatientName, l.BirthDate, strings.ToUpper(l.TimeLabel), l.localTime(), l.utcTime(),
			l.Storage, l.Facility,
		}
		if l.DIN != "" {
			want = append(want, string(l.DIN), string(l.DIN.K()))
		}
		for _, s := range want {
			if !strings.Contains(text, pdfString(s)) {
				t.Errorf("page content lacks %s", pdfString(s))
			}
		}
	}
}

// TestPDFPageDecodes rasterises the PDF with poppler's pdftoppm, when it is
// installed, and decodes the code from the rendered page: the test of what
// a printer driver would print.
func TestPDFPageDecodes(t *testing.T) {
	pdftoppm, err := exec.LookPath("pdftoppm")
	if err != nil {
		skipUnlessCI(t, "pdftoppm not installed (apt-get install poppler-utils)")
	}
	var labels []Label
	for _, sym := range []Symbology{QR, DataMatrix, Both} {
		for _, l := range []Label{aphLabel(t), fpLabel(t)} {
			l.Symbology = sym
			labels = append(labels, l)
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "labels.pdf")
	var buf bytes.Buffer
	if err := WritePDF(&buf, labels, DefaultStock, created); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(pdftoppm, "-r", strconv.Itoa(DefaultStock.DPI), "-gray", "-png", path, filepath.Join(dir, "page")).CombinedOutput()
	if err != nil {
		t.Fatalf("pdftoppm: %v: %s", err, out)
	}
	for i, l := range labels {
		t.Run(l.Symbology.String()+"/"+l.Bag.String(), func(t *testing.T) {
			f, err := os.Open(filepath.Join(dir, fmt.Sprintf("page-%d.png", i+1)))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			page, err := png.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			if b := page.Bounds(); b.Dx() != 900 || b.Dy() != 600 {
				t.Fatalf("page rendered at %v, want 900x600", b)
			}
			lay, err := layoutLabel(l, DefaultStock)
			if err != nil {
				t.Fatal(err)
			}
			syms := codeSymbologies(l)
			if len(lay.codes()) != len(syms) {
				t.Fatalf("%s label lays out %d codes, want %d", l.Symbology, len(lay.codes()), len(syms))
			}
			for j, c := range lay.codes() {
				// Each code's quiet zone, cut out of the page as a scanner
				// aimed at it would see it.
				r := image.Rect(c.x, c.y, c.x+c.sideDots(), c.y+c.sideDots())
				crop := page.(interface {
					SubImage(image.Rectangle) image.Image
				}).SubImage(r)
				checkDecoded(t, decode(t, crop, syms[j]).GetText(), l)
			}
			if l.Symbology != DataMatrix {
				// A QR code is found on the whole page too.
				checkDecoded(t, decode(t, page, QR).GetText(), l)
			}
		})
	}
}

// skipUnlessCI skips a test whose outside part (a broker, a schema, a
// tool) is missing, except in CI (CI=true), where it must run and so
// fails instead.
func skipUnlessCI(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("required in CI: %s", why)
	}
	tb.Skip(why)
}
