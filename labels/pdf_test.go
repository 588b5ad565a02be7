package labels

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
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

var (
	pdfWidth  = regexp.MustCompile(`/Width (\d+)`)
	pdfHeight = regexp.MustCompile(`/Height (\d+)`)
)

// pdfImage rebuilds the PNG that fpdf embedded as an image stream: fpdf
// copies a PNG's IDAT data verbatim (FlateDecode with PNG predictors), so
// wrapping it in IHDR and IEND again gives the image back, byte for byte in
// its pixels.
func pdfImage(t *testing.T, s pdfStream) image.Image {
	t.Helper()
	if !strings.Contains(s.dict, "/ColorSpace /DeviceGray") || !strings.Contains(s.dict, "/BitsPerComponent 8") ||
		!strings.Contains(s.dict, "/Predictor 15") {
		t.Fatalf("image is not 8-bit gray PNG data: %s", s.dict)
	}
	w, _ := strconv.Atoi(pdfWidth.FindStringSubmatch(s.dict)[1])
	h, _ := strconv.Atoi(pdfHeight.FindStringSubmatch(s.dict)[1])
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		binary.Write(&b, binary.BigEndian, uint32(len(data)))
		crc := crc32.NewIEEE()
		io.WriteString(crc, typ)
		crc.Write(data)
		b.WriteString(typ)
		b.Write(data)
		binary.Write(&b, binary.BigEndian, crc.Sum32())
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 8, 0 // 8 bits, grayscale
	chunk("IHDR", ihdr)
	chunk("IDAT", s.data)
	chunk("IEND", nil)
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatalf("embedded image: %v", err)
	}
	return img
}

// TestPDFEmbeddedCodes takes the code images out of a PDF and decodes
// them: what the page carries is what the payload says.
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
	var buf bytes.Buffer
	if err := WritePDF(&buf, labels, DefaultStock, created); err != nil {
		t.Fatal(err)
	}
	var images []image.Image
	for _, s := range pdfStreams(t, buf.Bytes()) {
		if strings.Contains(s.dict, "/Subtype /Image") {
			images = append(images, pdfImage(t, s))
		}
	}
	if len(images) != len(labels) {
		t.Fatalf("%d images for %d labels", len(images), len(labels))
	}
	for i, l := range labels {
		t.Run(fmt.Sprintf("%d/%s/%s", i, l.Symbology, l.Bag), func(t *testing.T) {
			lay, err := layoutLabel(l, DefaultStock)
			if err != nil {
				t.Fatal(err)
			}
			want := lay.code.sym.image(lay.code.module, lay.code.sideDots())
			var found image.Image
			for _, img := range images {
				if g, ok := img.(*image.Gray); ok && g.Bounds() == want.Bounds() && bytes.Equal(g.Pix, want.Pix) {
					found = img
				}
			}
			if found == nil {
				t.Fatal("the label's code is not among the PDF's images")
			}
			checkDecoded(t, decode(t, found, l.Symbology).GetText(), l.Bag)
		})
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
		t.Skip("pdftoppm not installed (apt-get install poppler-utils)")
	}
	labels := []Label{aphLabel(t), fpLabel(t)}
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
		t.Run(l.Bag.String(), func(t *testing.T) {
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
			c := lay.code
			// The code's quiet zone, cut out of the page as a scanner
			// aimed at it would see it.
			r := image.Rect(c.x, c.y, c.x+c.sideDots(), c.y+c.sideDots())
			crop := page.(interface {
				SubImage(image.Rectangle) image.Image
			}).SubImage(r)
			checkDecoded(t, decode(t, crop, l.Symbology).GetText(), l.Bag)
			if l.Symbology == QR {
				// A QR code is found on the whole page too.
				checkDecoded(t, decode(t, page, QR).GetText(), l.Bag)
			}
		})
	}
}
