package labels

import (
	"bytes"
	"errors"
	"image/png"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// contentOf is the custody content of a fixture label.
func contentOf(l Label, registered time.Time) custody.LabelContent {
	return custody.LabelContent{
		Bag: l.Bag, Product: l.Product, DIN: l.DIN, PatientName: l.PatientName, BirthDate: l.BirthDate,
		TimeLabel: l.TimeLabel, Time: l.Time, Site: "site", Storage: l.Storage, Facility: l.Facility,
		ProductCode: l.ProductCode, Registered: registered, RegisteredSeq: 7,
	}
}

func TestParseOptions(t *testing.T) {
	for in, want := range map[string]Symbology{"": QR, "qr": QR, "QR": QR, "datamatrix": DataMatrix, "DataMatrix": DataMatrix} {
		if got, err := ParseSymbology(in); err != nil || got != want {
			t.Errorf("ParseSymbology(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"pdf417", "dm", " qr", "aztec"} {
		if _, err := ParseSymbology(in); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("ParseSymbology(%q): %v, want ErrInvalid", in, err)
		}
	}
	for in, want := range map[string]Format{"pdf": FormatPDF, "PNG": FormatPNG, "zpl": FormatZPL} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "svg", "jpeg"} {
		if _, err := ParseFormat(in); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("ParseFormat(%q): %v, want ErrInvalid", in, err)
		}
	}
}

// TestRender checks that Render gives what the writers give for the same
// labels, with the PDF dated by the latest registering record.
func TestRender(t *testing.T) {
	aph, fp := aphLabel(t), fpLabel(t)
	early, late := time.Date(2026, 3, 14, 8, 31, 5, 0, time.UTC), time.Date(2026, 4, 2, 16, 0, 0, 0, time.UTC)
	contents := []custody.LabelContent{contentOf(aph, early), contentOf(fp, late)}
	berlin := zone(t, "Europe/Berlin")

	t.Run("pdf", func(t *testing.T) {
		o := Options{Zone: berlin, Symbology: DataMatrix}
		var got, want bytes.Buffer
		if err := Render(&got, FormatPDF, contents, o); err != nil {
			t.Fatal(err)
		}
		a, f := aph, fp
		a.Zone, f.Zone, a.Symbology, f.Symbology = berlin, berlin, DataMatrix, DataMatrix
		if err := WritePDF(&want, []Label{a, f}, DefaultStock, late); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Error("Render PDF differs from WritePDF dated by the latest registration")
		}
		if !strings.Contains(got.String(), "/CreationDate (D:20260402160000)") {
			t.Error("creation date is not the latest registration")
		}
	})
	t.Run("zpl", func(t *testing.T) {
		var got bytes.Buffer
		st := Stock{WidthMM: 76.2, HeightMM: 50.8, DPI: 203}
		if err := Render(&got, FormatZPL, contents, Options{Stock: st}); err != nil {
			t.Fatal(err)
		}
		a, f := aph, fp
		a.Zone, f.Zone, f.Symbology = time.UTC, time.UTC, QR
		var want bytes.Buffer
		for _, l := range []Label{a, f} {
			if err := WriteZPL(&want, l, st); err != nil {
				t.Fatal(err)
			}
		}
		if got.String() != want.String() {
			t.Error("Render ZPL differs from WriteZPL of each label")
		}
		if strings.Count(got.String(), "^XA") != 2 {
			t.Error("want one format per label")
		}
	})
	t.Run("png", func(t *testing.T) {
		for _, size := range []int{0, 300} {
			var got bytes.Buffer
			if err := Render(&got, FormatPNG, contents[1:], Options{PNGSize: size}); err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(&got)
			if err != nil {
				t.Fatal(err)
			}
			want := size
			if want == 0 {
				want = DefaultPNGSize
			}
			if img.Bounds().Dx() != want {
				t.Errorf("size %d: image %v", size, img.Bounds())
			}
			checkDecoded(t, decode(t, img, QR).GetText(), FromContent(contents[1], Options{}))
		}
	})
	t.Run("refusals write nothing", func(t *testing.T) {
		bad := contentOf(aph, early)
		bad.PatientName = "山田 太郎"
		for _, tc := range []struct {
			name     string
			f        Format
			contents []custody.LabelContent
			o        Options
		}{
			{"no labels", FormatPDF, nil, Options{}},
			{"two PNGs", FormatPNG, contents, Options{}},
			{"PNG too small", FormatPNG, contents[:1], Options{PNGSize: 20}},
			{"PNG too large", FormatPNG, contents[:1], Options{PNGSize: MaxPNGSize + 1}},
			{"unprintable name pdf", FormatPDF, []custody.LabelContent{contents[0], bad}, Options{}},
			{"unprintable name zpl", FormatZPL, []custody.LabelContent{contents[0], bad}, Options{}},
			{"unprintable name png", FormatPNG, []custody.LabelContent{bad}, Options{}},
			{"bad stock", FormatPDF, contents, Options{Stock: Stock{WidthMM: 20, HeightMM: 10, DPI: 300}}},
			{"unknown format", Format("svg"), contents, Options{}},
			{"unregistered", FormatPDF, []custody.LabelContent{contentOf(aph, time.Time{})}, Options{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var buf bytes.Buffer
				if err := Render(&buf, tc.f, tc.contents, tc.o); !errors.Is(err, custody.ErrInvalid) || buf.Len() != 0 {
					t.Errorf("err = %v with %d bytes written, want ErrInvalid and nothing", err, buf.Len())
				}
			})
		}
	})
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		ok   bool
	}{
		{"zero", Options{}, true},
		{"data matrix on 203 dpi 4x3 in", Options{Symbology: DataMatrix, Stock: Stock{101.6, 76.2, 203}, PNGSize: 100}, true},
		{"largest PNG", Options{PNGSize: MaxPNGSize}, true},
		{"bad symbology", Options{Symbology: 9}, false},
		{"small stock", Options{Stock: Stock{40, 30, 300}}, false},
		{"low dpi", Options{Stock: Stock{76.2, 50.8, 96}}, false},
		{"negative PNG", Options{PNGSize: -1}, false},
		{"huge PNG", Options{PNGSize: MaxPNGSize + 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if tc.ok != (err == nil) || err != nil && !errors.Is(err, custody.ErrInvalid) {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestContentType(t *testing.T) {
	for f, want := range map[Format]string{FormatPNG: "image/png", FormatPDF: "application/pdf", FormatZPL: "text/plain; charset=utf-8"} {
		if got := ContentType(f); got != want {
			t.Errorf("ContentType(%s) = %q, want %q", f, got, want)
		}
	}
}

// TestFromContentZone checks that a label's times are in its registered
// site's zone, and in the default zone (then UTC) for a site from before
// the network.
func TestFromContentZone(t *testing.T) {
	chicago, berlin := zone(t, "America/Chicago"), zone(t, "Europe/Berlin")
	c := contentOf(aphLabel(t), time.Date(2026, 3, 14, 8, 31, 5, 0, time.UTC))
	for _, tc := range []struct {
		name      string
		site, def *time.Location
		want      *time.Location
	}{
		{"registered site over default", chicago, berlin, chicago},
		{"registered site, no default", berlin, nil, berlin},
		{"old site, default", nil, berlin, berlin},
		{"old site, no default", nil, nil, time.UTC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := c
			c.Zone = tc.site
			if got := FromContent(c, Options{Zone: tc.def}).Zone; got != tc.want {
				t.Errorf("zone %v, want %v", got, tc.want)
			}
		})
	}
}
