package labels

import (
	"bytes"
	"io"
	"sync"
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestDeterministic renders the same labels from several goroutines at
// once: every render gives the same bytes, and the race detector sees the
// shared state (font metrics) used safely.
func TestDeterministic(t *testing.T) {
	aph, fp := aphLabel(t), fpLabel(t)
	// A sheet of codes of one symbology and size: fpdf would write such
	// images in map order if they were XObjects.
	var sheet []Label
	for i := range 10 {
		l := aphLabel(t)
		l.Bag = custody.BagID{COI: mustCOI(t, "A9999", uint64(100+i)), Kind: custody.BagFinalProduct, N: i + 1}
		sheet = append(sheet, l)
	}
	renders := map[string]func(*bytes.Buffer) error{
		"pdf":   func(b *bytes.Buffer) error { return WritePDF(b, []Label{aph, fp}, DefaultStock, created) },
		"sheet": func(b *bytes.Buffer) error { return WritePDF(b, sheet, DefaultStock, created) },
		"zpl":   func(b *bytes.Buffer) error { return WriteZPL(b, fp, DefaultStock) },
		"png":   func(b *bytes.Buffer) error { return WritePNG(b, aph.Payload(), QR, 512) },
		"dm":    func(b *bytes.Buffer) error { return WritePNG(b, fp.Payload(), DataMatrix, 512) },
	}
	for name, render := range renders {
		t.Run(name, func(t *testing.T) {
			const n = 8
			out := make([][]byte, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					var b bytes.Buffer
					errs[i] = render(&b)
					out[i] = b.Bytes()
				})
			}
			wg.Wait()
			for i := range n {
				if errs[i] != nil {
					t.Fatal(errs[i])
				}
				if !bytes.Equal(out[i], out[0]) {
					t.Fatalf("render %d differs from render 0", i)
				}
			}
		})
	}
}

func BenchmarkLabelPNG(b *testing.B) {
	l := aphLabel(b)
	lay, err := layoutLabel(l, DefaultStock)
	if err != nil {
		b.Fatal(err)
	}
	size := lay.code.sideDots() // the size the label prints it
	b.ReportAllocs()
	for b.Loop() {
		if err := WritePNG(io.Discard, l.Payload(), l.Symbology, size); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLabelPDF and BenchmarkLabelZPL write one label in each
// symbology: Both encodes and draws two codes.
func BenchmarkLabelPDF(b *testing.B) {
	for _, sym := range []Symbology{QR, DataMatrix, Both} {
		b.Run(sym.String(), func(b *testing.B) {
			l := aphLabel(b)
			l.Symbology = sym
			labels := []Label{l}
			b.ReportAllocs()
			for b.Loop() {
				if err := WritePDF(io.Discard, labels, DefaultStock, created); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkLabelZPL(b *testing.B) {
	for _, sym := range []Symbology{QR, DataMatrix, Both} {
		b.Run(sym.String(), func(b *testing.B) {
			l := aphLabel(b)
			l.Symbology = sym
			b.ReportAllocs()
			for b.Loop() {
				if err := WriteZPL(io.Discard, l, DefaultStock); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSheetPDF10 renders a sheet of ten bags, one label per page.
func BenchmarkSheetPDF10(b *testing.B) {
	var labels []Label
	for i := range 10 {
		l := aphLabel(b)
		l.Bag = custody.BagID{COI: mustCOI(b, "A9999", uint64(100+i)), Kind: custody.BagFinalProduct, N: i + 1}
		labels = append(labels, l)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := WritePDF(io.Discard, labels, DefaultStock, created); err != nil {
			b.Fatal(err)
		}
	}
}
