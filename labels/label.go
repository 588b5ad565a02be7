package labels

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coid-project/coid/custody"
)

// Symbology selects the 2-D code printed on a label.
type Symbology int

// Symbologies. The zero value is QR.
const (
	// QR is a QR Code (model 2) at error correction level H; phones and
	// most hospital scanners read it.
	QR Symbology = iota
	// DataMatrix is a Data Matrix ECC 200 symbol, the 2-D symbology of ISBT
	// 128 container labels.
	DataMatrix
	// Both prints a QR code and a Data Matrix side by side on one label,
	// each carrying the same data. A PNG, which holds one code, is the QR
	// code.
	Both
)

// String returns "QR", "DataMatrix" or "Both", or a placeholder for an
// unknown value.
func (s Symbology) String() string {
	switch s {
	case QR:
		return "QR"
	case DataMatrix:
		return "DataMatrix"
	case Both:
		return "Both"
	}
	return fmt.Sprintf("Symbology(%d)", int(s))
}

func (s Symbology) valid() bool { return s == QR || s == DataMatrix || s == Both }

// Stock is the label stock a label is laid out for: its size in millimetres
// and the resolution of the printer that prints it, in dots per inch.
type Stock struct {
	WidthMM, HeightMM float64
	DPI               int
}

// DefaultStock is a 3 x 2 inch (76.2 x 50.8 mm) landscape cryobag label
// for a 300 dpi thermal transfer printer, a common size for cryogenic bag
// labels and a native resolution of Zebra label printers.
var DefaultStock = Stock{WidthMM: 76.2, HeightMM: 50.8, DPI: 300}

// Limits of the stock that writers accept.
const (
	// MinModuleMM is the smallest 2-D code module, in millimetres, that a
	// writer will lay out; a thermal printer at 300 dpi renders it as 3 dots.
	MinModuleMM = 0.25
	// MinStockScale is the smallest fraction of DefaultStock's width and
	// height that a stock may have; below it the text is too small to read.
	MinStockScale = 0.75
	// MinDPI is the lowest printer resolution accepted.
	MinDPI = 150
	// MaxDPI is the highest printer resolution accepted.
	MaxDPI = 600
)

func (s Stock) validate() error {
	if s.DPI < MinDPI || s.DPI > MaxDPI {
		return fmt.Errorf("stock: %d dpi is outside %d-%d: %w", s.DPI, MinDPI, MaxDPI, custody.ErrInvalid)
	}
	if !(s.WidthMM > 0 && s.HeightMM > 0) || s.WidthMM > 1000 || s.HeightMM > 1000 {
		return fmt.Errorf("stock: size %gx%g mm is not a label: %w", s.WidthMM, s.HeightMM, custody.ErrInvalid)
	}
	if s.scale() < MinStockScale {
		return fmt.Errorf("stock: %gx%g mm is smaller than %.0f%% of %gx%g mm: %w",
			s.WidthMM, s.HeightMM, MinStockScale*100, DefaultStock.WidthMM, DefaultStock.HeightMM, custody.ErrInvalid)
	}
	return nil
}

// scale is the factor the DefaultStock layout is multiplied by.
func (s Stock) scale() float64 {
	return min(s.WidthMM/DefaultStock.WidthMM, s.HeightMM/DefaultStock.HeightMM)
}

// Label is the content of one bag label.
type Label struct {
	// Product is the product name, for example "Autologous CAR-T cells".
	Product string
	// Bag is the bag the label goes on; its COI is the chain's.
	Bag custody.BagID
	// DIN is the collection's Donation Identification Number, or "" when
	// the bag has none.
	DIN custody.DIN
	// PatientName is printed on the label only; it never enters the code.
	PatientName string
	// BirthDate is the patient's date of birth, YYYY-MM-DD.
	BirthDate string
	// TimeLabel names Time, for example "Collected" or "Expires".
	TimeLabel string
	// Time is printed to the minute in Zone, with UTC beneath.
	Time time.Time
	// Zone is the site's local time zone; it must be set.
	Zone *time.Location
	// Storage is the storage condition, for example "Store at or below -150 C".
	Storage string
	// Facility is the issuing facility's name with its FIN, for example
	// "Example Cell Lab (FIN A9999)".
	Facility string
	// ProductCode is the ISBT 128 product code of the registered product,
	// or "" when the product has none.
	ProductCode string
	// Symbology selects the 2-D code; the zero value is QR.
	Symbology Symbology
	// Notice is a warning printed in reverse on a band across the foot of
	// the label, for example custody.LabelExceptionalRelease; "" prints
	// no band and leaves the label as it always was.
	Notice string
}

// Maximum lengths, in characters, of a label's free-text fields. Text
// within them can still be refused by a writer when its glyphs are too wide
// for the line even at the smallest legible size.
const (
	// MaxProductLen bounds Label.Product.
	MaxProductLen = 40
	// MaxPatientLen bounds Label.PatientName.
	MaxPatientLen = 40
	// MaxTimeLabelLen bounds Label.TimeLabel.
	MaxTimeLabelLen = 12
	// MaxStorageLen bounds Label.Storage.
	MaxStorageLen = 40
	// MaxFacilityLen bounds Label.Facility.
	MaxFacilityLen = 48
	// MaxNoticeLen bounds Label.Notice.
	MaxNoticeLen = 48
)

// Payload returns the content of the label's 2-D code: the ISBT 128
// compound message of custody.ISBTLabelPayload, with the expiry (in the
// site's zone) when the time printed is one. It is "" for a label that
// does not validate.
func (l Label) Payload() string {
	p, err := l.payload()
	if err != nil {
		return ""
	}
	return p
}

func (l Label) payload() (string, error) {
	var exp time.Time
	if l.TimeLabel == custody.LabelExpires && l.Zone != nil {
		exp = l.Time.In(l.Zone)
	}
	return custody.ISBTLabelPayload(l.Bag, l.DIN, l.ProductCode, exp)
}

// Validate reports whether the label can be printed. Every problem is an
// error wrapping custody.ErrInvalid that names the field (but never quotes
// the patient's name or birth date, since errors reach logs): a missing or
// malformed COI, bag, DIN or birth date, a missing time or zone, an unknown
// symbology, or free text that is empty, too long, contains control
// characters, or has characters the label fonts (cp1252) cannot print.
func (l Label) Validate() error {
	if err := validBag(l.Bag); err != nil {
		return err
	}
	if l.DIN != "" {
		d, err := custody.ParseDIN(string(l.DIN))
		if err != nil || d != l.DIN {
			return invalid("din %q is not a 13-character DIN without check character", l.DIN)
		}
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{
		{"product", l.Product, MaxProductLen},
		{"patient name", l.PatientName, MaxPatientLen},
		{"time label", l.TimeLabel, MaxTimeLabelLen},
		{"storage", l.Storage, MaxStorageLen},
		{"facility", l.Facility, MaxFacilityLen},
	} {
		if err := validText(f.name, f.v, f.max); err != nil {
			return err
		}
	}
	if l.Notice != "" {
		if err := validText("notice", l.Notice, MaxNoticeLen); err != nil {
			return err
		}
	}
	dob, err := time.Parse(time.DateOnly, l.BirthDate)
	if err != nil {
		return invalid("birth date is not YYYY-MM-DD")
	}
	if l.Time.IsZero() {
		return invalid("%s time is not set", strings.ToLower(l.TimeLabel))
	}
	if l.Zone == nil {
		return invalid("the site's time zone is not set")
	}
	if local := l.Time.In(l.Zone); dob.After(time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, time.UTC)) {
		return invalid("birth date is after the label time")
	}
	if !l.Symbology.valid() {
		return invalid("unknown symbology %d", int(l.Symbology))
	}
	if _, err := l.payload(); err != nil {
		return invalid("2-D code: %v", err)
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("validate label: "+format+": %w", append(args, custody.ErrInvalid)...)
}

func validBag(b custody.BagID) error {
	if b.COI == "" {
		return invalid("no COI")
	}
	if c, err := custody.ParseCOI(string(b.COI)); err != nil || c != b.COI {
		return invalid("COI %q is not a 15-character COI without check character", b.COI)
	}
	if b.Kind == "" {
		return invalid("no bag: a label names one bag of the chain")
	}
	if b.Kind != custody.BagApheresis && b.Kind != custody.BagFinalProduct {
		return invalid("bag kind %q is not APH or FP", b.Kind)
	}
	if b.N < 1 || b.N > 99 {
		return invalid("bag number %d is not 1-99", b.N)
	}
	return nil
}

func validText(name, v string, maxLen int) error {
	if strings.TrimSpace(v) == "" {
		return invalid("%s is empty", name)
	}
	if !utf8.ValidString(v) {
		return invalid("%s is not valid UTF-8", name)
	}
	if n := utf8.RuneCountInString(v); n > maxLen {
		return invalid("%s has %d characters, more than %d", name, n, maxLen)
	}
	for i, r := range v {
		if unicode.IsControl(r) {
			return invalid("%s has control character %U at byte %d", name, r, i)
		}
		if !printable(r) {
			if name == "patient name" { // errors reach logs: never a character of the name
				return invalid("%s has a character the label fonts (Latin-1, cp1252) cannot print", name)
			}
			return invalid("%s has %q, which the label fonts (Latin-1, cp1252) cannot print", name, r)
		}
	}
	return nil
}

// CheckEnrollment reports whether a chain's labels will be able to print
// the patient's name and the product name that an enrollment gives: the
// label fonts print Latin-1 (cp1252) only, MaxPatientLen and MaxProductLen
// characters at most. The service calls it before it writes the enroll
// record, since neither can be changed after (custody.Config.LabelText).
func CheckEnrollment(patientName, product string) error {
	if err := validText("patient name", patientName, MaxPatientLen); err != nil {
		return err
	}
	return validText("product", product, MaxProductLen)
}

// printable reports whether r is in cp1252, the code page of the PDF core
// fonts, and not a control character.
func printable(r rune) bool {
	if r >= 0x20 && r < 0x7f || r >= 0xa0 && r <= 0xff {
		return true
	}
	_, ok := cp1252High[r]
	return ok
}

// cp1252High maps the characters of cp1252 0x80-0x9f to their bytes.
var cp1252High = map[rune]byte{
	'€': 0x80, '‚': 0x82, 'ƒ': 0x83, '„': 0x84, '…': 0x85, '†': 0x86, '‡': 0x87,
	'ˆ': 0x88, '‰': 0x89, 'Š': 0x8a, '‹': 0x8b, 'Œ': 0x8c, 'Ž': 0x8e,
	'‘': 0x91, '’': 0x92, '“': 0x93, '”': 0x94, '•': 0x95, '–': 0x96, '—': 0x97,
	'˜': 0x98, '™': 0x99, 'š': 0x9a, '›': 0x9b, 'œ': 0x9c, 'ž': 0x9e, 'Ÿ': 0x9f,
}

// localTime formats the label time in the site's zone, with the zone's
// abbreviation when it has one, and its UTC offset:
// "2026-03-14 09:30 CET (UTC+01:00)".
func (l Label) localTime() string {
	t := l.Time.In(l.Zone)
	abbr := t.Format("MST")
	s := t.Format("2006-01-02 15:04")
	if abbr != "" && abbr[0] != '+' && abbr[0] != '-' && abbr != "UTC" {
		s += " " + abbr
	}
	return s + " (UTC" + t.Format("-07:00") + ")"
}

// utcTime formats the label time in UTC: "2026-03-14 08:30 UTC".
func (l Label) utcTime() string { return l.Time.UTC().Format("2006-01-02 15:04") + " UTC" }
