package api

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/labels"
	"github.com/labstack/echo/v4"
)

// Bounds of the label query options.
const (
	// maxLabelPNGSize caps ?size= for label.png: a 2048 x 2048 grayscale
	// image is 4 MiB in memory, plenty for any screen or print.
	maxLabelPNGSize = 2048
	// maxZoneLen bounds ?zone=; IANA names are far shorter.
	maxZoneLen = 64
)

// registerLabelRoutes adds the label routes (issue: chain-of-identity labels).
//
//	GET /chains/{coi}/bags/{bag}/label.png   the bag's 2-D code alone
//	GET /chains/{coi}/bags/{bag}/label.pdf   the bag's label at label-stock size
//	GET /chains/{coi}/bags/{bag}/label.zpl   the bag's label as ZPL II
//	GET /chains/{coi}/labels.pdf             every bag of the chain, one label a page
//
// Labels show the patient's name and date of birth, so the domain allows
// only coordinator, nurse, manufacturing and qa (custody.LabelRoles) and
// logs every label it hands out. Responses are rendered whole before the
// first byte is sent, carry Cache-Control: no-store like every response,
// and are byte-for-byte the same for the same label and options: the PDF's
// dates are the time of the record that registered the bag (the latest
// such record on a sheet). The media types are image/png, application/pdf
// and, for ZPL, which has no registered type, text/plain; charset=utf-8
// (the ZPL is ASCII: every other byte is ^FH-escaped).
//
// Query options: symbology=qr|datamatrix|both (default: the label site's
// registered label_symbol, else qr; a PNG of both is the QR code); size, the PNG's side
// in pixels (default labels.DefaultPNGSize, at most maxLabelPNGSize);
// zone, the IANA time zone printed above UTC (default UTC: sites are
// free-text names, so the zone is not derived from them); dpi, width_mm
// and height_mm, the label stock of PDF and ZPL (default labels.DefaultStock,
// 3 x 2 in at 300 dpi).
func (s *Server) registerLabelRoutes(g *echo.Group) {
	g.GET("/chains/:coi/bags/:bag/label.png", s.bagLabel(labels.FormatPNG))
	g.GET("/chains/:coi/bags/:bag/label.pdf", s.bagLabel(labels.FormatPDF))
	g.GET("/chains/:coi/bags/:bag/label.zpl", s.bagLabel(labels.FormatZPL))
	g.GET("/chains/:coi/labels.pdf", s.chainLabels)
}

func (s *Server) bagLabel(f labels.Format) echo.HandlerFunc {
	return func(c echo.Context) error {
		coi, err := coiParam(c)
		if err != nil {
			return err
		}
		bag, err := bagParam(c, coi)
		if err != nil {
			return err
		}
		o, err := labelOptions(c, f, s.cfg.LabelZone)
		if err != nil {
			return err
		}
		lc, err := s.svc.LabelContent(c.Request().Context(), user(c), bag)
		if err != nil {
			return err
		}
		return sendLabels(c, f, []custody.LabelContent{lc}, o, bag.String())
	}
}

func (s *Server) chainLabels(c echo.Context) error {
	coi, err := coiParam(c)
	if err != nil {
		return err
	}
	o, err := labelOptions(c, labels.FormatPDF, s.cfg.LabelZone)
	if err != nil {
		return err
	}
	lcs, err := s.svc.ChainLabelContents(c.Request().Context(), user(c), coi)
	if err != nil {
		return err
	}
	return sendLabels(c, labels.FormatPDF, lcs, o, string(coi)+"-labels")
}

// sendLabels renders the labels and sends them with a Content-Disposition
// naming the file: inline for PNG and PDF, which browsers show and print,
// attachment for ZPL, which is sent on to a printer.
func sendLabels(c echo.Context, f labels.Format, lcs []custody.LabelContent, o labels.Options, name string) error {
	var buf bytes.Buffer
	if err := labels.Render(&buf, f, lcs, o); err != nil {
		return fmt.Errorf("label %s: %w", name, err)
	}
	disp := "inline"
	if f == labels.FormatZPL {
		disp = "attachment"
	}
	// name is a COI or bag ID: letters, digits and hyphens only.
	c.Response().Header().Set(echo.HeaderContentDisposition, fmt.Sprintf("%s; filename=%q", disp, name+"."+string(f)))
	return c.Blob(http.StatusOK, labels.ContentType(f), buf.Bytes())
}

// bagParam parses the {bag} path parameter, the whole bag ID
// ("<COI>-FP-01", the COI optionally with its check character), and checks
// that it names a bag of coi.
func bagParam(c echo.Context, coi custody.COI) (custody.BagID, error) {
	p := c.Param("bag")
	if c.Request().URL.RawPath != "" {
		u, err := url.PathUnescape(p)
		if err != nil {
			return custody.BagID{}, fmt.Errorf("bag ID in the path is not valid percent-encoding: %w", custody.ErrInvalid)
		}
		p = u
	}
	b, err := custody.ParseBagID(p)
	if err != nil {
		return custody.BagID{}, fmt.Errorf("bag in the path (want the whole bag ID, e.g. %s-FP-01): %w", coi, err)
	}
	if b.COI != coi {
		return custody.BagID{}, fmt.Errorf("bag %s belongs to chain %s, not to chain %s in the path: %w",
			b, b.COI.Display(), coi.Display(), custody.ErrInvalid)
	}
	return b, nil
}

// labelOptions reads the query options of a label request for format f;
// zone is the configured default time zone (Config.LabelZone).
func labelOptions(c echo.Context, f labels.Format, zone *time.Location) (labels.Options, error) {
	o := labels.Options{Zone: zone}
	q := c.QueryParams()
	var err error
	if o.Symbology, err = labels.ParseSymbology(q.Get("symbology")); err != nil {
		return o, fmt.Errorf("query: %w", err)
	}
	o.FromSite = q.Get("symbology") == ""
	if z := q.Get("zone"); z != "" {
		if len(z) > maxZoneLen || strings.EqualFold(z, "Local") {
			return o, fmt.Errorf("query: zone must be an IANA time zone name such as Europe/Berlin: %w", custody.ErrInvalid)
		}
		if o.Zone, err = time.LoadLocation(z); err != nil {
			return o, fmt.Errorf("query: zone %q is not a known IANA time zone (e.g. Europe/Berlin, America/New_York): %w", z, custody.ErrInvalid)
		}
	}
	if f == labels.FormatPNG {
		o.PNGSize, err = intQuery(q, "size", labels.DefaultPNGSize, 1, maxLabelPNGSize)
		return o, err
	}
	o.Stock = labels.DefaultStock
	if o.Stock.DPI, err = intQuery(q, "dpi", o.Stock.DPI, labels.MinDPI, labels.MaxDPI); err != nil {
		return o, err
	}
	for _, m := range []struct {
		name string
		v    *float64
	}{{"width_mm", &o.Stock.WidthMM}, {"height_mm", &o.Stock.HeightMM}} {
		v := q.Get(m.name)
		if v == "" {
			continue
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil || !(x > 0 && x <= 1000) {
			return o, fmt.Errorf("query: %s must be a label size in millimetres (e.g. 76.2): %w", m.name, custody.ErrInvalid)
		}
		*m.v = x
	}
	if err := o.Validate(); err != nil {
		return o, fmt.Errorf("query: %w", err)
	}
	return o, nil
}

// intQuery reads an integer query parameter between lo and hi, def when
// absent.
func intQuery(q url.Values, name string, def, lo, hi int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("query: %s must be a whole number from %d to %d: %w", name, lo, hi, custody.ErrInvalid)
	}
	return n, nil
}
