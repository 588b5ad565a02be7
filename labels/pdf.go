package labels

import (
	"bytes"
	"fmt"
	"io"
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

	c := lay.code
	img, err := c.sym.pngBytes(c.module)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("code-%d-%dx%d-%x", c.module, c.sym.cols, c.sym.rows, symbolKey(c.sym))
	opt := fpdf.ImageOptions{ImageType: "PNG"}
	pdf.RegisterImageOptionsReader(name, opt, bytes.NewReader(img))
	dot := lay.dotMM()
	side := float64(c.sideDots()) * dot
	pdf.ImageOptions(name, float64(c.x)*dot, float64(c.y)*dot, side, side, false, opt, 0, "")
	return pdf.Error()
}

// symbolKey packs a symbol's modules into bytes, naming its image uniquely.
func symbolKey(s symbol) []byte {
	k := make([]byte, (len(s.dark)+7)/8)
	for i, d := range s.dark {
		if d {
			k[i/8] |= 1 << (i % 8)
		}
	}
	return k
}
