package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// The QA console: chains by state and the open issues of every chain.

type stateCount struct {
	State    custody.State
	Text     string
	Count    int
	Selected bool
}

type chainRow struct {
	custody.ChainInfo
	Display    string
	OpenIssues int
}

type issueRow struct {
	COI     custody.COI
	Display string
	Issue   custody.Issue
	Text    string
	Detail  string
}

type consoleView struct {
	Counts  []stateCount
	Chains  []chainRow
	Issues  []issueRow
	Filter  custody.State
	InFight int
	// Listed is how many chains the table lists over all its pages;
	// Chains is one page of them. NextPage and FirstPage link to the
	// following and the first page (empty: none); Paged is set past the
	// first page.
	Listed              int
	NextPage, FirstPage string
	Paged               bool
	// Quarantine is a page of refused telemetry, for the roles that may
	// see it (custody.MayViewQuarantine); nil otherwise.
	Quarantine *quarantineView
	// Expiring lists the qualifications expiring within ExpiringDays (or
	// expired), for the roles that may see them; the section shows only
	// when it is not empty.
	Expiring     []expiringRow
	ExpiringDays int
	// Warnings are the hold-time warnings of legs still in transit,
	// newest first.
	Warnings []holdWarningRow
	// Deadlines are the after-the-fact steps owed by the expanded-access
	// requests the user may read, overdue first; the section shows only
	// when it is not empty.
	Deadlines []deadlineRow
	// Attention is the strip at the top: what waits for someone, each
	// kind counted and linked to its section, in custody.AttentionOrder.
	Attention []attentionRow
	// ExpiringMore says the expiring qualifications go on past the ones
	// listed (a page of consoleExpiringPage).
	ExpiringMore bool
}

// attentionRow is a panel of the attention strip, in words.
type attentionRow struct {
	custody.AttentionPanel
	Title, Href string
}

// attentionWords titles each attention panel and links it to its section.
var attentionWords = map[custody.AttentionKind][2]string{
	custody.AttentionExcursions: {"open excursion(s)", "#open-issues"},
	custody.AttentionQuarantine: {"refused telemetry payload(s)", "#quarantine"},
	custody.AttentionDeadlines:  {"overdue expanded-access deadline(s)", "#access-deadlines"},
	custody.AttentionHeld:       {"chain(s) on hold for QA's disposition", "#open-issues"},
	custody.AttentionExpiring:   {"qualification(s) expiring or expired", "#qualifications-expiring"},
}

// consoleExpiringPage bounds the expiring qualifications the console
// lists: the first page of the index, soonest first.
const consoleExpiringPage = 100

// deadlineRow is a step an expanded-access request owes, with what it is
// and when, in words.
type deadlineRow struct {
	custody.OwedDeadline
	What    string
	When    string
	Overdue bool
}

// deadlineRows words the deadlines the console raises at now.
func deadlineRows(list []custody.OwedDeadline, now time.Time) []deadlineRow {
	out := make([]deadlineRow, len(list))
	for i, d := range list {
		r := deadlineRow{OwedDeadline: d, What: string(d.Step), Overdue: d.Status == "overdue"}
		if d.Step == custody.StepIRBReported {
			r.What = "IRB report after the emergency authorisation (irb-reported)"
		}
		if r.Overdue {
			r.When = "overdue by " + humanDuration(now.Sub(d.Due))
		} else {
			r.When = "due in " + humanDuration(d.Due.Sub(now))
		}
		out[i] = r
	}
	return out
}

// expiringRow is one expiring qualification with when, in words.
type expiringRow struct {
	custody.Expiring
	When    string
	Expired bool
}

func expiringRows(list []custody.Expiring) []expiringRow {
	out := make([]expiringRow, len(list))
	for i, x := range list {
		r := expiringRow{Expiring: x, Expired: x.Days < 0}
		switch {
		case x.Days < 0:
			r.When = fmt.Sprintf("expired %d day(s) ago", -x.Days)
		case x.Days == 0:
			r.When = "expires today"
		default:
			r.When = fmt.Sprintf("in %d day(s)", x.Days)
		}
		out[i] = r
	}
	return out
}

// consolePageSize is how many chains a page of the console's table
// holds unless the request says otherwise (limit).
const consolePageSize = 50

func (w *ui) consolePage(c echo.Context) error {
	me := sessionUser(c)
	if !custody.MayUseConsole(me.Role) {
		return w.refuse(c, http.StatusForbidden, "The QA console is for QA, coordinators and manufacturing.",
			"Use the scan station to look up a chain.")
	}
	ctx := c.Request().Context()
	filter := custody.State(c.QueryParam("state"))
	if filter != "" && !slices.Contains(custody.States, filter) {
		filter = ""
	}
	limit, err := strconv.Atoi(c.QueryParam("limit"))
	if err != nil || limit < 1 {
		limit = consolePageSize
	}
	limit = min(limit, custody.MaxConsolePage)
	after := c.QueryParam("after")
	con, err := w.svc.ConsoleFor(ctx, me, filter, after, limit)
	if err != nil {
		return w.fail(c, err)
	}
	v := consoleView{Filter: filter, InFight: con.InFlight, Listed: con.Listed, Paged: after != ""}
	for _, ch := range con.Issues {
		for _, is := range ch.OpenIssues() {
			row := issueRow{COI: ch.COI, Display: ch.Display, Issue: is, Text: issueText(is.Kind)}
			row.Detail = excursionDetail(ch, is.Seq)
			if is.ReopenedBy != 0 {
				row.Detail += fmt.Sprintf("; reopened by record %d: readings stored after QA's acceptance changed its figures", is.ReopenedBy)
			}
			if is.Kind == custody.IssueMismatch {
				row.Detail = mismatchDetail(ch, is.Seq)
			}
			v.Issues = append(v.Issues, row)
		}
	}
	for _, r := range con.Chains {
		v.Chains = append(v.Chains, chainRow{ChainInfo: r.ChainInfo, Display: r.COI.Display(), OpenIssues: r.OpenIssues})
	}
	if con.Next != "" {
		q := url.Values{"after": {con.Next}}
		if filter != "" {
			q.Set("state", string(filter))
		}
		if limit != consolePageSize {
			q.Set("limit", strconv.Itoa(limit))
		}
		v.NextPage = "/qa?" + q.Encode() + "#chains"
	}
	if v.Paged {
		v.FirstPage = "/qa#chains"
		if filter != "" {
			v.FirstPage = "/qa?" + url.Values{"state": {string(filter)}}.Encode() + "#chains"
		}
	}
	for _, st := range custody.States {
		v.Counts = append(v.Counts, stateCount{State: st, Text: stateText(st), Count: con.Counts[st], Selected: st == filter})
	}
	v.Deadlines = deadlineRows(con.AccessDeadlines, w.svc.Now())
	if v.Warnings, err = w.holdWarningRows(ctx, con.InTransit); err != nil {
		return w.fail(c, err)
	}
	panels := con.Attention
	if custody.MaySeeExpiringQualifications(me.Role) {
		v.ExpiringDays = w.srv.QualificationWarningDays()
		list, next, err := w.svc.ExpiringQualificationsPage(ctx, me, v.ExpiringDays, "", consoleExpiringPage)
		if errors.Is(err, errors.ErrUnsupported) {
			list, err = w.svc.ExpiringQualifications(ctx, me, v.ExpiringDays) // a store without the index
		}
		if err != nil {
			return w.fail(c, err)
		}
		v.Expiring, v.ExpiringMore = expiringRows(list), next != ""
		panels = append(panels, custody.AttentionPanel{Kind: custody.AttentionExpiring, Count: len(list), More: next != ""})
	}
	if custody.MayViewQuarantine(me.Role) {
		if v.Quarantine, err = w.quarantinePageOf(ctx, c.QueryParam("quarantine")); err != nil {
			return w.fail(c, err)
		}
		if n, err := w.quarantineCount(ctx); err != nil {
			return w.fail(c, err)
		} else if n > 0 {
			panels = append(panels, custody.AttentionPanel{Kind: custody.AttentionQuarantine, Count: n})
		}
	}
	for _, p := range custody.SortAttention(panels) {
		words := attentionWords[p.Kind]
		v.Attention = append(v.Attention, attentionRow{AttentionPanel: p, Title: words[0], Href: words[1]})
	}
	return w.render(c, http.StatusOK, "console", page{Title: "QA console", Nav: "qa", V: v})
}

// mismatchDetail says whether a bedside mismatch was acknowledged, and by
// whom.
func mismatchDetail(ch *custody.Chain, seq uint64) string {
	for _, m := range ch.Mismatches {
		if m.Seq != seq {
			continue
		}
		if !m.Acknowledged {
			return "not yet acknowledged: a nurse, coordinator or QA acknowledges it on the chain page"
		}
		return fmt.Sprintf("acknowledged by %s (record %d); the bag is set aside until QA decides", m.AcknowledgedBy, m.AcknowledgeSeq)
	}
	return ""
}

// excursionDetail describes an excursion record: leg, worst value, how
// long, with the final figures once the system recorded its end.
func excursionDetail(ch *custody.Chain, seq uint64) string {
	list, err := custody.ChainExcursions(ch)
	if err != nil {
		return ""
	}
	for _, d := range list {
		if d.Seq != seq {
			continue
		}
		s := fmt.Sprintf("leg %d, shipper %s, %s profile, for %s", d.Leg, d.Shipper, d.Profile, humanDuration(time.Duration(d.DurationNS)))
		if d.Worst != nil {
			s += ", worst " + measure(d.Kind, *d.Worst)
			if d.Limit != nil {
				s += " (limit " + measure(d.Kind, *d.Limit) + ")"
			}
		}
		switch {
		case d.End == nil:
			s += ", ongoing: no end recorded yet"
		case d.EndedSeq != 0:
			s += fmt.Sprintf(", ended %s (recorded in record %d)", screenTime(*d.End), d.EndedSeq)
		}
		return s
	}
	return ""
}

// holdWarningRow is a hold-time warning on a leg still in transit.
type holdWarningRow struct {
	custody.HoldWarningEntry
	Display string
}

// holdWarningRows returns the hold-time warnings of the legs of chains
// (listed for this user) still in transit, newest first: what the QA
// console shows beside the live alerts. A received leg's warnings are
// over and are on its chain page.
func (w *ui) holdWarningRows(ctx context.Context, infos []custody.ChainInfo) ([]holdWarningRow, error) {
	var out []holdWarningRow
	for _, ci := range infos {
		if ci.State != custody.StateToManufacturing && ci.State != custody.StateToTreatment {
			continue
		}
		ch, err := w.svc.Chain(ctx, ci.COI)
		if err != nil {
			return nil, err
		}
		ws, err := custody.ChainHoldWarnings(ch)
		if err != nil {
			return nil, err
		}
		for _, x := range ws {
			if x.Leg >= 1 && x.Leg <= len(ch.Legs) && ch.Legs[x.Leg-1].Open {
				out = append(out, holdWarningRow{HoldWarningEntry: x, Display: ch.Display})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b holdWarningRow) int { return b.Time.Compare(a.Time) })
	return out, nil
}

// quarantineCount counts the refused payloads for the attention strip:
// the store's own count when it keeps one, else the quarantine's list,
// which is bounded (quarantineMax).
func (w *ui) quarantineCount(ctx context.Context) (int, error) {
	if w.quarantine == nil {
		return 0, nil
	}
	if c, ok := w.quarantine.(interface {
		QuarantineCount(ctx context.Context) (int, error)
	}); ok {
		return c.QuarantineCount(ctx)
	}
	list, err := w.quarantine.QuarantineList(ctx, 0, quarantineMax)
	return len(list), err
}
