package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coid-project/coid/api"
	"github.com/coid-project/coid/custody"
	"github.com/labstack/echo/v4"
)

// The chain page: state, the forms of the steps the user may take next,
// issues, legs with their charts, the timeline and the downloads.

type waitItem struct {
	Step  custody.Step
	Roles string
}

type recordView struct {
	Seq  uint64
	Step custody.Step
	Name string // the step in words
	Time time.Time
	// Local is Time in the zone of the registered site the record names
	// (in transit: the site the leg left), zone named ("2026-03-02 09:14
	// CET"); "" for a site from before the network, whose records show UTC
	// only.
	Local      string
	Site       string
	System     bool
	Summary    []string
	Signatures []signatureView
}

// signatureView is a signature of a record with its time shown in the zone
// of the record's site.
type signatureView struct {
	custody.Signature
	// When is the signature's time; nil when the recorded time does not
	// parse, and the page shows it as recorded.
	When *shownTime
}

type issueView struct {
	custody.Issue
	Text string
	// When is the issue's time in the zone of the site its record names.
	When shownTime
}

// legView is a leg as the chain page shows it: its departure in the zone
// of the site it left, its arrival in the zone of the site it reached, and
// what happened in transit (excursions, the chart) in the zone of the site
// it left, where the shipper was packed and its clock set.
type legView struct {
	custody.LegView
	ProfileLimits string
	Chart         *legChart
	Shipped       shownTime
	Received      *shownTime
	// Planned is the planned arrival, in the zone of the site the leg
	// goes to; nil when the ship record gave none.
	Planned      *shownTime
	Excursions   []excursionView
	HoldWarnings []holdWarningView
}

// holdWarningView is a hold-time warning of a leg with its time and its
// projection's device times shown in the zone of the site the leg left.
type holdWarningView struct {
	custody.HoldWarningEntry
	When, FitFrom, FitTo shownTime
	Refill               *shownTime
}

// excursionView is an excursion of a leg with its start and end shown in
// the zone of the site the leg left.
type excursionView struct {
	custody.ExcursionEntry
	From shownTime
	To   *shownTime
}

type chainView struct {
	Chain       *custody.Chain
	Bag         string
	BagKind     string
	StateText   string
	Forms       []stepForm
	Waiting     []waitItem
	Bedside     bool
	Other       []stepForm
	Disposition *stepForm
	Issues      []issueView
	OpenIssues  int
	Legs        []legView
	Timeline    []recordView
	Downloads   []download
	Terminal    bool
	// Unacked are the bedside mismatches nobody has acknowledged; they
	// block another bedside check and the infusion. MayAck: this user's
	// role may acknowledge them.
	Unacked []custody.Mismatch
	MayAck  bool
	// Booking is the chain's booked plan and its links; nil: none.
	Booking *chainBooking
	// Plan is the booked plan against the actual milestones; nil: the
	// chain holds no plan.
	Plan *planView
	// Request is the expanded-access request the chain was enrolled
	// from; "": none.
	Request custody.COI
}

// planView is a chain's plan against actual, as the chain page shows it.
type planView struct {
	custody.PlanVsActual
	Rows []planRow
}

// planRow is one milestone: its planned and actual day at its site, the
// delay and the segment it arose in, written out.
type planRow struct {
	Milestone, Planned, Actual, Delay, Arose string
}

// planOn returns chain ch's plan against actual as of now; nil without
// a plan.
func planOn(ch *custody.Chain, now time.Time) *planView {
	p := custody.ProgressOf(ch.Records)
	if !p.Booked() {
		return nil
	}
	v := &planView{PlanVsActual: p.Compare(ch.COI, now)}
	for _, m := range v.Milestones {
		r := planRow{Milestone: strings.ReplaceAll(m.Milestone, "_", " "), Planned: m.PlannedDate, Actual: m.ActualDate}
		if m.DelayDays != nil {
			r.Delay = strconv.Itoa(*m.DelayDays)
			if *m.AroseDays != 0 {
				r.Arose = fmt.Sprintf("%+d in %s", *m.AroseDays, m.Segment)
			}
		}
		v.Rows = append(v.Rows, r)
	}
	return v
}

func (w *ui) chainPage(c echo.Context) error {
	return w.renderChain(c, http.StatusOK, nil, "", nil)
}

// renderChain renders the chain page; failed names the step whose form
// failed with msg, and form holds what was submitted (passwords are never
// shown again).
func (w *ui) renderChain(c echo.Context, code int, msg *uiMessage, failed custody.Step, form url.Values) error {
	coi, err := api.COIParam(c)
	if err != nil {
		return w.fail(c, err)
	}
	ctx := c.Request().Context()
	ch, err := w.svc.ReadChain(ctx, sessionUser(c), coi)
	if err != nil {
		return w.fail(c, err)
	}
	me := sessionUser(c)
	v := chainView{Chain: ch, StateText: stateText(ch.State), Terminal: ch.State.Terminal()}
	for _, m := range ch.Mismatches {
		if !m.Acknowledged {
			v.Unacked = append(v.Unacked, m)
		}
	}
	v.MayAck = custody.MayAcknowledgeMismatch(me.Role)
	if len(ch.Records) > 0 && ch.Records[0].Step == custody.StepEnroll {
		var ed custody.EnrollData
		if json.Unmarshal(ch.Records[0].Data, &ed) == nil {
			v.Request = ed.Request
		}
	}
	if b := c.QueryParam("bag"); b != "" {
		if bag, err := custody.ParseBagID(b); err == nil && ch.HasBag(bag) {
			v.Bag, v.BagKind = bag.String(), string(bag.Kind)
		}
	}
	j := w.svc.Journey()
	for _, st := range ch.Next {
		rule, err := j.Rule(ch.State, st)
		if err != nil {
			continue
		}
		transition := slices.ContainsFunc(j.Transitions, func(t custody.Transition) bool { return t.From == ch.State && t.Step == st })
		if !rule.MaySign(me.Role) {
			if transition {
				v.Waiting = append(v.Waiting, waitItem{Step: st, Roles: rolesOf(rule)})
			}
			continue
		}
		f := stepForm{Step: st, Title: stepTitle(st), Action: "/chains/" + string(ch.COI) + "/steps/" + string(st),
			Fields: w.fieldsOf(ctx, me, st, ch), Sigs: sigBoxes(rule, me), Danger: st == custody.StepCancel, Open: st == failed}
		if st == failed {
			for i := range f.Fields {
				if x := form.Get(f.Fields[i].Name); x != "" {
					f.Fields[i].Value = x
				}
			}
			for i := range f.Sigs {
				f.Sigs[i].User = form.Get("sig_user_" + strconv.Itoa(i+1))
			}
		}
		if !w.decorateForm(c, ch, &f, stepFormValues(st, failed, form)) {
			continue
		}
		switch {
		case st == custody.StepBedsideVerify:
			v.Bedside = true
		case st == custody.StepDisposition:
			f.Open = true // offered only while issues are open
			v.Disposition = &f
		case transition && !f.Secondary:
			f.Main = true
			v.Forms = append(v.Forms, f)
		default:
			v.Other = append(v.Other, f)
		}
	}
	zones, err := w.svc.SiteZones(ctx, ch)
	if err != nil {
		return w.fail(c, err)
	}
	zoneOf := recordZones(ch, zones)
	v.Booking = w.bookingOnChain(ch, zones, me)
	v.Plan = planOn(ch, w.svc.Now())
	if failed == custody.StepCollectOverride {
		refusedOverride(c, v.Booking, form)
	}
	siteOf := make(map[uint64]string, len(ch.Records))
	for _, r := range ch.Records {
		siteOf[r.Seq] = r.Site
	}
	for _, is := range ch.Issues {
		v.Issues = append(v.Issues, issueView{Issue: is, Text: issueText(is.Kind), When: showTime(is.Time, zoneOf(siteOf[is.Seq]))})
		if is.Open {
			v.OpenIssues++
		}
	}
	legs, err := w.svc.Legs(ctx, coi)
	if err != nil {
		return w.fail(c, err)
	}
	for _, l := range legs {
		from, to := zones[l.From], zones[l.To]
		lv := legView{LegView: l, ProfileLimits: profileLimits(w.svc, l.Profile), Shipped: showTime(l.ShippedAt, from)}
		if l.ReceivedAt != nil {
			r := showTime(*l.ReceivedAt, to)
			lv.Received = &r
		}
		for _, e := range l.Excursions {
			ev := excursionView{ExcursionEntry: e, From: showTime(e.Start, from)}
			if e.End != nil {
				end := showTime(*e.End, from)
				ev.To = &end
			}
			lv.Excursions = append(lv.Excursions, ev)
		}
		if l.PlannedArrival != nil {
			pa := showTime(*l.PlannedArrival, to)
			lv.Planned = &pa
		}
		for _, hw := range l.HoldWarnings {
			p := hw.Projection
			hv := holdWarningView{HoldWarningEntry: hw, When: showTime(hw.Time, from), FitFrom: showTime(p.FitFrom, from), FitTo: showTime(p.FitTo, from)}
			if p.RefillAt != nil {
				r := showTime(*p.RefillAt, from)
				hv.Refill = &r
			}
			lv.HoldWarnings = append(lv.HoldWarnings, hv)
		}
		lv.Chart = w.chart(c, ch, l.Leg, l.Excursions, from)
		v.Legs = append(v.Legs, lv)
	}
	for i := len(ch.Records) - 1; i >= 0; i-- {
		rv := timelineEntry(ch.Records[i], zoneOf(ch.Records[i].Site))
		v.Timeline = append(v.Timeline, rv)
	}
	if custody.MayPrintLabels(me.Role) && len(ch.Bags) > 0 {
		v.Downloads = append(v.Downloads, download{"All bag labels (PDF)", "/chains/" + string(ch.COI) + "/labels.pdf"})
		if v.Bag != "" {
			v.Downloads = append(v.Downloads, download{"Label of " + v.Bag + " (PDF)", "/chains/" + string(ch.COI) + "/bags/" + v.Bag + "/label.pdf"})
		}
	}
	v.Downloads = append(v.Downloads, w.reportLinks(me, ch)...)
	return w.render(c, code, "chain", page{Title: ch.Display, Nav: "scan", Msg: msg, V: v})
}

// recordZones returns the zone in which to show what a record of ch at
// site happened: the zone of the registered site it names; for a record
// written in transit (an excursion, its system corrections), the zone of
// the site the leg left; nil (UTC only) for a site with no zone.
func recordZones(ch *custody.Chain, zones custody.SiteZones) func(site string) *time.Location {
	transit := map[string]*time.Location{}
	for _, l := range ch.Legs {
		if z, ok := zones[l.From]; ok {
			transit[l.InTransit()] = z
		}
	}
	return func(site string) *time.Location {
		if z, ok := zones[site]; ok {
			return z
		}
		return transit[site]
	}
}

func rolesOf(rule custody.Transition) string {
	var out []string
	for _, s := range rule.Signatures {
		for _, r := range s.Roles {
			if !slices.Contains(out, string(r)) {
				out = append(out, string(r))
			}
		}
	}
	return strings.Join(out, ", ")
}

// profileLimits says in words the temperature limits of the profile the
// service applies under name.
func profileLimits(svc *custody.Service, name string) string {
	p, ok := svc.Profile(name)
	if !ok {
		return ""
	}
	switch {
	case p.MinC != nil && p.MaxC != nil:
		return fmt.Sprintf("%g to %g °C", *p.MinC, *p.MaxC)
	case p.MaxC != nil:
		return fmt.Sprintf("at or below %g °C", *p.MaxC)
	case p.MinC != nil:
		return fmt.Sprintf("at or above %g °C", *p.MinC)
	}
	return ""
}

// timelineEntry says what a record holds in sentences, from the step data
// custody parsed (custody.StepData): no member names, durations as people
// read them, times in the screen's one format, and never a commitment,
// digest or wristband code. A step this file does not know is listed
// member by member, under the forms' labels. Times are shown in zone, the
// zone of the record's site, with UTC beside them; nil: UTC only.
func timelineEntry(r custody.Record, zone *time.Location) recordView {
	rv := recordView{Seq: r.Seq, Step: r.Step, Name: stepName(r.Step), Time: r.Time, Site: r.Site,
		System: r.SubmittedBy == custody.SystemUser || len(r.Signatures) > 0 && r.Signatures[0].Role == custody.RoleSystem}
	if zone != nil {
		rv.Local = localScreenTime(r.Time, zone)
	}
	for _, sg := range r.Signatures {
		sv := signatureView{Signature: sg}
		if t, err := time.Parse(time.RFC3339Nano, sg.Time); err == nil {
			st := showTime(t, zone)
			sv.When = &st
		}
		rv.Signatures = append(rv.Signatures, sv)
	}
	if _, err := r.Members(); err != nil {
		return rv
	}
	add := func(format string, a ...any) { rv.Summary = append(rv.Summary, fmt.Sprintf(format, a...)) }
	switch d := r.Body().(type) {
	case custody.EnrollData:
		add("Product %s", d.Product)
		add("Collection at %s, manufacturing at %s, treatment at %s", d.Sites.Collection, d.Sites.Manufacturing, d.Sites.Treatment)
	case custody.CollectData:
		add("DIN %s", d.DIN)
		if d.VolumeML != nil {
			add("%g mL in %d bag(s)", *d.VolumeML, d.Bags)
		}
		add("Collected from %s to %s", recordedTime(d.StartedAt, zone), recordedTime(d.EndedAt, zone))
	case custody.ShipData:
		add("Shipper %s, %s profile", d.Shipper, d.Profile)
		if d.PlannedArrival != nil {
			add("Planned arrival %s", d.PlannedArrival.UTC().Format("2006-01-02 15:04 UTC"))
		}
	case custody.HoldWarningData:
		add("Leg %d: %s", d.Leg, d.Message)
		add("Warning only: it blocks nothing")
	case custody.ReceiveData:
		if d.SealIntact != nil {
			if *d.SealIntact {
				add("Seal intact")
			} else {
				add("Seal broken")
			}
		}
		if d.Telemetry != nil {
			add("Telemetry sealed: %d readings", d.Telemetry.Seal.Count)
		}
	case custody.ManufactureData:
		add("%d final-product bag(s)", d.FinalBags)
		if d.ExpiresAt != nil {
			add("Expires %s", recordedTime(*d.ExpiresAt, zone))
		}
	case custody.ReleaseData:
		if d.ExpiresAt != nil {
			add("Expires %s", recordedTime(*d.ExpiresAt, zone))
		}
	case custody.BedsideData:
		if d.Bag != "" {
			add("Bag %s checked against the patient's wristband", d.Bag)
		}
		if d.WristbandMatch {
			add("The wristband matches this chain's patient")
		}
	case custody.InfuseData:
		add("Bag %s infused", d.Bag)
	case custody.ExcursionData:
		add("%s", strings.TrimSuffix(excursionSentence(d, zone), "."))
	case custody.MismatchData:
		for _, x := range d.Reasons {
			add("%s", capitalise(x))
		}
		switch {
		case d.BagCodeUnreadable:
			add("The bag label could not be read")
		case d.BagCode != "":
			add("Bag scanned: %s", bagText(d.BagCode))
		}
		if len(d.AttemptedBy) > 0 {
			add("Attempted by %s", strings.Join(d.AttemptedBy, " and "))
		}
	case custody.AcknowledgeData:
		add("Acknowledges the mismatch of record %d", d.Mismatch)
		add("%s", strings.TrimSuffix(d.Statement, "."))
	case custody.DispositionData:
		add("Record %d: %s", d.Excursion, decisionText(d.Decision))
		add("Reason: %s", d.Reason)
	case custody.CorrectionData:
		add("Corrects record %d", d.Corrects)
		if f := d.Figures; f != nil {
			kind, _, _ := strings.Cut(f.ID, "/") // an excursion ID is its kind and its start
			add("Excursion figures now%s", strings.TrimSuffix(excursionFigures(f.End, f.Worst, nil, f.DurationNS, f.BreachNS, custody.ExcursionKind(kind), zone), "."))
		}
		add("Reason: %s", d.Reason)
	case custody.CancelData:
		add("Reason: %s", d.Reason)
	case custody.NoteData:
		add("%s", d.Text)
	case custody.ReviewData:
		add("%s", d.Statement)
	default:
		rv.Summary = memberSummary(r)
	}
	return rv
}

// decisionText says a QA decision in words.
func decisionText(d string) string {
	switch d {
	case custody.DecisionAccept:
		return "accepted, the product may continue"
	case custody.DecisionReject:
		return "rejected, the product must not be used"
	}
	return d
}

// recordedTime shows an RFC 3339 time from step data as showTime shows it
// in zone; anything else as recorded.
func recordedTime(s string, zone *time.Location) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return showTime(t, zone).String()
}

// bagText shows a scanned label as its bag ID, never as the raw payload;
// a code that names no bag is said so.
func bagText(code string) string {
	c, err := custody.ParseCode(code)
	switch {
	case err != nil:
		return "a label that is not a coid bag label"
	case c.Bag == nil:
		return "the label of chain " + c.COI.Display() + ", not of a bag"
	}
	return c.Bag.String()
}

// memberSummary lists the scalar members of a record of a step this
// package does not know, under the forms' labels, without commitments and
// digests.
func memberSummary(r custody.Record) []string {
	m, err := r.Members()
	if err != nil {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		if strings.HasSuffix(k, "_commitment") || strings.HasSuffix(k, "_digest") || strings.HasSuffix(k, "_ns") || k == "wristband_code" {
			continue
		}
		var x any
		if json.Unmarshal(m[k], &x) != nil {
			continue
		}
		label := capitalise(strings.ReplaceAll(k, "_", " "))
		if l, ok := fieldLabels[k]; ok {
			label = l
		}
		switch t := x.(type) {
		case string, float64, bool:
			out = append(out, fmt.Sprintf("%s: %v", label, t))
		case []any:
			var parts []string
			for _, e := range t {
				if s, ok := e.(string); ok {
					parts = append(parts, s)
				}
			}
			if len(parts) > 0 {
				out = append(out, label+": "+strings.Join(parts, "; "))
			}
		}
	}
	return out
}
