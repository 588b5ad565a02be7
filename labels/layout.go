package labels

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"unicode/utf8"

	"codeberg.org/go-pdf/fpdf"
	"github.com/coid-project/coid/custody"
)

// The layout is designed in millimetres on DefaultStock and scaled by
// Stock.scale for other stocks. Text positions are baselines. Font sizes
// are in points before scaling.

// face is a typeface of the layout.
type face int

const (
	faceSans     face = iota // Helvetica
	faceSansBold             // Helvetica Bold
	faceMono                 // Courier Bold, for identifiers
)

const (
	ptMM = 25.4 / 72 // millimetres per point

	monoAdvance = 0.6 // Courier advance width, in em

	// Design geometry, in millimetres on DefaultStock.
	margin         = 2.0
	captionW       = 7.0  // caption column beside the code
	captionWideW   = 15.0 // caption column of full-width rows
	captionSize    = 6.0  // caption font size, pt
	minCaptionSize = 4.5  // a long time label's caption is never smaller, pt
	minTextSize    = 6.0  // free text is never set smaller, pt
	codeSideMax    = 19.0 // the code's quiet-zone square is at most this side
	codesBothMax   = 23.5 // Both: the two codes' quiet-zone squares side by side are at most this wide
	codeRightEdge  = 1.0  // the quiet zone may run into the margin up to here
	boxPad         = 0.7  // padding of the check character box
	boxLine        = 0.3  // stroke of the check character box
	autologous     = "FOR AUTOLOGOUS USE ONLY"
)

// textEl is one run of text.
type textEl struct {
	x, base float64 // left edge and baseline, mm
	size    float64 // pt
	face    face
	s       string // UTF-8
	white   bool   // reverse: white on a black box
	centerW float64
}

// em is the text's em size in millimetres.
func (t textEl) em() float64 { return t.size * ptMM }

// boxEl is a rectangle, filled black or stroked.
type boxEl struct {
	x, y, w, h float64 // mm
	line       float64 // stroke width, mm; 0 when filled
	fill       bool
}

// slashEl is a line from the bottom-left to the top-right corner of its box:
// the slash over a zero.
type slashEl struct {
	x, y, w, h float64 // mm
	line       float64 // mm
}

// codeEl is the 2-D code, placed on the printer's dot grid.
type codeEl struct {
	sym    symbol
	module int // dots per module
	x, y   int // top-left corner of the quiet zone, dots
}

// sideDots is the side of the code's quiet-zone square, in dots.
func (c codeEl) sideDots() int { return c.sym.side() * c.module }

// layout is a label laid out on a stock, in renderer-neutral elements.
type layout struct {
	stock   Stock
	boxes   []boxEl
	texts   []textEl
	slashes []slashEl
	code    codeEl
	// extra is the Data Matrix right of the QR code (code) of a label
	// printed with Both; nil otherwise.
	extra *codeEl
}

// codes returns the label's 2-D codes: the code, then the extra one.
func (lay *layout) codes() []codeEl {
	if lay.extra != nil {
		return []codeEl{lay.code, *lay.extra}
	}
	return []codeEl{lay.code}
}

func (lay *layout) dotMM() float64 { return 25.4 / float64(lay.stock.DPI) }

// widths holds the advance widths of the PDF core fonts per cp1252 byte, in
// thousandths of an em, read once from fpdf's metrics so text is measured
// the way the PDF sets it.
var widths = sync.OnceValue(func() *[3][256]int {
	var w [3][256]int
	pdf := fpdf.New("P", "mm", "A4", "")
	for f, style := range []struct{ family, style string }{
		faceSans: {"Helvetica", ""}, faceSansBold: {"Helvetica", "B"}, faceMono: {"Courier", "B"},
	} {
		pdf.SetFont(style.family, style.style, 10)
		for b := 1; b < 256; b++ {
			w[f][b] = pdf.GetStringSymbolWidth(string([]byte{byte(b)}))
		}
	}
	return &w
})

// textWidth is the width of s set in f at size pt, in millimetres.
func textWidth(f face, size float64, s string) float64 {
	w := widths()
	n := 0
	for _, r := range s {
		n += w[f][cp1252Byte(r)]
	}
	return float64(n) / 1000 * size * ptMM
}

// cp1252Byte returns r's byte in cp1252, or '?' for a character that
// Validate would have refused.
func cp1252Byte(r rune) byte {
	switch {
	case r < 0x80 || r >= 0xa0 && r <= 0xff:
		return byte(r)
	}
	if b, ok := cp1252High[r]; ok {
		return b
	}
	return '?'
}

// layoutLabel lays out a valid label on a valid stock.
func layoutLabel(l Label, st Stock) (*layout, error) {
	primary := l.Symbology
	if primary == Both {
		primary = QR
	}
	sym, err := encode(l.Payload(), primary)
	if err != nil {
		return nil, err
	}
	var dm symbol // Both: the Data Matrix right of the QR code
	if l.Symbology == Both {
		if dm, err = encode(l.Payload(), DataMatrix); err != nil {
			return nil, err
		}
	}
	s := st.scale()
	lay := &layout{stock: st}
	dot := lay.dotMM()
	left := margin * s
	right := st.WidthMM - margin*s
	fullW := right - left

	// Product name, then the autologous band, across the whole label.
	y := margin * s
	product, err := lay.fit(faceSansBold, 9*s, minTextSize*s, l.Product, fullW, "product")
	if err != nil {
		return nil, err
	}
	y += 0.72 * product * ptMM // cap height of Helvetica
	lay.texts = append(lay.texts, textEl{x: left, base: y, size: product, face: faceSansBold, s: l.Product})
	y += 1.1 * s
	bandH := 5.0 * s
	bandSize := 11 * s
	lay.boxes = append(lay.boxes, boxEl{x: left, y: y, w: fullW, h: bandH, fill: true})
	lay.texts = append(lay.texts, textEl{
		x: left, base: y + (bandH+0.72*bandSize*ptMM)/2, size: bandSize, face: faceSansBold,
		s: autologous, white: true, centerW: fullW,
	})
	y += bandH + 0.4*s

	// The code: its quiet-zone square at the top right, under the band.
	// Both: the Data Matrix there and the QR code left of it, top edges
	// aligned, with one module size.
	side, modules := codeSideMax*s, sym.side()
	if l.Symbology == Both {
		side, modules = codesBothMax*s, sym.side()+dm.side()
	}
	module := int(side / dot / float64(modules))
	module = min(module, 10) // ZPL's ^BQ magnification stops at 10
	if module < 1 || float64(module)*dot < MinModuleMM-1e-9 {
		return nil, fmt.Errorf("layout: a %s module would be %.2f mm, under %.2f mm, on %gx%g mm at %d dpi: %w",
			l.Symbology, float64(module)*dot, MinModuleMM, st.WidthMM, st.HeightMM, st.DPI, custody.ErrInvalid)
	}
	codeSide := sym.side() * module
	codeRight := int(math.Floor((st.WidthMM - codeRightEdge*s) / dot))
	lay.code = codeEl{sym: sym, module: module, x: codeRight - codeSide, y: int(math.Ceil(y / dot))}
	if l.Symbology == Both {
		// The Data Matrix at the right edge: a printer whose encoder
		// chooses a larger symbol grows it into the margin, not into the
		// QR code's quiet zone.
		lay.extra = &codeEl{sym: dm, module: module, x: codeRight - dm.side()*module, y: lay.code.y}
		lay.code.x = lay.extra.x - codeSide
	}
	codeLeft := float64(lay.code.x)*dot - 0.5*s
	codeBottom := float64(lay.code.y+codeSide) * dot

	// Identifiers and the date of birth beside the code.
	valueX := left + captionW*s
	y += 0.3 * s
	y = lay.identifier(y, left, valueX, 11*s, "COI", string(l.Bag.COI), l.Bag.COI.K())
	y += 2.0 * s
	bagSize := 9 * s
	y += 0.64 * bagSize * ptMM
	lay.caption(left, y, captionSize*s, "BAG")
	lay.mono(valueX, y, bagSize, l.Bag.String())
	y += 1.3 * s
	if l.DIN != "" {
		y = lay.identifier(y, left, valueX, 10*s, "DIN", string(l.DIN), l.DIN.K())
		y += 1.8 * s
	}
	// The date of birth sits on the code's bottom edge, next to the
	// patient's name below, however many identifier rows there are.
	y = max(y+0.72*9*s*ptMM, codeBottom-0.4*s)
	lay.caption(left, y, captionSize*s, "DOB")
	lay.texts = append(lay.texts, textEl{x: left + captionWideW*s, base: y, size: 9 * s, face: faceSansBold, s: l.BirthDate})
	for _, t := range lay.texts {
		if t.face == faceMono && t.x+textWidth(t.face, t.size, t.s) > codeLeft {
			return nil, fmt.Errorf("layout: identifier %s runs into the code: %w", t.s, custody.ErrInvalid)
		}
	}

	// Full-width rows under the code. A label with a notice sets them
	// closer, to leave room for its band at the foot.
	gapK := 1.0
	if l.Notice != "" {
		gapK = noticeGapK
	}
	y += 1.4 * s * gapK
	valueX = left + captionWideW*s
	valueW := right - valueX
	for _, row := range []struct {
		caption, value string
		size           float64
		face           face
		gap            float64 // space above the row's cap height, mm
	}{
		{"PATIENT", l.PatientName, 10, faceSansBold, 0},
		{strings.ToUpper(l.TimeLabel), l.localTime(), 8.5, faceSansBold, 1.8},
		{"", l.utcTime(), 8.5, faceSans, 1.0},
		{"STORAGE", l.Storage, 9, faceSansBold, 1.8},
		{"ISSUED BY", l.Facility, 7.5, faceSans, 1.6},
	} {
		size, err := lay.fit(row.face, row.size*s, minTextSize*s, row.value, valueW, strings.ToLower(row.caption))
		if err != nil {
			return nil, err
		}
		y += row.gap*s*gapK + 0.72*size*ptMM
		if row.caption != "" {
			capSize, err := lay.fit(faceSans, captionSize*s, minCaptionSize*s, row.caption, (captionWideW-0.8)*s, "time label")
			if err != nil {
				return nil, err
			}
			lay.caption(left, y, capSize, row.caption)
		}
		lay.texts = append(lay.texts, textEl{x: valueX, base: y, size: size, face: row.face, s: row.value})
	}
	if bottom := st.HeightMM - 0.8*margin*s; y > bottom {
		return nil, fmt.Errorf("layout: content ends at %.1f mm, past %.1f mm: %w", y, bottom, custody.ErrInvalid)
	}
	if l.Notice != "" {
		if err := lay.notice(l.Notice, y, left, fullW); err != nil {
			return nil, err
		}
	}
	return lay, nil
}

// Geometry of the notice band, in millimetres on DefaultStock.
const (
	noticeGapK  = 0.45 // the rows' gaps are multiplied by this on a label with a notice
	noticeBandH = 4.2  // height of the band
	noticeSize  = 8.0  // the notice's largest font size, pt
)

// notice adds the notice in reverse on a black band across the foot of
// the label, below the last row, whose baseline is at y.
func (lay *layout) notice(text string, y, left, fullW float64) error {
	s := lay.stock.scale()
	h := noticeBandH * s
	top := y + 0.9*s
	if bottom := lay.stock.HeightMM - 0.5*margin*s; top+h > bottom {
		return fmt.Errorf("layout: the notice band ends at %.1f mm, past %.1f mm: %w", top+h, bottom, custody.ErrInvalid)
	}
	size, err := lay.fit(faceSansBold, noticeSize*s, minTextSize*s, text, fullW-2*s, "notice")
	if err != nil {
		return err
	}
	lay.boxes = append(lay.boxes, boxEl{x: left, y: top, w: fullW, h: h, fill: true})
	lay.texts = append(lay.texts, textEl{x: left, base: top + (h+0.72*size*ptMM)/2, size: size, face: faceSansBold,
		s: text, white: true, centerW: fullW})
	return nil
}

// fit returns the largest size from size down to floor, in steps of a
// quarter point, at which s fits in width w.
func (lay *layout) fit(f face, size, floor float64, s string, w float64, field string) (float64, error) {
	for ; size >= floor-1e-9; size -= 0.25 {
		if textWidth(f, size, s) <= w {
			return size, nil
		}
	}
	// The text is not quoted: it may be the patient's name, and errors
	// travel to logs and clients that must not see it.
	return 0, fmt.Errorf("layout: %s (%d characters) is too wide to print on %gx%g mm even at %g pt: %w",
		field, utf8.RuneCountInString(s), lay.stock.WidthMM, lay.stock.HeightMM, floor, custody.ErrInvalid)
}

// caption adds a small caption at the left of a row.
func (lay *layout) caption(x, base, size float64, text string) {
	lay.texts = append(lay.texts, textEl{x: x, base: base, size: size, face: faceSans, s: text})
}

// identifier adds a row with an identifier and its boxed check character;
// top is the top of the row and the result its bottom.
func (lay *layout) identifier(top, captionX, x, size float64, caption, id string, k byte) float64 {
	em := size * ptMM
	digitH := 0.64 * em // Courier Bold digits and capitals stand 0.56-0.64 em
	base := top + boxPad + digitH
	lay.caption(captionX, base, captionSize*lay.stock.scale(), caption)
	lay.mono(x, base, size, id)
	kx := x + (float64(len(id))+0.8)*monoAdvance*em
	lay.mono(kx, base, size, string(k))
	lay.boxes = append(lay.boxes, boxEl{
		x: kx - boxPad, y: base - digitH - boxPad,
		w: monoAdvance*em + 2*boxPad, h: digitH + 2*boxPad, line: boxLine * lay.stock.scale(),
	})
	return base + boxPad
}

// mono adds an identifier in the monospace face with a slash over every
// zero.
func (lay *layout) mono(x, base, size float64, s string) {
	em := size * ptMM
	lay.texts = append(lay.texts, textEl{x: x, base: base, size: size, face: faceMono, s: s})
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			continue
		}
		// Courier Bold's zero spans 0.08-0.52 em across and 0.64 em up.
		cx := x + float64(i)*monoAdvance*em
		lay.slashes = append(lay.slashes, slashEl{
			x: cx + 0.14*em, y: base - 0.60*em, w: 0.32 * em, h: 0.62 * em, line: 0.07 * em,
		})
	}
}
