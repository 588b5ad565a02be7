package labels

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// zplFontWidth is the width of ZPL's scalable font 0 relative to its
// height; 1 keeps the font's own proportions.
const zplFontWidth = 1.0

// WriteZPL writes l to w as one ZPL II label format (^XA ... ^XZ) for a
// Zebra printer loaded with stock. The format selects UTF-8 (^CI28), sets
// the print width and label length from the stock, and uses the resident
// scalable font 0. Every text field is written with ^FH and hex escapes
// (_5E for ^, _7E for ~, _5C for \, _5F for _ and every non-ASCII byte), so
// no field data can end a field or start a command. The QR code is
// ^BQN,2,m,H with ^FDHA, (level H, automatic mode); Data Matrix is
// ^BXN,m,200 (ECC 200) without columns and rows, so the printer's encoder
// chooses the symbol size: one that fixed them would print nothing when its
// encodation needs another size. Both carry Label.Payload. The
// label must be valid (see Label.Validate) and the stock able to carry it;
// otherwise the error wraps custody.ErrInvalid and nothing is written.
func WriteZPL(w io.Writer, l Label, stock Stock) error {
	if err := stock.validate(); err != nil {
		return fmt.Errorf("write zpl: %w", err)
	}
	if err := l.Validate(); err != nil {
		return fmt.Errorf("write zpl: %w", err)
	}
	lay, err := layoutLabel(l, stock)
	if err != nil {
		return fmt.Errorf("write zpl: %w", err)
	}
	var b strings.Builder
	dot := lay.dotMM()
	d := func(mm float64) int { return int(math.Round(mm / dot)) }

	b.WriteString("^XA\n^CI28\n")
	fmt.Fprintf(&b, "^PW%d\n^LL%d\n^LH0,0\n", d(stock.WidthMM), d(stock.HeightMM))
	for _, bx := range lay.boxes {
		wd, ht := max(d(bx.w), 1), max(d(bx.h), 1)
		t := max(d(bx.line), 1)
		if bx.fill {
			t = min(wd, ht)
		}
		fmt.Fprintf(&b, "^FO%d,%d^GB%d,%d,%d,B,0^FS\n", d(bx.x), d(bx.y), wd, ht, t)
	}
	for _, t := range lay.texts {
		h := max(d(t.em()), 1)
		fw := max(int(math.Round(float64(h)*zplFontWidth)), 1)
		rev := ""
		if t.white {
			rev = "^FR"
		}
		switch {
		case t.face == faceMono:
			// One fixed-pitch cell per character, so the slashes drawn
			// over zeros land on them whatever the font's own metrics:
			// each character is centred in a field block two cells wide
			// around its cell's centre, wide enough for any glyph.
			pitch := monoAdvance * t.em()
			for i := 0; i < len(t.s); i++ {
				center := t.x + (float64(i)+0.5)*pitch
				fmt.Fprintf(&b, "^FT%d,%d^A0N,%d,%d^FB%d,1,0,C^FH_^FD%s^FS\n",
					d(center-pitch), d(t.base), h, fw, 2*d(pitch), zplEscape(t.s[i:i+1]))
			}
		case t.centerW > 0:
			fmt.Fprintf(&b, "^FT%d,%d^A0N,%d,%d%s^FB%d,1,0,C^FH_^FD%s^FS\n",
				d(t.x), d(t.base), h, fw, rev, d(t.centerW), zplEscape(t.s))
		default:
			fmt.Fprintf(&b, "^FT%d,%d^A0N,%d,%d%s^FH_^FD%s^FS\n",
				d(t.x), d(t.base), h, fw, rev, zplEscape(t.s))
		}
	}
	for _, sl := range lay.slashes {
		fmt.Fprintf(&b, "^FO%d,%d^GD%d,%d,%d,B,R^FS\n",
			d(sl.x), d(sl.y), max(d(sl.w), 1), max(d(sl.h), 1), max(d(sl.line), 1))
	}
	for i, c := range lay.codes() {
		x, y := c.x+c.sym.quiet*c.module, c.y+c.sym.quiet*c.module
		if l.Symbology == DataMatrix || i == 1 {
			// Quality 200 (ECC 200) with no columns or rows: the printer's
			// encoder chooses the symbol size its encodation needs.
			fmt.Fprintf(&b, "^FO%d,%d^BXN,%d,200^FD%s^FS\n", x, y, c.module, l.Payload())
			continue
		}
		fmt.Fprintf(&b, "^FO%d,%d^BQN,2,%d,H^FDHA,%s^FS\n", x, y, c.module, l.Payload())
	}
	b.WriteString("^PQ1\n^XZ\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write zpl: %w", err)
	}
	return nil
}

// zplEscape prepares s for a field introduced by ^FH_: the characters
// that ZPL treats as command prefixes (^ and ~), the escape character _
// itself, the backslash (special in field blocks) and every byte outside
// printable ASCII are written as _ and two hex digits.
func zplEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '^' || c == '~' || c == '_' || c == '\\' {
			fmt.Fprintf(&b, "_%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
