package labels

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// zplRenderer returns the command that renders ZPL with zpl-renderer-js,
// an independent ZPL renderer from the npm registry installed (by .ci/run,
// or npm ci) under testdata/zplrender.
func zplRenderer(t *testing.T) []string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		skipUnlessCI(t, "node not installed (apt-get install nodejs npm)")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "zplrender"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "zpl-renderer-js")); err != nil {
		skipUnlessCI(t, "zpl-renderer-js not installed (cd labels/testdata/zplrender && npm ci)")
	}
	return []string{node, filepath.Join(dir, "render.cjs")}
}

// TestZPLRendered renders every ZPL label with an independent ZPL renderer
// and decodes its 2-D code from the rendering, as a printer would print it:
// each symbology, at 300 and 203 dpi. The Data Matrix is sized by the
// renderer's own encoder, since ^BX gives no rows or columns.
func TestZPLRendered(t *testing.T) {
	render := zplRenderer(t)
	for _, st := range []struct {
		stock Stock
		dpmm  int // the renderer's resolution, in the printer's nominal dots per millimetre
	}{
		{DefaultStock, 12},
		{Stock{WidthMM: 76.2, HeightMM: 50.8, DPI: 203}, 8},
	} {
		var ls []Label
		for _, sym := range []Symbology{QR, DataMatrix, Both} {
			for _, l := range []Label{aphLabel(t), fpLabel(t)} {
				l.Symbology = sym
				ls = append(ls, l)
			}
		}
		var zpl bytes.Buffer
		for _, l := range ls {
			if err := WriteZPL(&zpl, l, st.stock); err != nil {
				t.Fatal(err)
			}
		}
		dir := t.TempDir()
		in := filepath.Join(dir, "labels.zpl")
		if err := os.WriteFile(in, zpl.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		args := append(render[1:], in, filepath.Join(dir, "label"),
			fmt.Sprint(st.stock.WidthMM), fmt.Sprint(st.stock.HeightMM), fmt.Sprint(st.dpmm))
		cmd := exec.Command(render[0], args...)
		done := make(chan struct{})
		timer := time.AfterFunc(2*time.Minute, func() { // catches a hang only
			select {
			case <-done:
			default:
				_ = cmd.Process.Kill()
			}
		})
		out, err := cmd.CombinedOutput()
		close(done)
		timer.Stop()
		if err != nil {
			t.Fatalf("zpl-renderer-js: %v: %s", err, out)
		}
		for i, l := range ls {
			t.Run(fmt.Sprintf("%d/%s/%s", st.stock.DPI, l.Symbology, l.Bag), func(t *testing.T) {
				f, err := os.Open(filepath.Join(dir, fmt.Sprintf("label-%d.png", i)))
				if err != nil {
					t.Fatalf("label %d not rendered: %v", i, err)
				}
				defer f.Close()
				page, err := png.Decode(f)
				if err != nil {
					t.Fatal(err)
				}
				lay, err := layoutLabel(l, st.stock)
				if err != nil {
					t.Fatal(err)
				}
				syms := codeSymbologies(l)
				codes := lay.codes()
				if len(codes) != len(syms) {
					t.Fatalf("%s label lays out %d codes, want %d", l.Symbology, len(codes), len(syms))
				}
				for j, c := range codes {
					// The code's quiet-zone square, as a scanner aimed at
					// it sees it, on white; the printer's encoder may
					// choose a larger symbol, so the square grows to the
					// right and down, but never into the next code.
					side := c.sideDots() * 3 / 2
					r := image.Rect(c.x, c.y, c.x+side, c.y+side).Intersect(page.Bounds())
					if j+1 < len(codes) {
						r.Max.X = min(r.Max.X, codes[j+1].x)
					}
					crop := image.NewGray(image.Rect(0, 0, r.Dx()+2*c.sym.quiet*c.module, r.Dy()+2*c.sym.quiet*c.module))
					draw.Draw(crop, crop.Bounds(), image.White, image.Point{}, draw.Src)
					draw.Draw(crop, crop.Bounds().Add(image.Pt(c.sym.quiet*c.module, c.sym.quiet*c.module)), page, r.Min, draw.Src)
					checkDecoded(t, decode(t, crop, syms[j]).GetText(), l)
				}
			})
		}
	}
}
