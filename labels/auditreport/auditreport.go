// Package auditreport writes the printable administrative audit-trail
// report: a PDF for the QA reviewer and a CSV for a spreadsheet, of the
// audit entries a filter selects, each with who, when, what, why and the
// changed values (old -> new), and the verification status of the whole
// trail's hash chain.
package auditreport

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"codeberg.org/go-pdf/fpdf"
	"github.com/coid-project/coid/custody"
)

// Input is what a report shows.
type Input struct {
	// Filter is the selection the entries were made with; the report
	// prints it.
	Filter custody.AuditFilter
	// Entries are the selected entries, in trail order.
	Entries []custody.AuditEntry
	// GeneratedBy is the user the report is made for; GeneratedAt when
	// (an injected clock; printed in UTC, and the PDF's dates).
	GeneratedBy custody.User
	GeneratedAt time.Time
	// Verified is how many entries of the whole trail were checked, and
	// VerifyErr the first failure of that check (nil: the hash chain
	// holds over all of them).
	Verified  int
	VerifyErr error
}

// Pager reads one page of the trail: the entries after seq after, at most
// limit of them, in order.
type Pager func(ctx context.Context, after uint64, limit int) ([]custody.AuditEntry, error)

// verifyPage is how many entries VerifyTrail reads at a time.
const verifyPage = 500 // at most custody.MaxRegistryPage

// VerifyTrail checks the whole trail's hash chain page by page, so a long
// trail is never held whole, and returns how many entries it checked and
// the first failure (nil when the chain holds). A read error is returned
// as err; a broken chain as broken.
func VerifyTrail(ctx context.Context, page Pager) (n int, broken, err error) {
	var prev *custody.AuditEntry
	var after uint64
	for {
		es, err := page(ctx, after, verifyPage)
		if err != nil {
			return n, nil, err
		}
		for i := range es {
			if err := custody.VerifyAuditEntry(es[i], prev); err != nil {
				return n, err, nil
			}
			prev = &es[i]
			n++
		}
		if len(es) < verifyPage {
			return n, nil, nil
		}
		after = es[len(es)-1].Seq
	}
}

// Change is one field an entry changed: its name and the values before
// (empty with Had false for a field that did not exist) and after (Has
// false for a field removed).
type Change struct {
	Field    string
	Old, New string
	Had, Has bool
}

// String renders c as "field: old -> new", a missing value as "(none)".
func (c Change) String() string {
	o, n := "(none)", "(none)"
	if c.Had {
		o = c.Old
	}
	if c.Has {
		n = c.New
	}
	return c.Field + ": " + o + " -> " + n
}

// Changes lists the fields e changed, by name, with their values before
// and after: a JSON string as its text, any other value as JSON. Values
// that are not JSON objects (never stored: Validate refuses them) show as
// one field "values".
func Changes(e custody.AuditEntry) []Change {
	var o, n map[string]json.RawMessage
	if len(e.Old) > 0 && json.Unmarshal(e.Old, &o) != nil {
		o = map[string]json.RawMessage{"values": e.Old}
	}
	if json.Unmarshal(e.New, &n) != nil {
		n = map[string]json.RawMessage{"values": e.New}
	}
	var names []string
	for k := range o {
		names = append(names, k)
	}
	for k := range n {
		if _, ok := o[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	var out []Change
	for _, k := range names {
		ov, had := o[k]
		nv, has := n[k]
		if had && has && bytes.Equal(compact(ov), compact(nv)) {
			continue
		}
		out = append(out, Change{Field: k, Old: value(ov), New: value(nv), Had: had, Has: has})
	}
	return out
}

func compact(r json.RawMessage) []byte {
	var b bytes.Buffer
	if json.Compact(&b, r) != nil {
		return r
	}
	return b.Bytes()
}

func value(r json.RawMessage) string {
	if r == nil {
		return ""
	}
	var s string
	if json.Unmarshal(r, &s) == nil {
		return s
	}
	return string(compact(r))
}

// FilterText describes f in words, as the report prints it.
func FilterText(f custody.AuditFilter) string {
	var p []string
	if !f.From.IsZero() {
		p = append(p, "from "+utc(f.From)+" (inclusive)")
	}
	if !f.To.IsZero() {
		p = append(p, "to "+utc(f.To)+" (exclusive)")
	}
	if f.Actor != "" {
		p = append(p, "actor "+f.Actor)
	}
	if f.Kind != "" {
		p = append(p, "kind "+string(f.Kind))
	}
	if f.Code != "" {
		p = append(p, "object "+f.Code)
	}
	if f.After != 0 {
		p = append(p, fmt.Sprintf("after entry %d", f.After))
	}
	if len(p) == 0 {
		return "all entries"
	}
	return strings.Join(p, ", ")
}

// VerificationText is the report's sentence on the trail's hash chain.
func VerificationText(in *Input) string {
	if in.VerifyErr != nil {
		return fmt.Sprintf("VERIFICATION FAILED: the audit trail's hash chain is broken (entries checked before the failure: %d): %v. "+
			"The entries below cannot be relied on; report this to QA.", in.Verified, in.VerifyErr)
	}
	return fmt.Sprintf("Verified: the hash chain of the whole audit trail (%d entries, not only those shown) was checked and holds.", in.Verified)
}

func utc(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") + " UTC" }

// CSVHeader is the CSV report's header row.
var CSVHeader = []string{"seq", "time_utc", "actor", "kind", "code", "action", "reason", "changes", "hash"}

// WriteCSV writes the entries of in as CSV (RFC 4180: CRLF line ends,
// quoted where needed): a header row, then one row per entry, its changes
// as "field: old -> new" lines in one cell. A cell starting with = + - @
// a tab or a carriage return is prefixed with ' so that a spreadsheet does
// not run it as a formula.
func WriteCSV(w io.Writer, in *Input) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	if err := cw.Write(CSVHeader); err != nil {
		return err
	}
	for _, e := range in.Entries {
		var ch []string
		for _, c := range Changes(e) {
			ch = append(ch, c.String())
		}
		row := []string{fmt.Sprint(e.Seq), e.Time.UTC().Format(time.RFC3339Nano), e.Actor, string(e.Kind), e.Code,
			string(e.Action), e.Reason, strings.Join(ch, "\n"), e.Hash.String()}
		for i := range row {
			row[i] = Neutralise(row[i])
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// Neutralise prefixes s with ' when a spreadsheet would read it as a
// formula: it starts with = + - @, a tab or a carriage return.
func Neutralise(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// Page geometry, millimetres on A4 portrait.
const (
	marginL  = 15.0
	contentW = 180.0
	bodyTop  = 15.0
	bodyBot  = 280.0
	footerY  = 289.0
	lineH    = 3.6
)

// WritePDF writes the report of in as a PDF titled "Administrative audit
// trail": the filter, who generated it and when (UTC), the trail's
// verification status (a broken trail in a red box on the first page and
// in every footer), then each entry with its sequence number, time (UTC),
// actor, object, action, reason, the changed fields old -> new wrapped in
// full, and its hash; "page N of M" on every page. The PDF's dates are
// in.GeneratedAt, so the same input gives the same bytes.
func WritePDF(w io.Writer, in *Input) error {
	if in.GeneratedAt.IsZero() {
		return fmt.Errorf("audit report: generation time not set: %w", custody.ErrInvalid)
	}
	pdf := fpdf.New("P", "mm", "A4", "")
	pdf.SetCatalogSort(true)
	pdf.SetCreationDate(in.GeneratedAt.UTC())
	pdf.SetModificationDate(in.GeneratedAt.UTC())
	pdf.SetProducer("coid audit report", false)
	pdf.SetCreator("coid", false)
	pdf.SetTitle("Administrative audit trail", true)
	pdf.SetMargins(marginL, bodyTop, marginL)
	pdf.SetAutoPageBreak(false, 0)
	pdf.SetCellMargin(0)
	pdf.AliasNbPages("{nb}")
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	y := bodyTop
	pdf.SetFooterFunc(func() {
		pdf.SetFont("Helvetica", "", 7)
		pdf.SetTextColor(90, 90, 90)
		status := "trail verified"
		if in.VerifyErr != nil {
			pdf.SetTextColor(180, 0, 0)
			status = "TRAIL VERIFICATION FAILED"
		}
		pdf.Text(marginL, footerY, tr(fmt.Sprintf("coid administrative audit trail  |  %s  |  generated %s by %s (%s)",
			status, utc(in.GeneratedAt), in.GeneratedBy.ID, in.GeneratedBy.Role)))
		p := fmt.Sprintf("page %d of {nb}", pdf.PageNo())
		pdf.Text(marginL+contentW-pdf.GetStringWidth(p)-4, footerY, p)
	})
	newPage := func() { pdf.AddPage(); y = bodyTop }
	need := func(h float64) {
		if y+h > bodyBot {
			newPage()
		}
	}
	// lines writes s wrapped to width wd at x, breaking pages as needed.
	lines := func(x, wd float64, s string) {
		for _, para := range strings.Split(s, "\n") {
			ls := pdf.SplitText(tr(para), wd)
			if len(ls) == 0 {
				ls = []string{""}
			}
			for _, l := range ls {
				need(lineH)
				y += lineH
				pdf.Text(x, y, l)
			}
		}
	}
	newPage()
	pdf.SetFont("Helvetica", "B", 15)
	pdf.SetTextColor(0, 0, 0)
	y += 6
	pdf.Text(marginL, y, "Administrative audit trail")
	y += 3
	pdf.SetFont("Helvetica", "", 8.5)
	lines(marginL, contentW, "Filter: "+FilterText(in.Filter))
	lines(marginL, contentW, fmt.Sprintf("Generated at %s by %s (%s, %s)", utc(in.GeneratedAt), in.GeneratedBy.Name, in.GeneratedBy.ID, in.GeneratedBy.Role))
	lines(marginL, contentW, fmt.Sprintf("Entries shown: %d", len(in.Entries)))
	y += 2
	if in.VerifyErr != nil {
		pdf.SetFont("Helvetica", "B", 10)
		txt := pdf.SplitText(tr(VerificationText(in)), contentW-6)
		h := float64(len(txt))*4.5 + 4
		pdf.SetFillColor(250, 205, 205)
		pdf.SetDrawColor(180, 0, 0)
		pdf.SetLineWidth(0.8)
		pdf.Rect(marginL, y, contentW, h, "FD")
		pdf.SetTextColor(180, 0, 0)
		for _, l := range txt {
			y += 4.5
			pdf.Text(marginL+3, y, l)
		}
		y += 6
		pdf.SetTextColor(0, 0, 0)
	} else {
		pdf.SetFont("Helvetica", "B", 8.5)
		pdf.SetTextColor(0, 110, 0)
		lines(marginL, contentW, VerificationText(in))
		pdf.SetTextColor(0, 0, 0)
		y += 2
	}
	if len(in.Entries) == 0 {
		pdf.SetFont("Helvetica", "I", 8.5)
		lines(marginL, contentW, "No entry matches the filter.")
	}
	for _, e := range in.Entries {
		need(4 * lineH)
		y += 1.5
		pdf.SetDrawColor(150, 150, 150)
		pdf.SetLineWidth(0.2)
		pdf.Line(marginL, y, marginL+contentW, y)
		pdf.SetFont("Helvetica", "B", 8.5)
		lines(marginL, contentW, fmt.Sprintf("#%d   %s   %s %s   %s   by %s", e.Seq, utc(e.Time), e.Kind, e.Code, e.Action, e.Actor))
		pdf.SetFont("Helvetica", "", 8)
		lines(marginL+4, contentW-4, "Reason: "+orDash(e.Reason))
		ch := Changes(e)
		if len(ch) == 0 {
			lines(marginL+4, contentW-4, "Changes: none")
		} else {
			lines(marginL+4, contentW-4, "Changes:")
			for _, c := range ch {
				lines(marginL+8, contentW-8, c.String())
			}
		}
		pdf.SetFont("Courier", "", 7)
		lines(marginL+4, contentW-4, "Hash: "+e.Hash.String())
	}
	if err := pdf.Error(); err != nil {
		return fmt.Errorf("audit report: %w", err)
	}
	return pdf.Output(w)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
