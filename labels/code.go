package labels

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"

	"github.com/boombuler/barcode/datamatrix"
	"github.com/coid-project/coid/custody"
	qrcode "github.com/skip2/go-qrcode"
)

// MaxPNGSize is the largest image side, in pixels, WritePNG renders.
const MaxPNGSize = 4096

// Quiet zones, in modules on each side of a symbol: ISO/IEC 18004 asks 4
// for QR; ISO/IEC 16022 asks 1 for Data Matrix, and 2 gives scanners margin.
const (
	qrQuiet = 4
	dmQuiet = 2
)

// symbol is an encoded 2-D code: a grid of modules, true for dark.
type symbol struct {
	cols, rows int
	quiet      int    // quiet zone, in modules, on each side
	dark       []bool // rows*cols, row major
}

// side is the symbol's larger side in modules, quiet zone included.
func (s symbol) side() int { return max(s.cols, s.rows) + 2*s.quiet }

// encode encodes payload in the given symbology.
func encode(payload string, sym Symbology) (symbol, error) {
	if payload == "" || len(payload) > custody.MaxCodeLen {
		return symbol{}, fmt.Errorf("encode %s: payload of %d bytes, want 1-%d: %w", sym, len(payload), custody.MaxCodeLen, custody.ErrInvalid)
	}
	for i := 0; i < len(payload); i++ {
		if c := payload[i]; c < 0x20 || c > 0x7e {
			return symbol{}, fmt.Errorf("encode %s: payload byte %#x at %d is not printable ASCII: %w", sym, c, i, custody.ErrInvalid)
		}
	}
	switch sym {
	case QR:
		q, err := qrcode.New(payload, qrcode.Highest) // Highest is level H
		if err != nil {
			return symbol{}, fmt.Errorf("encode QR: %v: %w", err, custody.ErrInvalid)
		}
		q.DisableBorder = true
		bm := q.Bitmap()
		s := symbol{cols: len(bm), rows: len(bm), quiet: qrQuiet, dark: make([]bool, 0, len(bm)*len(bm))}
		for _, row := range bm {
			s.dark = append(s.dark, row...)
		}
		return s, nil
	case DataMatrix:
		bc, err := datamatrix.Encode(payload)
		if err != nil {
			return symbol{}, fmt.Errorf("encode DataMatrix: %v: %w", err, custody.ErrInvalid)
		}
		b := bc.Bounds()
		s := symbol{cols: b.Dx(), rows: b.Dy(), quiet: dmQuiet, dark: make([]bool, 0, b.Dx()*b.Dy())}
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				s.dark = append(s.dark, color.GrayModel.Convert(bc.At(x, y)).(color.Gray).Y < 128)
			}
		}
		return s, nil
	}
	return symbol{}, fmt.Errorf("encode: unknown symbology %d: %w", int(sym), custody.ErrInvalid)
}

// image renders the symbol with px pixels per module, its quiet zone
// included, centred on a white square of side size (at least s.side()*px).
func (s symbol) image(px, size int) *image.Gray {
	img := image.NewGray(image.Rect(0, 0, size, size))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	x0 := (size - s.cols*px) / 2
	y0 := (size - s.rows*px) / 2
	for r := 0; r < s.rows; r++ {
		for c := 0; c < s.cols; c++ {
			if !s.dark[r*s.cols+c] {
				continue
			}
			for y := y0 + r*px; y < y0+(r+1)*px; y++ {
				row := img.Pix[y*img.Stride:]
				for x := x0 + c*px; x < x0+(c+1)*px; x++ {
					row[x] = 0
				}
			}
		}
	}
	return img
}

// pngBytes encodes the symbol as a PNG with px pixels per module and no
// extra margin beyond the quiet zone.
func (s symbol) pngBytes(px int) ([]byte, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, s.image(px, s.side()*px)); err != nil {
		return nil, fmt.Errorf("encode png: %w", err)
	}
	return buf.Bytes(), nil
}

// WritePNG writes payload as a 2-D code in an 8-bit grayscale PNG of
// sizePx x sizePx pixels. Each module is a whole number of pixels, the
// largest that fits with the quiet zone; pixels left over widen the white
// margin. The payload must be 1 to custody.MaxCodeLen bytes of printable
// ASCII, and sizePx at most MaxPNGSize and at least one pixel per module;
// otherwise the error wraps custody.ErrInvalid. The same arguments always
// give the same bytes.
func WritePNG(w io.Writer, payload string, sym Symbology, sizePx int) error {
	s, err := encode(payload, sym)
	if err != nil {
		return fmt.Errorf("write png: %w", err)
	}
	if sizePx < s.side() || sizePx > MaxPNGSize {
		return fmt.Errorf("write png: size %d px, want %d-%d for this %s code: %w", sizePx, s.side(), MaxPNGSize, sym, custody.ErrInvalid)
	}
	if err := png.Encode(w, s.image(sizePx/s.side(), sizePx)); err != nil {
		return fmt.Errorf("write png: %w", err)
	}
	return nil
}
