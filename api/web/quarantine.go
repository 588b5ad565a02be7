package web

import (
	"context"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/coid-project/coid/custody"
)

// The telemetry quarantine on the QA console: the shipper payloads coid
// refused (undecodable, or contradicting a stored reading), newest first,
// a page at a time, for the roles custody.MayViewQuarantine names.
// Telemetry carries no patient identifiers, so the payload's beginning is
// shown as received.

const (
	// quarantinePage is how many refused payloads one page shows.
	quarantinePage = 20
	// quarantineMax bounds how far back the pages reach: the store lists
	// the newest entries only (custody.QuarantineLister).
	quarantineMax = 1000
	// quarantineExcerpt is how much of a payload a row shows.
	quarantineExcerpt = 160
)

// Option configures the web UI at Mount.
type Option func(*ui)

// WithQuarantine gives the QA console the telemetry quarantine to show;
// without it (or with nil) the console has no quarantine section.
func WithQuarantine(q custody.QuarantineLister) Option {
	return func(w *ui) { w.quarantine = q }
}

// quarantineRow is one refused payload as the console shows it.
type quarantineRow struct {
	custody.QuarantineEntry
	Shipper string
	Excerpt string
	Cut     bool // the excerpt is the payload's beginning only
}

// quarantineView is one page of the quarantine.
type quarantineView struct {
	Rows       []quarantineRow
	Page       int // from 1
	Prev, Next int // page numbers, 0 when there is none
	First      int // position of the first row, from 1
}

// quarantinePageOf reads page (from 1) of the quarantine, or nil when the
// UI has no quarantine.
func (w *ui) quarantinePageOf(ctx context.Context, pageParam string) (*quarantineView, error) {
	if w.quarantine == nil {
		return nil, nil
	}
	pg, err := strconv.Atoi(pageParam)
	if err != nil || pg < 1 {
		pg = 1
	}
	if last := quarantineMax / quarantinePage; pg > last {
		pg = last
	}
	from := (pg - 1) * quarantinePage
	list, err := w.quarantine.QuarantineList(ctx, 0, min(from+quarantinePage+1, quarantineMax))
	if err != nil {
		return nil, err
	}
	v := &quarantineView{Page: pg, First: from + 1}
	if pg > 1 {
		v.Prev = pg - 1
	}
	if len(list) > from+quarantinePage {
		v.Next = pg + 1
	}
	for i := from; i < len(list) && i < from+quarantinePage; i++ {
		v.Rows = append(v.Rows, quarantineRowOf(list[i]))
	}
	return v, nil
}

// quarantineRowOf shows a refused payload: its shipper (from the topic)
// and the beginning of the payload as text.
func quarantineRowOf(q custody.QuarantineEntry) quarantineRow {
	r := quarantineRow{QuarantineEntry: q}
	if rest, ok := strings.CutPrefix(q.Topic, "shippers/"); ok {
		r.Shipper, _, _ = strings.Cut(rest, "/")
	}
	b := q.Payload
	if len(b) > quarantineExcerpt {
		b, r.Cut = b[:quarantineExcerpt], true
	}
	r.Cut = r.Cut || q.Size > len(q.Payload)
	r.Excerpt = strings.ToValidUTF8(string(b), string(utf8.RuneError))
	return r
}
