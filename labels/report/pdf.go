package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"
	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
	"github.com/coid-project/coid/labels"
	"github.com/coid-project/coid/labels/chart"
)

// pdfProducer is the PDF's Producer entry, fixed so that the bytes do not
// change with the PDF library's version string.
const pdfProducer = "coid custody report"

// Page geometry, in millimetres on A4 portrait.
const (
	pageW     = 210.0
	marginL   = 15.0
	marginR   = 15.0
	contentW  = pageW - marginL - marginR
	headerTop = 8.0
	qrSide    = 22.0
	bodyTop   = 37.0
	bodyBot   = 282.0
	footerY   = 289.0

	lineH    = 3.3 // body text line, 7.5 pt
	smallPt  = 7.5
	tinyPt   = 6.5
	headPt   = 11.0
	qrPixels = 330 // PNG side of the header code
)

// Colours, RGB.
var (
	colText    = [3]int{0, 0, 0}
	colMuted   = [3]int{90, 90, 90}
	colRule    = [3]int{150, 150, 150}
	colGrid    = [3]int{220, 220, 220}
	colBand    = [3]int{226, 241, 226} // allowed temperature band
	colExc     = [3]int{250, 205, 205} // excursion shading
	colLine    = [3]int{20, 60, 150}
	colLimit   = [3]int{0, 120, 0}
	colAlert   = [3]int{180, 0, 0}
	colTilt    = [3]int{200, 120, 0}
	colLid     = [3]int{150, 0, 150}
	colSilence = [3]int{110, 110, 110}
	colHeadBg  = [3]int{235, 235, 235}
	colCorrBg  = [3]int{255, 246, 214}
)

// Write renders the custody report of in to w as a PDF: a header on every
// page (COI with its check character, its QR code, product, sites, page N
// of M), the chain's identity, the vein-to-vein durations, every record in
// order with its signatures, each leg with its seal and temperature chart,
// the excursions and dispositions, and the verification block. The
// creation and modification dates are in.GeneratedAt, so the same input
// gives the same bytes.
func Write(w io.Writer, in *Input) error {
	if in == nil || in.Chain == nil || len(in.Chain.Records) == 0 {
		return fmt.Errorf("write report: no chain: %w", custody.ErrInvalid)
	}
	if in.GeneratedAt.IsZero() {
		return fmt.Errorf("write report: generation time not set (it pins the PDF's dates): %w", custody.ErrInvalid)
	}
	r := newRenderer(in)
	if err := r.render(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := r.pdf.Output(w); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

type renderer struct {
	in  *Input
	d   *derived
	pdf *fpdf.Fpdf
	tr  func(string) string
	y   float64
	// section is repeated under the header when a table continues on a
	// new page.
	continued func()
}

func newRenderer(in *Input) *renderer {
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCatalogSort(true)
	pdf.SetCreationDate(in.GeneratedAt.UTC())
	pdf.SetModificationDate(in.GeneratedAt.UTC())
	pdf.SetProducer(pdfProducer, false)
	pdf.SetCreator("coid", false)
	pdf.SetTitle("Chain of custody report "+in.Chain.Display, true)
	pdf.SetSubject("Chain of identity and custody, "+string(in.Chain.COI), true)
	pdf.SetMargins(marginL, bodyTop, marginR)
	pdf.SetAutoPageBreak(false, 0)
	pdf.SetCellMargin(0)
	pdf.AliasNbPages("{nb}")
	return &renderer{in: in, d: derive(in), pdf: pdf, tr: pdf.UnicodeTranslatorFromDescriptor("")}
}

// chainCode returns the data of the report's 2-D code: the chain's ISBT
// 128 data structures, the COI (Data Structure 040) and, once collected,
// the DIN with flags 00 (001), as a compound message when there are both.
// A scanner resolves it to the chain as it resolves a bag label. A DIN
// that does not encode (a chain from before DINs were checked) leaves the
// COI alone.
func chainCode(c *custody.Chain) string {
	d := custody.ISBTData{COI: c.COI}
	if c.DIN != "" {
		d.DIN, d.DINFlags = c.DIN, custody.DINFlagsNone
		if s, err := custody.EncodeISBT(d); err == nil {
			return s
		}
		d.DIN, d.DINFlags = "", ""
	}
	return custody.ISBTCOIPrefix + string(c.COI)
}

func (r *renderer) render() error {
	var qr bytes.Buffer
	if err := labels.WritePNG(&qr, chainCode(r.in.Chain), labels.QR, qrPixels); err != nil {
		return err
	}
	opt := fpdf.ImageOptions{ImageType: "PNG"}
	r.pdf.RegisterImageOptionsReader("coi-qr", opt, &qr)
	if p := r.in.Proof; p != nil {
		r.pdf.SetAttachments([]fpdf.Attachment{{Content: p.Bundle, Filename: verifiable.BundleFile,
			Description: "coid proof bundle: signed checkpoint, records and inclusion proofs (coid audit)"}})
	}
	r.pdf.SetHeaderFunc(r.header)
	r.pdf.SetFooterFunc(r.footer)
	r.newPage()
	r.identity()
	r.durations()
	r.exceptionalRelease()
	r.accessRequest()
	r.records()
	r.legs()
	r.issues()
	r.verification()
	r.review()
	return r.pdf.Error()
}

// ---------------------------------------------------------------------------
// Drawing helpers.

func (r *renderer) color(c [3]int)     { r.pdf.SetTextColor(c[0], c[1], c[2]) }
func (r *renderer) drawColor(c [3]int) { r.pdf.SetDrawColor(c[0], c[1], c[2]) }
func (r *renderer) fillColor(c [3]int) { r.pdf.SetFillColor(c[0], c[1], c[2]) }

func (r *renderer) font(style string, pt float64) { r.pdf.SetFont("Helvetica", style, pt) }

// text draws s with its baseline at (x, y).
func (r *renderer) text(x, y float64, s string) { r.pdf.Text(x, y, r.tr(s)) }

// width is the width of s in the current font.
func (r *renderer) width(s string) float64 { return r.pdf.GetStringWidth(r.tr(s)) }

// wrap splits s into lines no wider than w in the current font.
func (r *renderer) wrap(s string, w float64) []string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		if para == "" {
			out = append(out, "")
			continue
		}
		out = append(out, r.pdf.SplitText(para, w)...)
	}
	return out
}

// fit shortens s with an ellipsis until it is no wider than w.
func (r *renderer) fit(s string, w float64) string {
	if r.width(s) <= w {
		return s
	}
	rs := []rune(s)
	for len(rs) > 0 && r.width(string(rs)+"...") > w {
		rs = rs[:len(rs)-1]
	}
	return string(rs) + "..."
}

func (r *renderer) newPage() {
	r.pdf.AddPage()
	r.y = bodyTop
}

// need starts a new page unless h millimetres fit below the cursor.
func (r *renderer) need(h float64) {
	if r.y+h > bodyBot {
		r.newPage()
		if r.continued != nil {
			r.continued()
		}
	}
}

func (r *renderer) heading(s string) {
	r.continued = nil
	r.need(14)
	r.y += 3
	r.font("B", headPt)
	r.color(colText)
	r.text(marginL, r.y+4, s)
	r.drawColor(colRule)
	r.pdf.SetLineWidth(0.3)
	r.pdf.Line(marginL, r.y+5.5, marginL+contentW, r.y+5.5)
	r.y += 8
}

// para writes wrapped text across the content width.
func (r *renderer) para(style string, pt float64, c [3]int, s string) {
	r.font(style, pt)
	r.color(c)
	lh := pt * 0.44
	for _, l := range r.wrap(s, contentW) {
		r.need(lh)
		r.text(marginL, r.y+lh-0.8, l)
		r.y += lh
	}
}

// kv writes label: value rows, the values wrapped.
func (r *renderer) kv(rows [][2]string) {
	const labelW = 42.0
	for _, row := range rows {
		r.font("", smallPt+0.5)
		lines := r.wrap(row[1], contentW-labelW)
		r.need(float64(len(lines)) * (lineH + 0.4))
		r.font("B", smallPt+0.5)
		r.color(colMuted)
		r.text(marginL, r.y+lineH-0.6, row[0])
		r.font("", smallPt+0.5)
		r.color(colText)
		for _, l := range lines {
			r.text(marginL+labelW, r.y+lineH-0.6, l)
			r.y += lineH + 0.4
		}
	}
}

// ---------------------------------------------------------------------------
// Time and number formats.

// local formats t in the report's zone with its abbreviation and offset.
func (r *renderer) local(t time.Time) string {
	return t.In(r.d.zone).Format("2006-01-02 15:04:05 MST (-07:00)")
}

func utc(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") + " UTC" }

// both formats t as local time and, when the zone is not UTC, UTC.
func (r *renderer) both(t time.Time) string {
	if r.zoneIsUTC() {
		return utc(t)
	}
	return r.local(t) + " / " + utc(t)
}

func (r *renderer) zoneIsUTC() bool { return isUTC(r.d.zone) }

func isUTC(z *time.Location) bool { return z == time.UTC || z.String() == "UTC" }

// siteZone is the zone of a chain's site name: its registered site's, else
// the report's default zone.
func (r *renderer) siteZone(site string) *time.Location { return r.in.SiteZones.Zone(site, r.d.zone) }

// siteRow names a site and, when it is registered, its time zone.
func (r *renderer) siteRow(site string) string {
	if z, ok := r.in.SiteZones[site]; ok && z != nil {
		return site + "   (time zone " + z.String() + ")"
	}
	return site
}

func celsius(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) + " °C" }

func celsius1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) + " °C" }

// dur formats a duration for people: "3d 4h 05m", "2h 10m", "45m 10s".
func dur(d time.Duration) string {
	if d < 0 {
		return "-" + dur(-d)
	}
	d = d.Round(time.Second)
	days := d / (24 * time.Hour)
	d -= days * 24 * time.Hour
	h := d / time.Hour
	d -= h * time.Hour
	m := d / time.Minute
	s := (d - m*time.Minute) / time.Second
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh %02dm", days, h, m)
	case h > 0:
		return fmt.Sprintf("%dh %02dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm %02ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

// ---------------------------------------------------------------------------
// Header and footer, on every page.

func (r *renderer) header() {
	c := r.in.Chain
	pdf := r.pdf
	pdf.ImageOptions("coi-qr", marginL, headerTop, qrSide, qrSide, false, fpdf.ImageOptions{ImageType: "PNG"}, 0, "")
	x := marginL + qrSide + 4
	right := marginL + contentW
	r.color(colText)
	r.font("B", 13)
	r.text(x, headerTop+5, "Chain of custody report")
	r.font("", smallPt)
	r.color(colMuted)
	page := fmt.Sprintf("Page %d of {nb}", pdf.PageNo())
	r.text(right-r.width(fmt.Sprintf("Page %d of 99", pdf.PageNo())), headerTop+3, page)
	gen := "Generated " + utc(r.in.GeneratedAt)
	r.text(right-r.width(gen), headerTop+6.5, gen)

	// The COI in a monospace face with its check character boxed.
	r.color(colText)
	pdf.SetFont("Courier", "B", 12)
	base := headerTop + 11.5
	r.text(x, base, string(c.COI))
	kx := x + pdf.GetStringWidth(string(c.COI)) + 1.5
	k := string(c.COI.K())
	kw := pdf.GetStringWidth(k)
	r.text(kx+0.9, base, k)
	r.drawColor(colText)
	pdf.SetLineWidth(0.3)
	pdf.Rect(kx, base-3.6, kw+1.8, 4.6, "D")
	r.font("", smallPt)
	r.color(colMuted)
	r.text(kx+kw+4, base, "COI (ISBT 128 DS 040) with keyboard entry check character K")

	r.font("", smallPt+0.5)
	r.color(colText)
	avail := right - x
	r.text(x, headerTop+16, r.fit("Product: "+c.Product+"   State: "+string(c.State), avail))
	r.text(x, headerTop+20, r.fit(fmt.Sprintf("Collection: %s  |  Manufacturing: %s  |  Treatment: %s",
		c.Sites.Collection, c.Sites.Manufacturing, c.Sites.Treatment), avail))
	r.drawColor(colRule)
	pdf.SetLineWidth(0.3)
	pdf.Line(marginL, headerTop+qrSide+2, right, headerTop+qrSide+2)
}

func (r *renderer) footer() {
	r.font("", tinyPt)
	r.color(colMuted)
	c := r.in.Chain
	s := fmt.Sprintf("coid custody report  |  %s  |  chain head %s  |  generated %s by %s (%s, %s)",
		c.Display, short(c.Head), utc(r.in.GeneratedAt), r.in.GeneratedBy.Name, r.in.GeneratedBy.ID, r.in.GeneratedBy.Role)
	r.drawColor(colRule)
	r.pdf.SetLineWidth(0.2)
	r.pdf.Line(marginL, footerY-3.5, marginL+contentW, footerY-3.5)
	r.text(marginL, footerY, r.fit(s, contentW))
}

// ---------------------------------------------------------------------------
// Sections.

func (r *renderer) identity() {
	c := r.in.Chain
	r.heading("Chain identity")
	patient := "not on file (the patient's identifiers were erased or never stored)"
	if p := r.in.Patient; p.OnFile {
		patient = fmt.Sprintf("initials %s, born %s", p.Initials, p.BirthYear)
	}
	din := "none recorded"
	if c.DIN != "" {
		din = c.DIN.EyeReadable(custody.DINFlagsNone) + "   (flags " + custody.DINFlagsNone + ", K last; bar code =" +
			string(c.DIN) + custody.DINFlagsNone + ", ISBT 128 data structure 001)"
	}
	bags := "none registered"
	if len(c.Bags) > 0 {
		bags = strings.Join(c.Bags, ", ")
	}
	zone := r.d.zone.String()
	if len(r.in.SiteZones) > 0 {
		zone = "each registered site's time zone, other times in " + zone
	}
	rows := [][2]string{
		{"COI", c.Display + "   (K last; bar code " + custody.ISBTCOIPrefix + string(c.COI) + ", ISBT 128 data structure 040)"},
		{"Patient", patient},
		{"Product", c.Product},
		{"Issuing facility (FIN)", c.Facility},
		{"Collection site", r.siteRow(c.Sites.Collection)},
		{"Manufacturing site", r.siteRow(c.Sites.Manufacturing)},
		{"Treatment site", r.siteRow(c.Sites.Treatment)},
		{"DIN", din},
		{"Bags", bags},
		{"State", string(c.State) + stateNote(c)},
		{"Enrolled", r.both(c.Created)},
		{"Records", fmt.Sprintf("%d, chain head %s", len(c.Records), c.Head)},
		{"Times", "local times are in " + zone + "; every time is also given in UTC"},
	}
	r.kv(rows)
}

func stateNote(c *custody.Chain) string {
	switch {
	case c.State == custody.StateCancelled:
		return "  (CANCELLED: the chain ended early; see the cancel record)"
	case c.State == custody.StateInfused:
		return "  (complete)"
	}
	if n := len(c.OpenIssues()); n > 0 {
		return fmt.Sprintf("  (%d issue(s) await a QA disposition)", n)
	}
	return "  (in progress)"
}

func (r *renderer) durations() {
	r.heading("Vein-to-vein durations")
	cols := []float64{62, 58, 60}
	r.tableHead([]string{"Segment", "From", "To / duration"}, cols)
	for _, s := range r.d.segments {
		from, to, d := "not yet", "not yet", "not reached"
		if s.Start != nil {
			from = s.From + ": " + r.both(*s.Start)
		} else {
			from = s.From + ": not reached"
		}
		if s.End != nil && !s.Running {
			to = s.To + ": " + r.both(*s.End)
			d = dur(s.End.Sub(*s.Start))
		} else if s.Running {
			to = s.To + ": not yet"
			d = "running, " + dur(s.End.Sub(*s.Start)) + " so far"
		} else {
			to = s.To + ": not reached"
		}
		if s.Start == nil {
			d = "not started"
		}
		r.row(cols, [][]string{{s.Name}, r.wrapAll(from, cols[1]-2), r.wrapAll(to+"\n"+d, cols[2]-2)}, false, "B")
	}
	r.y += 2
}

// wrapAll wraps s to w in the table font.
func (r *renderer) wrapAll(s string, w float64) []string {
	r.font("", smallPt)
	return r.wrap(s, w)
}

// tableHead draws a table's column headings.
func (r *renderer) tableHead(names []string, cols []float64) {
	r.need(lineH + 3)
	r.fillColor(colHeadBg)
	r.pdf.Rect(marginL, r.y, contentW, lineH+1.2, "F")
	r.font("B", smallPt)
	r.color(colText)
	x := marginL
	for i, n := range names {
		r.text(x+1, r.y+lineH-0.2, n)
		x += cols[i]
	}
	r.y += lineH + 1.6
}

// row draws one table row; cells are lines already wrapped. firstStyle is
// the font style of the first column.
func (r *renderer) row(cols []float64, cells [][]string, shade bool, firstStyle string) {
	n := 0
	for _, c := range cells {
		n = max(n, len(c))
	}
	h := float64(n)*lineH + 1.2
	r.need(h)
	if shade {
		r.fillColor(colCorrBg)
		r.pdf.Rect(marginL, r.y, contentW, h, "F")
	}
	x := marginL
	for i, c := range cells {
		style := ""
		if i == 0 {
			style = firstStyle
		}
		r.font(style, smallPt)
		r.color(colText)
		for j, l := range c {
			r.text(x+1, r.y+float64(j+1)*lineH-0.5, l)
		}
		x += cols[i]
	}
	r.y += h
	r.drawColor(colGrid)
	r.pdf.SetLineWidth(0.2)
	r.pdf.Line(marginL, r.y, marginL+contentW, r.y)
}

// Record table columns: seq, step, time, site, signatures, hash.
var recordCols = []float64{11, 25, 37, 27, 56, 24}

func (r *renderer) records() {
	c := r.in.Chain
	r.heading(fmt.Sprintf("Records (%d, in chain order)", len(c.Records)))
	r.para("", tinyPt, colMuted, "Seq is the record's position in the ledger, which dispositions and corrections refer to. "+
		"Each signature shows the signer's printed name, role, the meaning of the signature, when it was executed (21 CFR 11.50) "+
		"and how the signer was authenticated: by password, by a signed-in session or an API token, or by coid itself. "+
		"Hash is the first 16 hex digits of the record's SHA-256; the full chain head is in the verification block. "+
		"Corrections are listed in order and flagged beside the record they amend, which stays as it was signed.")
	r.y += 1
	head := func() {
		r.tableHead([]string{"Seq", "Step", "Time (local / UTC)", "Site", "Signatures: name (role), meaning, time", "Hash"}, recordCols)
	}
	head()
	r.continued = head
	for i := range c.Records {
		r.record(&c.Records[i])
	}
	r.continued = nil
	r.y += 2
}

func (r *renderer) record(rec *custody.Record) {
	cols := recordCols
	w := func(i int) float64 { return cols[i] - 2 }
	r.font("", smallPt)
	step := r.wrap(string(rec.Step), w(1))
	zone := r.siteZone(rec.Site)
	tm := []string{rec.Time.In(zone).Format("2006-01-02 15:04:05 MST"), utc(rec.Time)}
	if isUTC(zone) {
		tm = tm[1:]
	}
	site := r.wrap(orDash(rec.Site), w(3))
	var sigs []string
	for _, s := range rec.Signatures {
		sigs = append(sigs, r.wrap(fmt.Sprintf("%s (%s)", s.Name, s.Role), w(4))...)
		st := s.Time
		if t, err := time.Parse(time.RFC3339Nano, s.Time); err == nil {
			st = t.In(zone).Format("2006-01-02 15:04:05 MST")
			if !isUTC(zone) {
				st += " (" + utc(t) + ")"
			}
		}
		sigs = append(sigs, r.wrap(fmt.Sprintf("   %s, %s, %s", s.Meaning, st, signedBy(s.Method)), w(4))...)
	}
	if len(sigs) == 0 {
		sigs = []string{"(no signature)"}
	}
	hash := []string{short(rec.Hash.String())}
	corrected := r.d.v.Corrections(rec.Seq)
	r.pdf.SetFont("Courier", "", smallPt-0.5)
	r.row(cols, [][]string{{strconv.FormatUint(rec.Seq, 10)}, step, tm, site, sigs, nil}, len(corrected) > 0, "B")
	// The hash in a monospace face, placed in the row just drawn.
	r.pdf.SetFont("Courier", "", tinyPt) // 16 digits fit the column
	r.color(colText)
	x := marginL
	for _, c := range cols[:5] {
		x += c
	}
	rowTop := r.y - (float64(max(len(step), len(tm), len(site), len(sigs), 1))*lineH + 1.2)
	r.text(x+1, rowTop+lineH-0.5, hash[0])

	// Details: what the record says, across the width below its row.
	details := r.details(rec)
	if by := rec.SubmittedBy; by != "" && by != custody.SystemUser && !slices.ContainsFunc(rec.Signatures, func(s custody.Signature) bool { return s.User == by }) {
		details = append([]string{"Submitted by " + by + " (not a signer)"}, details...)
	}
	for _, cr := range corrected {
		x, _ := cr.Body().(custody.CorrectionData)
		details = append(details, fmt.Sprintf("CORRECTED by record %d (below): %s", cr.Seq, x.Reason))
	}
	if len(details) == 0 {
		return
	}
	r.font("", smallPt-0.5)
	x0 := marginL + cols[0] + 1
	lw := contentW - cols[0] - 2
	var lines []string
	for _, d := range details {
		lines = append(lines, r.wrap(d, lw)...)
	}
	for _, l := range lines {
		r.need(lineH)
		if len(corrected) > 0 {
			r.fillColor(colCorrBg)
			r.pdf.Rect(marginL, r.y, contentW, lineH, "F")
		}
		r.font("", smallPt-0.5)
		r.color(colMuted)
		if strings.HasPrefix(l, "CORRECTED") || strings.HasPrefix(l, "CORRECTS") {
			r.font("B", smallPt-0.5)
			r.color(colAlert)
		}
		r.text(x0, r.y+lineH-0.8, l)
		r.y += lineH
	}
	r.y += 0.6
	r.drawColor(colGrid)
	r.pdf.SetLineWidth(0.2)
	r.pdf.Line(marginL, r.y, marginL+contentW, r.y)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// details summarises a record's data for the table. Data fields the
// report does not know are listed as they are, so nothing is hidden.
func (r *renderer) details(rec *custody.Record) []string {
	m, err := rec.Members()
	if err != nil || len(m) == 0 {
		if err != nil {
			return []string{"data: " + string(rec.Data)}
		}
		return nil
	}
	used := map[string]bool{}
	get := func(k string) string { used[k] = true; return rawText(m[k]) }
	has := func(k string) bool { _, ok := m[k]; return ok }
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	c := r.in.Chain
	switch rec.Step {
	case custody.StepEnroll:
		add("Product %s; facility %s; patient identity held outside the ledger (commitment %s)",
			get("product"), get("facility"), short(get("patient_commitment")))
		used["sites"] = true
	case custody.StepCollect:
		din := get("din")
		if d, err := custody.ParseDIN(din); err == nil {
			din = d.EyeReadable(custody.DINFlagsNone)
		}
		add("DIN %s; %s mL; %s bag(s); apheresis %s to %s", din, get("volume_ml"), get("bags"),
			r.dataTime(get("started_at")), r.dataTime(get("ended_at")))
	case custody.StepShip:
		leg := legOf(c, rec.Seq, true)
		add("Leg %d: shipper %s, profile %s, from %s to %s", leg.N, get("shipper"), get("profile"), leg.From, leg.To)
	case custody.StepReceive:
		leg := legOf(c, rec.Seq, false)
		seal := "seal INTACT"
		if get("seal_intact") != "true" {
			seal = "SEAL BROKEN"
		}
		s := fmt.Sprintf("Leg %d received: %s", leg.N, seal)
		if has("telemetry") {
			used["telemetry"] = true
			if sd := r.d.v.Seal(leg.N); sd != nil {
				s += fmt.Sprintf("; telemetry sealed: %d readings, readings hash %s (%s)", sd.Seal.Count, short(sd.Seal.ReadingsHash), sd.Version)
			}
		} else {
			s += "; no telemetry seal"
		}
		add("%s", s)
	case custody.StepManufacture:
		add("%s final-product bag(s) registered", get("final_bags"))
	case custody.StepBedsideVerify:
		s := "Bag " + get("bag")
		if get("wristband_match") == "true" {
			s += "; wristband matches the chain's patient"
		}
		used["bag_code"] = true
		add("%s", s)
	case custody.StepExcursion:
		if e, ok := r.d.recorded[rec.Seq]; ok {
			add("%s", excursionSummary(e, r.d.zone))
			out = append(out, e.Extra...)
		}
		return out
	case custody.StepDisposition:
		add("QA decision on record %s: %s. Reason: %s", get("excursion"), strings.ToUpper(get("decision")), get("reason"))
	case custody.StepCorrection:
		target := get("corrects")
		what := ""
		if n, err := strconv.ParseUint(target, 10, 64); err == nil && r.d.v.Record(n) != nil {
			what = " (" + string(r.d.v.Record(n).Step) + ")"
		}
		add("CORRECTS record %s%s. Reason: %s", target, what, get("reason"))
		n, _ := strconv.ParseUint(target, 10, 64)
		cd, _ := rec.Body().(custody.CorrectionData)
		if x := cd.Figures; rec.SubmittedBy == custody.SystemUser && x != nil {
			var s string
			switch latest, ok := r.d.v.Figures(n); {
			case x.End == nil:
				s = "Going on again: so far lasting " + dur(time.Duration(x.DurationNS))
			case ok && latest.Seq == rec.Seq:
				s = "Final figures: ended " + x.End.In(r.d.zone).Format("2006-01-02 15:04:05 MST")
			default:
				s = fmt.Sprintf("Figures then (revised by record %d): ended %s", latest.Seq, x.End.In(r.d.zone).Format("2006-01-02 15:04:05 MST"))
			}
			if x.DurationNS > 0 && x.End != nil {
				s += ", lasting " + dur(time.Duration(x.DurationNS))
			}
			if x.BreachNS > 0 && x.BreachNS != x.DurationNS {
				s += " (rule broken for " + dur(time.Duration(x.BreachNS)) + ")"
			}
			if x.Worst != nil {
				unit := " °C"
				if r.d.recorded[x.Corrects].Kind == string(custody.ExcursionTilt) {
					unit = " degrees"
				}
				s += "; worst " + strconv.FormatFloat(*x.Worst, 'f', -1, 64) + unit
			}
			add("%s", s)
		}
	case custody.StepCancel:
		add("CANCELLED. Reason: %s", get("reason"))
	case custody.StepReview:
		x, _ := rec.Body().(custody.ReviewData)
		used["statement"] = true
		add("QA review of the custody record: %s", x.Statement)
	case custody.StepNote:
		add("Note: %s", get("text"))
		if has("reason") {
			add("Reason: %s", get("reason"))
		}
	case custody.StepMismatch:
		x, _ := rec.Body().(custody.MismatchData)
		used["reasons"] = true
		add("BEDSIDE MISMATCH: the bedside check failed and the bag was set aside for QA: %s", strings.Join(x.Reasons, "; "))
	case custody.StepAcknowledge:
		add("Acknowledges the mismatch of record %s: %s", get("mismatch"), get("statement"))
	case custody.StepSchedule, custody.StepReschedule:
		var p custody.Plan
		if x, ok := rec.Body().(custody.ScheduleData); ok {
			p = x.Plan
		} else if x, ok := rec.Body().(custody.RescheduleData); ok {
			p = x.Plan
		}
		used["plan"], used["claims"], used["product"] = true, true, true
		add("Planned: apheresis %s at %s; manufacturing %s to %s at %s; release %s; arrival %s at %s; infusion window to %s",
			p.Apheresis.Date, p.Apheresis.Site, p.ManufacturingStart.Date, p.ManufacturingEnd.Date, p.ManufacturingStart.Site,
			p.Release.Date, p.Arrival.Date, p.Arrival.Site, p.InfusionTo.Date)
		if has("reason") {
			add("Reason: %s", get("reason"))
		}
	case custody.StepUnschedule:
		used["claims"] = true
		add("Booking freed. Reason: %s", get("reason"))
	case custody.StepCollectOverride:
		add("Collection allowed without a booking. Reason: %s", get("reason"))
	case custody.StepOOS:
		var attrs []string
		if json.Unmarshal(m["attributes"], &attrs) == nil {
			used["attributes"] = true
			add("OUT OF SPECIFICATION: failed %s. Reason: %s", strings.Join(attrs, ", "), get("reason"))
		}
	case custody.StepExceptionalReleaseRequest:
		add("The treating physician requests the exceptional release of the out-of-specification product. Reason: %s", get("reason"))
	case custody.StepConsent:
		s := "The patient's informed consent obtained by " + get("obtained_by") + ", " + r.dataTime(get("obtained_at"))
		if has("document_hash") {
			s += "; consent document SHA-256 " + get("document_hash")
		}
		add("%s", s)
	case custody.StepExceptionalRelease:
		add("EXCEPTIONAL RELEASE of the out-of-specification product: %s", get("statement"))
	}
	var rest []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !used[k] {
			rest = append(rest, k+": "+rawText(m[k]))
		}
	}
	if len(rest) > 0 {
		add("%s", strings.Join(rest, "; "))
	}
	return out
}

// dataTime shows an RFC 3339 time from step data in the report's zone.
func (r *renderer) dataTime(s string) string {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return s
	}
	return t.In(r.d.zone).Format("2006-01-02 15:04 MST")
}

// legOf returns the leg a ship (ship true) or receive record opened or
// closed.
func legOf(c *custody.Chain, seq uint64, ship bool) custody.Leg {
	for _, l := range c.Legs {
		if ship && l.ShipSeq == seq || !ship && l.ReceiveSeq == seq {
			return l
		}
	}
	return custody.Leg{}
}

func excursionSummary(e excursion, zone *time.Location) string {
	s := fmt.Sprintf("Excursion (%s) on leg %d", e.Kind, e.Leg)
	if e.Leg == 0 {
		s = fmt.Sprintf("Excursion (%s), leg not identified", e.Kind)
	}
	if e.Shipper != "" {
		s += ", shipper " + e.Shipper
	}
	s += ": from " + e.Start.In(zone).Format("2006-01-02 15:04:05 MST")
	if e.End != nil {
		s += " to " + e.End.In(zone).Format("2006-01-02 15:04:05 MST")
		if e.EndedSeq != 0 {
			s += fmt.Sprintf(" (end recorded in record %d)", e.EndedSeq)
		}
	} else {
		s += ", still open when recorded"
	}
	if e.Duration > 0 {
		s += ", lasting " + dur(e.Duration)
	}
	if e.Breach > 0 && e.Breach != e.Duration {
		s += " (rule broken for " + dur(e.Breach) + ")"
	}
	if e.Worst != nil {
		unit := " °C"
		if e.Kind == string(custody.ExcursionTilt) {
			unit = " degrees"
		}
		s += "; worst " + strconv.FormatFloat(*e.Worst, 'f', -1, 64) + unit
		if e.Limit != nil {
			s += " against a limit of " + strconv.FormatFloat(*e.Limit, 'f', -1, 64) + unit
		}
	}
	return s
}

// ---------------------------------------------------------------------------
// Legs.

func (r *renderer) legs() {
	c := r.in.Chain
	if len(c.Legs) > 0 {
		r.need(14 + 112) // the heading with its first leg
	}
	r.heading("Shipments and temperature")
	if len(c.Legs) == 0 {
		r.para("", smallPt+0.5, colText, "No shipment has been recorded on this chain yet.")
		return
	}
	for _, l := range c.Legs {
		r.leg(l)
	}
}

func (r *renderer) profileFor(l custody.Leg) (custody.Profile, bool) {
	ps := r.in.Profiles
	if ps == nil {
		ps = custody.BuiltinProfiles()
	}
	p, ok := ps[l.Profile]
	if sd := r.d.v.Seal(l.N); sd != nil {
		// The seal records the limits it applied; they win over today's
		// configuration.
		p.MinC, p.MaxC = sd.Seal.LimitMinC, sd.Seal.LimitMaxC
		ok = true
	}
	return p, ok
}

func limitsText(p custody.Profile) string {
	switch {
	case p.MinC != nil && p.MaxC != nil:
		return fmt.Sprintf("%s to %s", celsius(*p.MinC), celsius(*p.MaxC))
	case p.MaxC != nil:
		return "at or below " + celsius(*p.MaxC)
	case p.MinC != nil:
		return "at or above " + celsius(*p.MinC)
	}
	return "no temperature limits"
}

func (r *renderer) leg(l custody.Leg) {
	// Keep a leg's figures and its chart on one page.
	r.need(112)
	r.y += 1
	r.font("B", smallPt+2)
	r.color(colText)
	r.text(marginL, r.y+4, fmt.Sprintf("Leg %d: %s to %s", l.N, l.From, l.To))
	r.y += 6
	p, known := r.profileFor(l)
	prof := l.Profile + ": " + limitsText(p)
	if !known {
		prof = l.Profile + " (profile not configured here; limits unknown)"
	} else {
		if p.MaxTiltDeg != nil {
			prof += fmt.Sprintf("; upright within %v degrees", *p.MaxTiltDeg)
		}
		if p.LidMustBeClosed {
			prof += "; lid closed"
		}
	}
	received := "not yet received (leg open)"
	if l.ReceivedAt != nil {
		received = r.both(*l.ReceivedAt) + fmt.Sprintf(" (record %d)", l.ReceiveSeq)
		if l.SealIntact != nil && !*l.SealIntact {
			received += ", SEAL BROKEN"
		} else if l.SealIntact != nil {
			received += ", seal intact"
		}
	}
	rows := [][2]string{
		{"Shipper", l.Shipper},
		{"Profile", prof},
		{"Shipped", r.both(l.ShippedAt) + fmt.Sprintf(" (record %d)", l.ShipSeq)},
		{"Received", received},
	}
	var tele Telemetry
	if l.N-1 < len(r.in.Telemetry) {
		tele = r.in.Telemetry[l.N-1]
	}
	if sd := r.d.v.Seal(l.N); sd != nil {
		s := sd.Seal
		figs := fmt.Sprintf("%d readings", s.Count)
		if !s.FirstDeviceTime.IsZero() {
			figs += fmt.Sprintf(" from %s to %s", r.local(s.FirstDeviceTime), r.local(s.LastDeviceTime))
		}
		if s.MinC != nil && s.MaxC != nil {
			figs += fmt.Sprintf("; min %s, max %s", celsius(*s.MinC), celsius(*s.MaxC))
		}
		figs += "; time out of range " + dur(s.TimeOutOfRange)
		if s.MKTC != nil {
			if s.MKTMethod == custody.MKTTimeWeighted {
				figs += fmt.Sprintf("; time-weighted mean kinetic temperature %s (USP <1079.2>, each reading weighted by half the interval to each neighbour, intervals capped at %s)",
					celsius(*s.MKTC), dur(s.MKTMaxGap))
			} else {
				figs += fmt.Sprintf("; mean kinetic temperature %s (readings weighted equally)", celsius(*s.MKTC))
			}
		} else {
			figs += "; MKT not applicable to this profile"
		}
		rows = append(rows, [2]string{"Seal", figs},
			[2]string{"Readings hash", s.ReadingsHash + " (" + s.Encoding + ", " + sd.Version + ")"})
	} else if l.ReceivedAt != nil {
		rows = append(rows, [2]string{"Seal", "the receive record carries no telemetry seal"})
	} else {
		rows = append(rows, [2]string{"Seal", "not sealed yet: the seal is made when the leg is received"})
	}
	if tele.Available && known {
		s := custody.SealReadings(tele.Readings, p)
		if sd := r.d.v.Seal(l.N); sd == nil || s.ReadingsHash != sd.Seal.ReadingsHash {
			now := fmt.Sprintf("%d readings stored now", s.Count)
			if s.MinC != nil {
				now += fmt.Sprintf("; min %s, max %s; time out of range %s", celsius(*s.MinC), celsius(*s.MaxC), dur(s.TimeOutOfRange))
			}
			if sd != nil {
				now += " (differs from the seal: readings stored after receipt, or altered)"
			}
			rows = append(rows, [2]string{"Readings now", now})
		}
	}
	r.kv(rows)
	var exc []excursion
	for _, e := range r.d.excursions {
		if e.Leg == l.N {
			exc = append(exc, e)
		}
	}
	r.need(78)
	r.y += 5
	r.chart(l, p, known, tele, exc)
	if len(exc) > 0 {
		r.font("B", smallPt)
		r.color(colText)
		r.need(lineH)
		r.text(marginL, r.y+lineH-0.5, "Excursions on this leg")
		r.y += lineH + 0.5
		for _, e := range exc {
			d := "AWAITING QA DISPOSITION"
			if e.Disposition != nil {
				d = fmt.Sprintf("QA %s (record %d, %s)", strings.ToUpper(e.Disposition.Decision), e.Disposition.Seq, e.Disposition.By)
			}
			r.para("", smallPt, colText, fmt.Sprintf("Record %d: %s. %s.", e.Seq, excursionSummary(e, r.d.zone), d))
		}
	}
	r.y += 3
}

// Chart geometry, in millimetres.
const (
	chartH     = 50.0
	chartAxisW = 16.0 // room for the temperature labels
	stripH     = 2.6  // one marker row under the chart
)

func (r *renderer) chart(l custody.Leg, p custody.Profile, known bool, tele Telemetry, exc []excursion) {
	pdf := r.pdf
	x0 := marginL + chartAxisW
	w := contentW - chartAxisW
	y0 := r.y
	t0 := l.ShippedAt
	t1 := r.in.GeneratedAt
	if l.ReceivedAt != nil {
		t1 = *l.ReceivedAt
	}
	if n := len(tele.Readings); n > 0 {
		if f := tele.Readings[0].DeviceTime; f.Before(t0) {
			t0 = f
		}
		if e := tele.Readings[n-1].DeviceTime; e.After(t1) {
			t1 = e
		}
	}
	if !t1.After(t0) {
		t1 = t0.Add(time.Hour)
	}
	buckets := int(w / bucketMM)
	var s series
	if tele.Available {
		s = reduce(tele.Readings, t0, t1, buckets, p, exc)
	}
	// Temperature range: readings and limits, padded.
	lo, hi := math.Inf(1), math.Inf(-1)
	if s.hasTemp {
		lo, hi = s.lo, s.hi
	}
	if known && p.MinC != nil {
		lo, hi = min(lo, *p.MinC), max(hi, *p.MinC)
	}
	if known && p.MaxC != nil {
		lo, hi = min(lo, *p.MaxC), max(hi, *p.MaxC)
	}
	for _, e := range exc {
		if e.Worst != nil && e.Kind == string(custody.ExcursionTemperature) {
			lo, hi = min(lo, *e.Worst), max(hi, *e.Worst)
		}
	}
	if math.IsInf(lo, 0) {
		lo, hi = -10, 10
	}
	pad := max((hi-lo)*0.08, 2)
	lo, hi = lo-pad, hi+pad
	step := chart.NiceStep(hi-lo, 5)
	lo = math.Floor(lo/step) * step
	hi = math.Ceil(hi/step) * step
	X := func(t time.Time) float64 { return x0 + float64(t.Sub(t0))/float64(t1.Sub(t0))*w }
	Y := func(v float64) float64 { return y0 + chartH - (v-lo)/(hi-lo)*chartH }
	clampX := func(x float64) float64 { return min(max(x, x0), x0+w) }

	// Allowed band, excursion shading, grid.
	if known && (p.MinC != nil || p.MaxC != nil) {
		a, b := lo, hi
		if p.MinC != nil {
			a = *p.MinC
		}
		if p.MaxC != nil {
			b = *p.MaxC
		}
		r.fillColor(colBand)
		pdf.Rect(x0, Y(b), w, Y(a)-Y(b), "F")
	}
	r.fillColor(colExc)
	for _, e := range exc {
		end := t1
		if e.End != nil {
			end = *e.End
		}
		xa, xb := clampX(X(e.Start)), clampX(X(end))
		pdf.Rect(xa, y0, max(xb-xa, 0.4), chartH, "F")
	}
	r.drawColor(colGrid)
	pdf.SetLineWidth(0.15)
	r.font("", tinyPt)
	r.color(colMuted)
	for v := lo; v <= hi+step/2; v += step {
		y := Y(v)
		pdf.Line(x0, y, x0+w, y)
		lab := strconv.FormatFloat(v, 'f', -1, 64)
		r.text(x0-1.5-r.width(lab), y+1, lab)
	}
	r.text(marginL, y0-1, "°C")
	ticks, tstep := timeTicks(t0, t1, 8, r.d.zone)
	for _, t := range ticks {
		x := X(t)
		r.drawColor(colGrid)
		pdf.Line(x, y0, x, y0+chartH)
		lab := t.In(r.d.zone).Format("15:04")
		if tstep < time.Minute {
			lab = t.In(r.d.zone).Format("15:04:05")
		}
		if lt := t.In(r.d.zone); tstep >= 24*time.Hour || lt.Hour() == 0 && lt.Minute() == 0 && lt.Second() == 0 {
			lab = t.In(r.d.zone).Format("Jan 2")
		}
		r.text(x-r.width(lab)/2, y0+chartH+3*stripH+3.2, lab)
	}
	// Limits.
	if known {
		r.drawColor(colLimit)
		pdf.SetLineWidth(0.35)
		pdf.SetDashPattern([]float64{1.5, 1}, 0)
		for _, v := range []*float64{p.MinC, p.MaxC} {
			if v != nil {
				pdf.Line(x0, Y(*v), x0+w, Y(*v))
				r.color(colLimit)
				lab := "limit " + celsius(*v)
				r.text(x0+w-r.width(lab)-1, Y(*v)-0.8, lab)
			}
		}
		pdf.SetDashPattern(nil, 0)
	}
	// The temperature line, broken where readings are missing.
	if len(s.points) > 0 {
		r.drawColor(colLine)
		pdf.SetLineWidth(0.3)
		pdf.SetLineJoinStyle("round")
		gi := 0
		started := false
		for i, pt := range s.points {
			brk := false
			if i > 0 {
				for gi < len(s.breaks) && !s.breaks[gi].b.After(s.points[i-1].t) {
					gi++
				}
				if gi < len(s.breaks) && !s.breaks[gi].a.Before(s.points[i-1].t) && !s.breaks[gi].b.After(pt.t) {
					brk = true
				}
			}
			if !started || brk {
				if started {
					pdf.DrawPath("D")
				}
				pdf.MoveTo(X(pt.t), Y(pt.v))
				started = true
				if i == len(s.points)-1 || len(s.points) == 1 {
					pdf.LineTo(X(pt.t)+0.2, Y(pt.v))
				}
				continue
			}
			pdf.LineTo(X(pt.t), Y(pt.v))
		}
		pdf.DrawPath("D")
		pdf.SetLineJoinStyle("miter")
	}
	// Excursion labels and frame.
	r.font("B", tinyPt)
	r.color(colAlert)
	var ends []float64 // right end of the last label on each label row
	for _, e := range exc {
		lab := fmt.Sprintf("%s (rec %d)", e.Kind, e.Seq)
		x := min(clampX(X(e.Start))+0.6, x0+w-r.width(lab)-0.6)
		row := 0
		for row < len(ends) && x < ends[row]+1 {
			row++
		}
		if row == len(ends) {
			ends = append(ends, 0)
		}
		ends[row] = x + r.width(lab)
		r.text(x, y0+2.6+float64(row)*2.8, lab)
	}
	r.drawColor(colRule)
	pdf.SetLineWidth(0.3)
	pdf.Rect(x0, y0, w, chartH, "D")
	if !tele.Available || !s.hasTemp {
		msg := "No telemetry available"
		if tele.Available {
			msg = "No temperature readings stored for this leg"
		} else if tele.Note != "" {
			msg = "No telemetry available (" + strings.TrimPrefix(tele.Note, "no telemetry available: ") + ")"
		}
		r.font("B", smallPt+1)
		r.color(colMuted)
		r.text(x0+(w-r.width(msg))/2, y0+chartH/2, msg)
	}
	// Marker strips: tilt, lid, silence.
	sy := y0 + chartH + 0.8
	rowsDef := []struct {
		name string
		col  [3]int
		on   func(b int) bool
	}{
		{"tilt", colTilt, func(b int) bool { return b < len(s.tilt) && s.tilt[b] }},
		{"lid/light", colLid, func(b int) bool { return b < len(s.lid) && s.lid[b] }},
	}
	bw := w / float64(max(buckets, 1))
	for i, rd := range rowsDef {
		y := sy + float64(i)*stripH
		r.font("", tinyPt-0.5)
		r.color(colMuted)
		r.text(marginL, y+stripH-0.5, rd.name)
		r.fillColor(rd.col)
		for b := 0; b < buckets; {
			if !rd.on(b) {
				b++
				continue
			}
			e := b
			for e < buckets && rd.on(e) {
				e++
			}
			pdf.Rect(x0+float64(b)*bw, y+0.4, max(float64(e-b)*bw, 0.5), stripH-0.8, "F")
			b = e
		}
	}
	y := sy + 2*stripH
	r.color(colMuted)
	r.text(marginL, y+stripH-0.5, "silence")
	r.fillColor(colSilence)
	for _, g := range s.gaps {
		xa, xb := clampX(X(g.a)), clampX(X(g.b))
		pdf.Rect(xa, y+0.4, max(xb-xa, 0.5), stripH-0.8, "F")
	}
	for _, e := range exc {
		if e.Kind != string(custody.ExcursionSilence) {
			continue
		}
		end := t1
		if e.End != nil {
			end = *e.End
		}
		xa, xb := clampX(X(e.Start)), clampX(X(end))
		pdf.Rect(xa, y+0.4, max(xb-xa, 0.5), stripH-0.8, "F")
	}
	r.drawColor(colGrid)
	pdf.SetLineWidth(0.15)
	pdf.Rect(x0, sy, w, 3*stripH, "D")
	r.y = y0 + chartH + 3*stripH + 5
	// Legend.
	r.font("", tinyPt)
	r.color(colMuted)
	legend := fmt.Sprintf("Device time, %s. Green band: allowed range; dashed: profile limits; red: excursions; silence: no reading for longer than the silence limit.", r.d.zone)
	if s.breakAfter > 0 {
		legend += fmt.Sprintf(" The line breaks where no reading came for longer than %s.", dur(s.breakAfter))
	}
	if tele.Available && s.count > 0 {
		legend += fmt.Sprintf(" %d temperature readings drawn as %d points (lowest and highest per %.1f mm, limit crossings and excursion points kept).", s.count, len(s.points), bucketMM)
	}
	for _, l := range r.wrap(legend, contentW) {
		r.text(marginL, r.y+2, l)
		r.y += 2.8
	}
	r.y += 1
}

// ---------------------------------------------------------------------------
// Issues and verification.

func (r *renderer) issues() {
	r.heading("Issues and dispositions")
	if len(r.d.issues) == 0 {
		r.para("", smallPt+0.5, colText, "No excursion was recorded, no shipment arrived with a broken seal, and no bedside check failed.")
		return
	}
	cols := []float64{14, 96, 70}
	head := func() { r.tableHead([]string{"Record", "Issue", "QA disposition"}, cols) }
	head()
	r.continued = head
	for _, is := range r.d.issues {
		d := "AWAITING QA DISPOSITION: release and infusion are blocked"
		if is.Closed != "" {
			d = is.Closed
		}
		if x := is.Disposition; x != nil {
			d = fmt.Sprintf("%s by %s, record %d, %s. Reason: %s", strings.ToUpper(x.Decision), x.By, x.Seq, r.both(x.Time), x.Reason)
		}
		r.row(cols, [][]string{{strconv.FormatUint(is.Seq, 10)}, r.wrapAll(is.Kind+". "+is.Summary, cols[1]-2), r.wrapAll(d, cols[2]-2)}, is.Disposition == nil && is.Closed == "", "B")
	}
	r.continued = nil
	r.y += 2
}

func (r *renderer) verification() {
	r.heading("Verification")
	cv, lv := r.in.ChainCheck, r.in.LedgerCheck
	status := func(rep custody.Report) string {
		if rep.OK {
			return "OK"
		}
		return fmt.Sprintf("FAILED at record %d: %s", rep.FirstBad, rep.Problem)
	}
	by := r.in.GeneratedBy
	r.kv([][2]string{
		{"Chain verification", fmt.Sprintf("%s: %d records of %s verified (hashes, chain links and sequence, the chain's state, and each received leg's telemetry seal recomputed from the stored readings)", status(cv), cv.Records, r.in.Chain.Display)},
		{"Chain head", cv.Head},
		{"Ledger verification", fmt.Sprintf("%s: %d records of the whole ledger verified", status(lv), lv.Records)},
		{"Ledger head", lv.Head},
		{"Ledger checkpoint", fmt.Sprintf("%d:%s", lv.Records, lv.Head)},
		{"Generated", r.both(r.in.GeneratedAt)},
		{"Generated by", fmt.Sprintf("%s (user %s, role %s)", by.Name, by.ID, by.Role)},
	})
	if p := r.in.Proof; p != nil {
		r.kv([][2]string{
			{"Proof checkpoint size", fmt.Sprintf("%d records", p.Checkpoint.Size)},
			{"Proof checkpoint root", p.Checkpoint.Root.String()},
			{"Proof key ID", strings.Join(p.KeyIDs, ", ")},
		})
		if p.Quorum > 0 {
			w := fmt.Sprintf("none yet: no checkpoint holding these records has reached the witness quorum (%d); "+
				"the checkpoint above is signed by the operator alone", p.Quorum)
			if len(p.Cosigners) > 0 {
				w = fmt.Sprintf("cosigned by %s (quorum %d reached): coid audit --witness-key KEY --quorum %d checks them",
					strings.Join(p.Cosigners, ", "), p.Quorum, p.Quorum)
			}
			r.kv([][2]string{{"Proof witnesses", w}})
		}
		r.y += 2
		r.para("", tinyPt, colMuted, "This PDF carries its proof as the attached file "+verifiable.BundleFile+": the signed checkpoint "+
			"above and, for every record listed, its ledger bytes and their Merkle inclusion proof. With coid's verifier key alone "+
			"(coid key show), coid audit --key KEY on this file checks that every record is in the ledger exactly as printed; "+
			"coid audit --since with an earlier checkpoint checks that the ledger only grew in between.")
	}
	r.y += 2
	r.para("", tinyPt, colMuted, "The ledger was verified when this report was generated: every record's SHA-256 was recomputed from its "+
		"canonical encoding and every link checked. The chain head identifies exactly the records shown here; a later record "+
		"changes it. The ledger checkpoint lets anyone check later that the ledger still holds what it held now: "+
		"coid verify --checkpoint with it fails if the ledger was cut back or rewritten since. "+
		"Patient identity is shown as initials and year of birth only.")
}

// review ends the report with QA's review of the custody record, as QA
// signed it in coid (review records of the chain), or says that none is
// recorded yet.
func (r *renderer) review() {
	r.heading("QA review")
	var n int
	for i := range r.in.Chain.Records {
		rec := &r.in.Chain.Records[i]
		if rec.Step != custody.StepReview {
			continue
		}
		n++
		x, _ := rec.Body().(custody.ReviewData)
		rows := [][2]string{{"Record", strconv.FormatUint(rec.Seq, 10)}}
		for _, s := range rec.Signatures {
			rows = append(rows,
				[2]string{"Reviewer", fmt.Sprintf("%s (user %s, role %s)", s.Name, s.User, s.Role)},
				[2]string{"Meaning", string(s.Meaning)},
				[2]string{"Signed", fmt.Sprintf("%s, %s", r.both(rec.Time), signedBy(s.Method))})
		}
		rows = append(rows, [2]string{"Statement", x.Statement})
		r.kv(rows)
		r.y += 2
	}
	if n == 0 {
		r.para("", smallPt+0.5, colText, "No QA review of this custody record is recorded yet. QA signs the review in coid "+
			"(step review on the chain), which records it in the chain; a report generated after it shows it here.")
	}
}

// signedBy says how a signer was authenticated, from the signature's
// method.
func signedBy(method string) string {
	switch method {
	case custody.MethodPassword:
		return "by password"
	case custody.ViaSession:
		return "by signed-in session"
	case custody.ViaToken:
		return "by API token"
	case custody.MethodSystem:
		return "by coid"
	case "":
		return "method not recorded"
	}
	return "by " + method
}
