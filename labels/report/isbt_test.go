package report_test

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/png"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
	"github.com/makiuchi-d/gozxing"
	zxqrcode "github.com/makiuchi-d/gozxing/qrcode"
)

// pdfImageXObject matches the image fpdf writes for a grayscale PNG: its
// size, then its stream, which is the PNG's IDAT data unchanged.
var pdfImageXObject = regexp.MustCompile(`/Subtype /Image\n/Width (\d+)\n/Height (\d+)\n/ColorSpace /DeviceGray\n/BitsPerComponent 8\n/Filter /FlateDecode\n/DecodeParms <</Predictor 15 /Colors 1 /BitsPerComponent 8 /Columns \d+>>\n/Length (\d+)>>\nstream\n`)

// headerCode returns the report's 2-D code as a scanner reads it: the
// image out of the PDF, rebuilt as a PNG and decoded by gozxing.
func headerCode(t *testing.T, pdf []byte) string {
	t.Helper()
	m := pdfImageXObject.FindSubmatchIndex(pdf)
	if m == nil {
		t.Fatal("no grayscale image in the report")
	}
	w, _ := strconv.Atoi(string(pdf[m[2]:m[3]]))
	h, _ := strconv.Atoi(string(pdf[m[4]:m[5]]))
	n, _ := strconv.Atoi(string(pdf[m[6]:m[7]]))
	idat := pdf[m[1] : m[1]+n]
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		_ = binary.Write(&b, binary.BigEndian, uint32(len(data)))
		b.WriteString(typ)
		b.Write(data)
		_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), data...)))
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 8, 0 // 8-bit grayscale
	chunk("IHDR", ihdr)
	chunk("IDAT", idat)
	chunk("IEND", nil)
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatalf("report image: %v", err)
	}
	return decodeQR(t, img)
}

func decodeQR(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := zxqrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		t.Fatalf("decode the report's QR code: %v", err)
	}
	return res.GetText()
}

// TestReportISBT: the report prints the chain's identifiers in their ISBT
// 128 forms (the COI with its boxed K and Data Structure 040, the DIN
// eye-readable as ST-001 prints it, with flags and K, and Data Structure
// 001), never the old C1: payload, and its 2-D code, read by an independent
// decoder, carries the COI and DIN as ISBT 128 data that /scan resolves to
// the chain. A chain not yet collected gets the COI alone; an old record
// that kept a scanned C1: bag code still renders.
func TestReportISBT(t *testing.T) {
	c, tele := fullJourney(t)
	pdf := render(t, input(c, tele, berlin(t)))
	txt := squash(pdfText(t, pdf))
	din := custody.DIN("A999926123456")
	for _, w := range []string{
		"bar code &/" + string(c.COI) + ", ISBT 128 data structure 040",
		"A9999 26 123456 00 " + string(din.K()),
		"bar code =A99992612345600, ISBT 128 data structure 001",
		"DIN A9999 26 123456 00 " + string(din.K()) + "; 212.5 mL",
	} {
		if !strings.Contains(txt, w) {
			t.Errorf("report text lacks %q", w)
		}
	}
	if strings.Contains(txt, custody.PayloadPrefix) {
		t.Errorf("report still prints a %s payload", custody.PayloadPrefix)
	}
	if d, err := custody.ParseDIN("A9999 26 123456 00 " + string(din.K())); err != nil || d != din {
		t.Errorf("the printed DIN does not read back: %v, %v", d, err)
	}
	code := headerCode(t, pdf)
	if want := "=+02000&/" + string(c.COI) + "=A99992612345600"; code != want {
		t.Errorf("report code %q, want %q", code, want)
	}
	if got, err := custody.ParseCode(code); err != nil || got.COI != c.COI || got.Bag != nil || got.ISBT == nil || got.ISBT.DIN != din {
		t.Errorf("ParseCode(%q) = %+v, %v; want chain %s with its DIN", code, got, err, c.COI)
	}

	uncollected := *c
	uncollected.DIN = ""
	if code := headerCode(t, render(t, input(&uncollected, tele, nil))); code != "&/"+string(c.COI) {
		t.Errorf("code of a chain not yet collected = %q, want the COI alone", code)
	}
}
