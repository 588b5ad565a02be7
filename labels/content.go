package labels

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
)

// Format is an output format of Render.
type Format string

// Formats.
const (
	// FormatPNG is the 2-D code of one bag alone, as a PNG.
	FormatPNG Format = "png"
	// FormatPDF is one label per page at label-stock size.
	FormatPDF Format = "pdf"
	// FormatZPL is one ZPL II format (^XA ... ^XZ) per label.
	FormatZPL Format = "zpl"
)

// ParseFormat parses "png", "pdf" or "zpl" (any case).
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(s)); f {
	case FormatPNG, FormatPDF, FormatZPL:
		return f, nil
	}
	return "", fmt.Errorf("format %q: want pdf, png or zpl: %w", s, custody.ErrInvalid)
}

// ParseSymbology parses "qr", "datamatrix" or "both" (any case), the
// names a site's label symbol takes (custody.LabelSymbolQR and the
// others); "" is QR.
func ParseSymbology(s string) (Symbology, error) {
	switch strings.ToLower(s) {
	case "", custody.LabelSymbolQR:
		return QR, nil
	case custody.LabelSymbolDataMatrix:
		return DataMatrix, nil
	case custody.LabelSymbolBoth:
		return Both, nil
	}
	return 0, fmt.Errorf("symbology %q: want qr, datamatrix or both: %w", s, custody.ErrInvalid)
}

// DefaultPNGSize is the side, in pixels, of a PNG when Options.PNGSize is
// zero: 13 pixels per module for a bag's QR code, 21 for its Data Matrix.
const DefaultPNGSize = 512

// Options are the printing choices for labels made from custody content.
// The zero value prints QR codes on DefaultStock with times in UTC.
type Options struct {
	// Symbology selects the 2-D code.
	Symbology Symbology
	// FromSite prints each label with the symbol its site registered
	// (custody.LabelContent.LabelSymbol) where the site chose one, and
	// with Symbology where it did not. A caller sets it when the person
	// printing asked for no symbology.
	FromSite bool
	// Stock is the label stock; the zero value is DefaultStock.
	Stock Stock
	// Zone is the default time zone printed above UTC, for a label whose
	// site has no registered zone (a chain from before the network); a
	// registered site's zone (LabelContent.Zone) comes first. nil is UTC.
	Zone *time.Location
	// PNGSize is the side of a PNG in pixels; zero is DefaultPNGSize.
	PNGSize int
}

// Validate checks the options before any label content is fetched, so a
// request that could never print does not release patient identifiers:
// a known symbology, a stock that can carry a legible label (see WritePDF)
// and a PNG size from 0 to MaxPNGSize. A PNG size too small for the code
// is found only when the code is encoded. Errors wrap custody.ErrInvalid.
func (o Options) Validate() error {
	if !o.Symbology.valid() {
		return fmt.Errorf("label options: unknown symbology %d: %w", int(o.Symbology), custody.ErrInvalid)
	}
	if err := o.stock().validate(); err != nil {
		return fmt.Errorf("label options: %w", err)
	}
	if o.PNGSize < 0 || o.PNGSize > MaxPNGSize {
		return fmt.Errorf("label options: PNG size %d px is outside 1-%d: %w", o.PNGSize, MaxPNGSize, custody.ErrInvalid)
	}
	return nil
}

func (o Options) stock() Stock {
	if o.Stock == (Stock{}) {
		return DefaultStock
	}
	return o.Stock
}

// FromContent turns what the domain says a bag label shows into a Label.
func FromContent(c custody.LabelContent, o Options) Label {
	zone := c.Zone
	if zone == nil {
		zone = o.Zone
	}
	if zone == nil {
		zone = time.UTC
	}
	sym := o.Symbology
	if o.FromSite && c.LabelSymbol != "" {
		// The registry validated the site's symbol; one it did not (a
		// damaged entry) leaves the caller's choice.
		if s, err := ParseSymbology(c.LabelSymbol); err == nil {
			sym = s
		}
	}
	return Label{
		Product: c.Product, Bag: c.Bag, DIN: c.DIN, PatientName: c.PatientName, BirthDate: c.BirthDate,
		TimeLabel: c.TimeLabel, Time: c.Time, Zone: zone, Storage: c.Storage, Facility: c.Facility,
		ProductCode: c.ProductCode, Symbology: sym, Notice: c.Notice,
	}
}

// Render writes the labels of contents to w in format f:
//
//   - FormatPNG: exactly one bag's code, o.PNGSize pixels square.
//   - FormatPDF: one page per label, in order; the PDF's creation and
//     modification dates are the latest Registered time of the contents,
//     so the same labels always give the same bytes.
//   - FormatZPL: one ZPL II format per label, concatenated.
//
// Everything is rendered before anything is written, so on error w is
// untouched. Unprintable content (see Label.Validate), a bad stock or size,
// or a count the format does not take is an error wrapping
// custody.ErrInvalid.
func Render(w io.Writer, f Format, contents []custody.LabelContent, o Options) error {
	if len(contents) == 0 {
		return fmt.Errorf("render %s: no labels: %w", f, custody.ErrInvalid)
	}
	var buf bytes.Buffer
	switch f {
	case FormatPNG:
		if len(contents) != 1 {
			return fmt.Errorf("render png: a PNG is one bag's code, got %d labels: %w", len(contents), custody.ErrInvalid)
		}
		l := FromContent(contents[0], o)
		if err := l.Validate(); err != nil {
			return fmt.Errorf("render png: %w", err)
		}
		size := o.PNGSize
		if size == 0 {
			size = DefaultPNGSize
		}
		sym := l.Symbology
		if sym == Both {
			sym = QR // a PNG is one code
		}
		if err := WritePNG(&buf, l.Payload(), sym, size); err != nil {
			return fmt.Errorf("render: %w", err)
		}
	case FormatPDF:
		ls := make([]Label, len(contents))
		var created time.Time
		for i, c := range contents {
			ls[i] = FromContent(c, o)
			if c.Registered.After(created) {
				created = c.Registered
			}
		}
		if err := WritePDF(&buf, ls, o.stock(), created); err != nil {
			return fmt.Errorf("render: %w", err)
		}
	case FormatZPL:
		for i, c := range contents {
			if err := WriteZPL(&buf, FromContent(c, o), o.stock()); err != nil {
				return fmt.Errorf("render: label %d: %w", i, err)
			}
		}
	default:
		return fmt.Errorf("render: unknown format %q: %w", f, custody.ErrInvalid)
	}
	if _, err := buf.WriteTo(w); err != nil {
		return fmt.Errorf("render %s: %w", f, err)
	}
	return nil
}

// ContentType is the media type of format f: image/png, application/pdf,
// or, for ZPL, text/plain; charset=utf-8. ZPL has no registered media
// type; the text is ASCII (every other byte is escaped with ^FH), so
// text/plain lets a browser show it and any client send it to a printer's
// raw port unchanged.
func ContentType(f Format) string {
	switch f {
	case FormatPNG:
		return "image/png"
	case FormatPDF:
		return "application/pdf"
	}
	return "text/plain; charset=utf-8"
}
