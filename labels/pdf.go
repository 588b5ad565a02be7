package labels

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"fmt"
	"image"
	"io"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"
	"github.com/coid-project/coid/custody"
)

// pdfProducer is the PDF's Producer entry. It is fixed, so the bytes do not
// change with the version of the PDF library alone.
const pdfProducer = "coid labels"

// WritePDF writes labels to w as a PDF, one label per page, each page the
// size of stock. created is written as both the creation and modification
// date (in UTC), so the same labels, stock and created always give the same
// bytes; it must not be the zero time. Every label is validated and laid
// out before anything is written: an invalid label, an empty list or a
// stock that cannot carry a legible label is an error wrapping
// custody.ErrInvalid that names the label by its index.
func WritePDF(w io.Writer, labels []Label, stock Stock, created time.Time) error {
	if len(labels) == 0 {
		return fmt.Errorf("write pdf: no labels: %w", custody.ErrInvalid)
	}
	if created.IsZero() {
		return fmt.Errorf("write pdf: creation time not set (it pins the PDF's dates): %w", custody.ErrInvalid)
	}
	if err := stock.validate(); err != nil {
		return fmt.Errorf("write pdf: %w", err)
	}
	lays := make([]*layout, len(labels))
	for i, l := range labels {
		if err := l.Validate(); err != nil {
			return fmt.Errorf("write pdf: label %d: %w", i, err)
		}
		lay, err := layoutLabel(l, stock)
		if err != nil {
			return fmt.Errorf("write pdf: label %d: %w", i, err)
		}
		lays[i] = lay
	}

	pdf := fpdf.NewCustom(&fpdf.InitType{
		OrientationStr: "P", // the page is exactly the stock, whichever side is longer
		UnitStr:        "mm",
		Size:           fpdf.SizeType{Wd: stock.WidthMM, Ht: stock.HeightMM},
	})
	pdf.SetCatalogSort(true)
	pdf.SetCreationDate(created.UTC())
	pdf.SetModificationDate(created.UTC())
	pdf.SetProducer(pdfProducer, false)
	pdf.SetMargins(0, 0, 0)
	pdf.SetAutoPageBreak(false, 0)
	tr := pdf.UnicodeTranslatorFromDescriptor("") // cp1252
	for _, lay := range lays {
		pdf.AddPage()
		if err := drawPDF(pdf, lay, tr); err != nil {
			return fmt.Errorf("write pdf: %w", err)
		}
	}
	if err := pdf.Output(w); err != nil {
		return fmt.Errorf("write pdf: %w", err)
	}
	return nil
}

// drawPDF draws one laid-out label on the current page.
func drawPDF(pdf *fpdf.Fpdf, lay *layout, tr func(string) string) error {
	pdf.SetDrawColor(0, 0, 0)
	pdf.SetFillColor(0, 0, 0)
	for _, b := range lay.boxes {
		if b.fill {
			pdf.Rect(b.x, b.y, b.w, b.h, "F")
			continue
		}
		pdf.SetLineWidth(b.line)
		pdf.Rect(b.x, b.y, b.w, b.h, "D")
	}
	for _, t := range lay.texts {
		switch t.face {
		case faceSans:
			pdf.SetFont("Helvetica", "", t.size)
		case faceSansBold:
			pdf.SetFont("Helvetica", "B", t.size)
		case faceMono:
			pdf.SetFont("Courier", "B", t.size)
		}
		if t.white {
			pdf.SetTextColor(255, 255, 255)
		} else {
			pdf.SetTextColor(0, 0, 0)
		}
		s := tr(t.s)
		x := t.x
		if t.centerW > 0 {
			x += (t.centerW - pdf.GetStringWidth(s)) / 2
		}
		pdf.Text(x, t.base, s)
	}
	pdf.SetLineCapStyle("round")
	for _, sl := range lay.slashes {
		pdf.SetLineWidth(sl.line)
		pdf.Line(sl.x, sl.y+sl.h, sl.x+sl.w, sl.y)
	}
	pdf.SetLineCapStyle("butt")

	dot := lay.dotMM()
	_, pageH := pdf.GetPageSize()
	for _, c := range lay.codes() {
		side := float64(c.sideDots()) * dot
		pdf.RawWriteStr(inlineImage(c.sym.image(c.module, c.sideDots()), float64(c.x)*dot, pageH-float64(c.y)*dot-side, side))
	}
	return pdf.Error()
}

// inlineImage returns page content that draws img, a black-and-white
// gray image, as a 1-bit inline image (PDF 32000-1 8.9.7) in a square of
// side mm whose bottom-left corner is at x, y mm from the page's
// bottom-left corner.
//
// The code is inline rather than an image XObject because fpdf orders
// XObjects by pixel width alone, starting from Go's randomised map order:
// two different codes of the same size (every QR code of a bag sheet)
// would then be written in a random order, and the same labels would not
// give the same bytes. Inline, each code sits in its own page's content.
// Its rows are packed 8 pixels a byte (1 is white, as in DeviceGray),
// Flate-compressed and hex-encoded (ASCIIHexDecode), so the data can
// never contain the EI operator that ends it.
func inlineImage(img *image.Gray, x, y, side float64) string {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	row := make([]byte, (w+7)/8)
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.DefaultCompression)
	for r := 0; r < h; r++ {
		clear(row)
		for i, p := range img.Pix[r*img.Stride : r*img.Stride+w] {
			if p >= 0x80 {
				row[i/8] |= 0x80 >> (i % 8)
			}
		}
		_, _ = zw.Write(row)
	}
	_ = zw.Close()
	const k = 72 / 25.4 // points per millimetre
	var b strings.Builder
	fmt.Fprintf(&b, "q %.5f 0 0 %.5f %.5f %.5f cm\nBI /W %d /H %d /CS /G /BPC 1 /F [/AHx /Fl] ID\n", side*k, side*k, x*k, y*k, w, h)
	hx := hex.EncodeToString(z.Bytes())
	for len(hx) > 128 {
		b.WriteString(hx[:128])
		b.WriteByte('\n')
		hx = hx[128:]
	}
	b.WriteString(hx)
	b.WriteString(">\nEI Q")
	return b.String()
}
