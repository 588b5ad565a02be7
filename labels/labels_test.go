package labels

import (
	"bytes"
	"errors"
	"flag"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the fixtures use named zones

	"codeberg.org/go-pdf/fpdf"
	"github.com/coid-project/coid/custody"
	"github.com/makiuchi-d/gozxing"
	zxdatamatrix "github.com/makiuchi-d/gozxing/datamatrix"
	zxqrcode "github.com/makiuchi-d/gozxing/qrcode"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenDir holds the golden files, relative to the package.
const goldenDir = "../testdata/labels"

// created is the fixed creation time of the PDFs under test.
var created = time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)

// starCOI is a COI whose check character is '*', the one K that is not a
// digit or letter.
const starCOI custody.COI = "CHA999926000001"

func mustCOI(t testing.TB, fin string, seq uint64) custody.COI {
	t.Helper()
	c, err := custody.NewCOI(fin, 2026, seq)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func zone(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// aphLabel is the fixture label of an apheresis bag, with a DIN.
func aphLabel(t testing.TB) Label {
	t.Helper()
	return Label{
		Product:     "Autologous CAR-T cells",
		Bag:         custody.BagID{COI: mustCOI(t, "A9999", 2), Kind: custody.BagApheresis, N: 1},
		DIN:         "A999926000100",
		PatientName: "DOE, JANE MARIE",
		BirthDate:   "1970-01-31",
		TimeLabel:   "Collected",
		Time:        time.Date(2026, 3, 14, 8, 30, 0, 0, time.UTC),
		Zone:        zone(t, "Europe/Berlin"),
		Storage:     "Store at 2-8 C; do not freeze",
		Facility:    "Example Apheresis Center (FIN A9999)",
	}
}

// fpLabel is the fixture label of a final-product bag: the DIN of its
// collection, Data Matrix, a COI whose K is '*', accented letters, and a
// zone in daylight saving time.
func fpLabel(t testing.TB) Label {
	t.Helper()
	return Label{
		Product:     "Autologous CAR-T cells, cryopreserved",
		Bag:         custody.BagID{COI: starCOI, Kind: custody.BagFinalProduct, N: 2},
		DIN:         "B123426000042",
		PatientName: "O'NEILL-IBÁÑEZ, ZOË",
		BirthDate:   "1958-11-02",
		TimeLabel:   "Expires",
		Time:        time.Date(2027, 7, 1, 3, 59, 0, 0, time.UTC),
		Zone:        zone(t, "America/New_York"),
		Storage:     "Store at or below -150 °C",
		Facility:    "Example Cell Manufacturing (FIN B1234)",
		ProductCode: "S1234V00",
		Symbology:   DataMatrix,
	}
}

func TestStarCOI(t *testing.T) {
	if _, err := custody.ParseCOI(string(starCOI)); err != nil {
		t.Fatal(err)
	}
	if k := starCOI.K(); k != '*' {
		t.Fatalf("K(%s) = %c, want *", starCOI, k)
	}
}

// decode reads a 2-D code from img with gozxing's reader for sym.
func decode(t *testing.T, img image.Image, sym Symbology) *gozxing.Result {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	var r gozxing.Reader = zxqrcode.NewQRCodeReader()
	if sym == DataMatrix {
		r = zxdatamatrix.NewDataMatrixReader()
	}
	res, err := r.Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		t.Fatalf("decode %s: %v", sym, err)
	}
	return res
}

// codeSymbologies returns the symbology of each code a label with l's
// symbology prints, in the order of layout.codes.
func codeSymbologies(l Label) []Symbology {
	if l.Symbology == Both {
		return []Symbology{QR, DataMatrix}
	}
	return []Symbology{l.Symbology}
}

// checkDecoded asserts that text, read from a printed code by an
// independent decoder, is the payload of label l, that its ISBT 128 data
// structures parse back to what the label prints (COI, DIN, product code,
// expiry in the site's wall-clock time) and that a scan of it finds l's bag.
func checkDecoded(t *testing.T, text string, l Label) {
	t.Helper()
	if want := l.Payload(); text != want || want == "" {
		t.Fatalf("decoded %q, want %q", text, want)
	}
	d, err := custody.ParseISBT(text)
	if err != nil {
		t.Fatalf("ParseISBT(%q): %v", text, err)
	}
	want := custody.ISBTData{COI: l.Bag.COI, DIN: l.DIN, Divisions: custody.BagDivisions(l.Bag)}
	if l.DIN != "" {
		want.DINFlags = custody.DINFlagsNone
	}
	if l.ProductCode != "" {
		want.ProductCode = l.ProductCode[:6] + "99"
	}
	if l.TimeLabel == custody.LabelExpires {
		w := l.Time.In(l.Zone)
		want.Expires = time.Date(w.Year(), w.Month(), w.Day(), w.Hour(), w.Minute(), 0, 0, time.UTC)
	}
	if d != want {
		t.Fatalf("ISBT 128 data of %q = %+v, want %+v", text, d, want)
	}
	code, err := custody.ParseCode(text)
	if err != nil {
		t.Fatalf("ParseCode(%q): %v", text, err)
	}
	if code.COI != l.Bag.COI || code.Bag == nil || *code.Bag != l.Bag {
		t.Fatalf("ParseCode(%q) = %+v, want bag %v", text, code, l.Bag)
	}
}

// TestCodeRoundTrip renders each code at the size the label prints it
// and reads it back with a real decoder.
func TestCodeRoundTrip(t *testing.T) {
	bags := []custody.BagID{
		{COI: mustCOI(t, "A9999", 2), Kind: custody.BagApheresis, N: 1},
		{COI: mustCOI(t, "A9999", 2), Kind: custody.BagFinalProduct, N: 1},
		{COI: mustCOI(t, "G1234", 999999), Kind: custody.BagApheresis, N: 12},
		{COI: starCOI, Kind: custody.BagFinalProduct, N: 99},
		{COI: starCOI, Kind: custody.BagApheresis, N: 1},
		{COI: "CHA999926ZZ0O01", Kind: custody.BagFinalProduct, N: 3},
	}
	stocks := []Stock{DefaultStock, {WidthMM: 76.2, HeightMM: 50.8, DPI: 203}, {WidthMM: 101.6, HeightMM: 76.2, DPI: 600}}
	for _, sym := range []Symbology{QR, DataMatrix} {
		for _, st := range stocks {
			for _, bag := range bags {
				t.Run(sym.String()+"/"+bag.String()+"/"+strconv.Itoa(st.DPI), func(t *testing.T) {
					l := aphLabel(t)
					l.Bag, l.Symbology = bag, sym
					lay, err := layoutLabel(l, st)
					if err != nil {
						t.Fatal(err)
					}
					if mm := float64(lay.code.module) * lay.dotMM(); mm < MinModuleMM {
						t.Fatalf("module %.3f mm", mm)
					}
					// The PNG at the size the label prints it is the image
					// the PDF embeds, byte for byte.
					var buf bytes.Buffer
					if err := WritePNG(&buf, l.Payload(), sym, lay.code.sideDots()); err != nil {
						t.Fatal(err)
					}
					embedded, err := lay.code.sym.pngBytes(lay.code.module)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(buf.Bytes(), embedded) {
						t.Fatal("WritePNG at the label's size differs from the embedded image")
					}
					img, err := png.Decode(&buf)
					if err != nil {
						t.Fatal(err)
					}
					checkDecoded(t, decode(t, img, sym).GetText(), l)
				})
			}
		}
	}
}

func TestQRIsLevelH(t *testing.T) {
	for _, coi := range []custody.COI{starCOI, mustCOI(t, "A9999", 2)} {
		bag := custody.BagID{COI: coi, Kind: custody.BagFinalProduct, N: 1}
		s, err := encode(custody.LabelPayload(bag), QR)
		if err != nil {
			t.Fatal(err)
		}
		// A 25-character alphanumeric payload needs version 3 (29
		// modules) at level H; version 2 holds only 16 such characters.
		if s.cols != 29 || s.rows != 29 {
			t.Fatalf("QR is %dx%d modules, want 29x29 (version 3)", s.cols, s.rows)
		}
		res := decode(t, s.image(4, s.side()*4), QR)
		if level := res.GetResultMetadata()[gozxing.ResultMetadataType_ERROR_CORRECTION_LEVEL]; level != "H" {
			t.Fatalf("error correction level %v, want H", level)
		}
	}
}

func TestWritePNG(t *testing.T) {
	payload := aphLabel(t).Payload()
	for _, tc := range []struct {
		name    string
		payload string
		sym     Symbology
		size    int
		ok      bool
	}{
		{"qr 512", payload, QR, 512, true},
		{"qr odd size", payload, QR, 333, true},
		{"qr one px per module", payload, QR, 45, true},
		{"dm 300", payload, DataMatrix, 300, true},
		{"dm one px per module", payload, DataMatrix, 26, true},
		{"qr too small", payload, QR, 44, false},
		{"too large", payload, QR, MaxPNGSize + 1, false},
		{"empty payload", "", QR, 300, false},
		{"non-ASCII payload", "C1:É", DataMatrix, 300, false},
		{"control in payload", "C1:\n", QR, 300, false},
		{"over-long payload", strings.Repeat("A", custody.MaxCodeLen+1), QR, 1000, false},
		{"bad symbology", payload, Symbology(7), 300, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a, b bytes.Buffer
			err := WritePNG(&a, tc.payload, tc.sym, tc.size)
			if !tc.ok {
				if !errors.Is(err, custody.ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := WritePNG(&b, tc.payload, tc.sym, tc.size); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Fatal("two renders differ")
			}
			img, err := png.Decode(bytes.NewReader(a.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if r := img.Bounds(); r.Dx() != tc.size || r.Dy() != tc.size {
				t.Fatalf("image is %v, want %dx%d", r, tc.size, tc.size)
			}
			if tc.size < 100 {
				return // one pixel per module: too fine for the detector
			}
			if got := decode(t, img, tc.sym).GetText(); got != tc.payload {
				t.Fatalf("decoded %q, want %q", got, tc.payload)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Label)
	}{
		{"no COI", func(l *Label) { l.Bag.COI = "" }},
		{"short COI", func(l *Label) { l.Bag.COI = "CHA99992600000" }},
		{"COI with K", func(l *Label) { l.Bag.COI += "Y" }},
		{"lower-case COI", func(l *Label) { l.Bag.COI = custody.COI(strings.ToLower(string(l.Bag.COI))) }},
		{"no bag", func(l *Label) { l.Bag.Kind, l.Bag.N = "", 0 }},
		{"bad bag kind", func(l *Label) { l.Bag.Kind = "XX" }},
		{"bag number 0", func(l *Label) { l.Bag.N = 0 }},
		{"bag number 100", func(l *Label) { l.Bag.N = 100 }},
		{"short DIN", func(l *Label) { l.DIN = "A99992600010" }},
		{"DIN with K", func(l *Label) { l.DIN += "2" }},
		{"no product", func(l *Label) { l.Product = "" }},
		{"blank product", func(l *Label) { l.Product = "   " }},
		{"no patient", func(l *Label) { l.PatientName = "" }},
		{"no storage", func(l *Label) { l.Storage = "" }},
		{"no facility", func(l *Label) { l.Facility = "" }},
		{"no time label", func(l *Label) { l.TimeLabel = "" }},
		{"long product", func(l *Label) { l.Product = strings.Repeat("x", MaxProductLen+1) }},
		{"long patient", func(l *Label) { l.PatientName = strings.Repeat("É", MaxPatientLen+1) }},
		{"long storage", func(l *Label) { l.Storage = strings.Repeat("x", MaxStorageLen+1) }},
		{"long facility", func(l *Label) { l.Facility = strings.Repeat("x", MaxFacilityLen+1) }},
		{"long time label", func(l *Label) { l.TimeLabel = "Collected at site" }},
		{"newline", func(l *Label) { l.PatientName = "DOE\nJANE" }},
		{"carriage return", func(l *Label) { l.Product = "CAR-T\r" }},
		{"tab", func(l *Label) { l.Storage = "Store\tcold" }},
		{"NUL", func(l *Label) { l.Facility = "Lab\x00" }},
		{"DEL", func(l *Label) { l.Product = "CAR-T\x7f" }},
		{"C1 control", func(l *Label) { l.Facility = "Lab\u0085" }},
		{"invalid UTF-8", func(l *Label) { l.PatientName = "DOE \xff" }},
		{"not in cp1252", func(l *Label) { l.PatientName = "ŁUKASZ" }},
		{"CJK", func(l *Label) { l.PatientName = "山田 太郎" }},
		{"bad birth date", func(l *Label) { l.BirthDate = "31/01/1970" }},
		{"impossible birth date", func(l *Label) { l.BirthDate = "1970-02-30" }},
		{"birth after time", func(l *Label) { l.BirthDate = "2026-03-15" }},
		{"no time", func(l *Label) { l.Time = time.Time{} }},
		{"no zone", func(l *Label) { l.Zone = nil }},
		{"bad symbology", func(l *Label) { l.Symbology = Both + 1 }},
		{"negative symbology", func(l *Label) { l.Symbology = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := aphLabel(t)
			tc.edit(&l)
			err := l.Validate()
			if !errors.Is(err, custody.ErrInvalid) {
				t.Fatalf("Validate() = %v, want ErrInvalid", err)
			}
			if !strings.HasPrefix(err.Error(), "validate label: ") {
				t.Errorf("error %q lacks the operation prefix", err)
			}
			var buf bytes.Buffer
			if err := WriteZPL(&buf, l, DefaultStock); !errors.Is(err, custody.ErrInvalid) || buf.Len() != 0 {
				t.Errorf("WriteZPL = %v with %d bytes, want ErrInvalid and nothing written", err, buf.Len())
			}
			if err := WritePDF(&buf, []Label{aphLabel(t), l}, DefaultStock, created); !errors.Is(err, custody.ErrInvalid) || buf.Len() != 0 {
				t.Errorf("WritePDF = %v with %d bytes, want ErrInvalid and nothing written", err, buf.Len())
			} else if !strings.Contains(err.Error(), "label 1") {
				t.Errorf("WritePDF error %q does not name label 1", err)
			}
		})
	}
	for _, l := range []Label{aphLabel(t), fpLabel(t)} {
		if err := l.Validate(); err != nil {
			t.Errorf("fixture %s: %v", l.Bag, err)
		}
	}
}

// TestPrintableMatchesFPDF checks that the characters Validate accepts are
// exactly those fpdf's cp1252 translator maps, so no accepted character is
// printed as a substitute.
func TestPrintableMatchesFPDF(t *testing.T) {
	tr := fpdf.New("P", "mm", "A4", "").UnicodeTranslatorFromDescriptor("")
	for r := rune(0x20); r < 0x3000; r++ {
		if r == 0x7f || r >= 0x80 && r < 0xa0 {
			if printable(r) {
				t.Errorf("%U is a control character but printable", r)
			}
			continue
		}
		out := tr(string(r))
		mapped := len(out) == 1 && (out != "." || r == '.')
		if mapped != printable(r) {
			t.Errorf("%U %q: fpdf maps it: %v, printable: %v", r, r, mapped, printable(r))
		}
		if mapped && out[0] != cp1252Byte(r) {
			t.Errorf("%U: fpdf byte %#x, cp1252Byte %#x", r, out[0], cp1252Byte(r))
		}
	}
}

func TestLabelTimes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		zone       string
		utc        time.Time
		local, utx string
	}{
		{"winter Berlin", "Europe/Berlin", time.Date(2026, 3, 14, 8, 30, 59, 0, time.UTC), "2026-03-14 09:30 CET (UTC+01:00)", "2026-03-14 08:30 UTC"},
		{"summer Berlin", "Europe/Berlin", time.Date(2026, 7, 1, 22, 15, 0, 0, time.UTC), "2026-07-02 00:15 CEST (UTC+02:00)", "2026-07-01 22:15 UTC"},
		{"New York", "America/New_York", time.Date(2027, 7, 1, 3, 59, 0, 0, time.UTC), "2027-06-30 23:59 EDT (UTC-04:00)", "2027-07-01 03:59 UTC"},
		{"zone without abbreviation", "America/Sao_Paulo", time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), "2026-01-01 09:00 (UTC-03:00)", "2026-01-01 12:00 UTC"},
		{"Chicago on its spring-forward day, before", "America/Chicago", time.Date(2026, 3, 8, 7, 59, 0, 0, time.UTC), "2026-03-08 01:59 CST (UTC-06:00)", "2026-03-08 07:59 UTC"},
		{"Chicago on its spring-forward day, after", "America/Chicago", time.Date(2026, 3, 8, 8, 0, 0, 0, time.UTC), "2026-03-08 03:00 CDT (UTC-05:00)", "2026-03-08 08:00 UTC"},
		{"Berlin on its fall-back day, second 02:30", "Europe/Berlin", time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC), "2026-10-25 02:30 CET (UTC+01:00)", "2026-10-25 01:30 UTC"},
		{"Kolkata", "Asia/Kolkata", time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), "2026-01-01 17:30 IST (UTC+05:30)", "2026-01-01 12:00 UTC"},
		{"UTC", "UTC", time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), "2026-01-01 12:00 (UTC+00:00)", "2026-01-01 12:00 UTC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := Label{Time: tc.utc, Zone: zone(t, tc.zone)}
			if got := l.localTime(); got != tc.local {
				t.Errorf("local %q, want %q", got, tc.local)
			}
			if got := l.utcTime(); got != tc.utx {
				t.Errorf("utc %q, want %q", got, tc.utx)
			}
		})
	}
}

func TestStock(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stock Stock
		ok    bool
	}{
		{"default", DefaultStock, true},
		{"203 dpi", Stock{76.2, 50.8, 203}, true},
		{"600 dpi", Stock{76.2, 50.8, 600}, true},
		{"4x3 in", Stock{101.6, 76.2, 300}, true},
		{"2.5x1.75 in", Stock{63.5, 44.45, 300}, true},
		{"too small", Stock{50.8, 25.4, 300}, false},
		{"zero", Stock{}, false},
		{"negative", Stock{-76.2, 50.8, 300}, false},
		{"low dpi", Stock{76.2, 50.8, 100}, false},
		{"high dpi", Stock{76.2, 50.8, 1200}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			errZ := WriteZPL(&buf, aphLabel(t), tc.stock)
			errP := WritePDF(&buf, []Label{aphLabel(t), fpLabel(t)}, tc.stock, created)
			for _, err := range []error{errZ, errP} {
				if tc.ok && err != nil {
					t.Fatal(err)
				}
				if !tc.ok && !errors.Is(err, custody.ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
			}
		})
	}
}

func TestWritePDFArguments(t *testing.T) {
	var buf bytes.Buffer
	if err := WritePDF(&buf, nil, DefaultStock, created); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("no labels: %v", err)
	}
	if err := WritePDF(&buf, []Label{aphLabel(t)}, DefaultStock, time.Time{}); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("zero created: %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("%d bytes written on error", buf.Len())
	}
}

// TestLongText checks that long free text is set smaller but never cut,
// and that text which cannot fit is refused.
func TestLongText(t *testing.T) {
	l := aphLabel(t)
	l.PatientName = strings.Repeat("W", MaxPatientLen)
	if _, err := layoutLabel(l, DefaultStock); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("40 W: %v, want ErrInvalid", err)
	}
	l.PatientName = "MARIA DEL CARMEN GONZALEZ-RODRIGUEZ"
	l.TimeLabel = "Manufactured"
	lay, err := layoutLabel(l, DefaultStock)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tx := range lay.texts {
		if tx.s == l.PatientName {
			found = true
			if tx.size >= 9 || tx.size < minTextSize {
				t.Errorf("long name set at %.2f pt", tx.size)
			}
			if end := tx.x + textWidth(tx.face, tx.size, tx.s); end > DefaultStock.WidthMM-margin {
				t.Errorf("name ends at %.1f mm", end)
			}
		}
	}
	if !found {
		t.Error("patient name not laid out whole")
	}
}

// TestLayoutFits checks the layout of the fixtures: everything on the
// label, nothing in the code's quiet zone, a slash on every zero.
func TestLayoutFits(t *testing.T) {
	for _, st := range []Stock{DefaultStock, {76.2, 50.8, 203}, {101.6, 76.2, 300}, {63.5, 44.45, 600}} {
		for _, sym := range []Symbology{QR, DataMatrix, Both} {
			for _, l := range []Label{aphLabel(t), fpLabel(t)} {
				l.Symbology = sym
				t.Run(sym.String()+"/"+l.Bag.String()+"/"+strconv.Itoa(st.DPI), func(t *testing.T) {
					lay, err := layoutLabel(l, st)
					if sym == Both && st.WidthMM < DefaultStock.WidthMM && l.Bag.Kind == custody.BagFinalProduct {
						// The final-product payload is the longer one: side by
						// side, the two codes would need modules under
						// MinModuleMM on the small stock, so the label is
						// refused rather than printed unreadable.
						if !errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), "module") {
							t.Fatalf("layout = %v, want ErrInvalid naming the module size", err)
						}
						return
					}
					if err != nil {
						t.Fatal(err)
					}
					dot := lay.dotMM()
					codes := lay.codes()
					if len(codes) != len(codeSymbologies(l)) {
						t.Fatalf("%d codes laid out, want %d", len(codes), len(codeSymbologies(l)))
					}
					for i, c := range codes {
						qx0, qy0 := float64(c.x)*dot, float64(c.y)*dot
						qx1, qy1 := float64(c.x+c.sideDots())*dot, float64(c.y+c.sideDots())*dot
						if qx1 > st.WidthMM || qy1 > st.HeightMM {
							t.Errorf("code %d ends at %.1f,%.1f mm", i, qx1, qy1)
						}
						if float64(c.module)*dot < MinModuleMM-1e-9 {
							t.Errorf("code %d: module %.3f mm, under %.2f mm", i, float64(c.module)*dot, MinModuleMM)
						}
						for _, o := range codes[i+1:] {
							if c.x < o.x+o.sideDots() && o.x < c.x+c.sideDots() {
								t.Errorf("codes overlap: %d..%d and %d..%d dots", c.x, c.x+c.sideDots(), o.x, o.x+o.sideDots())
							}
						}
						for _, tx := range lay.texts {
							w := textWidth(tx.face, tx.size, tx.s)
							top := tx.base - tx.em()*0.75
							bottom := tx.base + tx.em()*0.22
							if tx.x < qx1 && tx.x+w > qx0 && top < qy1 && bottom > qy0 {
								t.Errorf("%q in code %d's quiet zone", tx.s, i)
							}
						}
					}
					zeros := 0
					for _, tx := range lay.texts {
						w := textWidth(tx.face, tx.size, tx.s)
						top := tx.base - tx.em()*0.75
						bottom := tx.base + tx.em()*0.22
						if tx.x < 0 || tx.x+w > st.WidthMM || top < 0 || bottom > st.HeightMM {
							t.Errorf("%q off the label", tx.s)
						}
						if tx.face == faceMono {
							zeros += strings.Count(tx.s, "0")
						}
					}
					if zeros == 0 || len(lay.slashes) != zeros {
						t.Errorf("%d slashes for %d zeros", len(lay.slashes), zeros)
					}
				})
			}
		}
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join(goldenDir, name)
	if *update {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./labels -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (%d bytes, want %d); if the change is intended, run go test ./labels -update and review the diff",
			name, len(got), len(want))
	}
}

// TestGolden compares the ZPL of the fixtures and the PDF of both with
// golden files, after checking that two renders give the same bytes.
func TestGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		render func(*bytes.Buffer) error
	}{
		{"aph.zpl", func(b *bytes.Buffer) error { return WriteZPL(b, aphLabel(t), DefaultStock) }},
		{"fp.zpl", func(b *bytes.Buffer) error { return WriteZPL(b, fpLabel(t), DefaultStock) }},
		{"labels.pdf", func(b *bytes.Buffer) error {
			return WritePDF(b, []Label{aphLabel(t), fpLabel(t)}, DefaultStock, created)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a, b bytes.Buffer
			if err := tc.render(&a); err != nil {
				t.Fatal(err)
			}
			if err := tc.render(&b); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Fatal("the same label rendered twice gives different bytes")
			}
			golden(t, tc.name, a.Bytes())
		})
	}
}
