package custody_test

import (
	"errors"
	"log/slog"
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/passwd"
)

var triageT0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// triageReq builds a request submitted at triageT0+at (hours) with the
// given later steps, each at its hour after triageT0.
func triageReq(id string, u custody.Urgency, at float64, steps ...any) *custody.AccessRequest {
	h := func(x float64) time.Time { return triageT0.Add(time.Duration(x * float64(time.Hour))) }
	r := &custody.AccessRequest{ID: custody.COI(id), State: custody.AccessSubmitted, Submission: custody.AccessSubmission{Urgency: u}, Submitted: h(at)}
	r.Events = append(r.Events, custody.AccessEvent{Step: custody.StepAccessSubmit, Time: h(at)})
	for i := 0; i < len(steps); i += 2 {
		st, t := steps[i].(custody.Step), h(steps[i+1].(float64))
		r.Events = append(r.Events, custody.AccessEvent{Step: st, Time: t})
		switch st {
		case custody.StepAccessRequestInfo:
			r.State = custody.AccessInfoRequested
		case custody.StepAccessRespond:
			r.State = custody.AccessSubmitted
		case custody.StepAccessDecide:
			r.State, r.Decided = custody.AccessApproved, t
		}
	}
	return r
}

// TestAccessClock checks the service-level clock against values worked
// out by hand, the pause while information is requested included.
func TestAccessClock(t *testing.T) {
	sla := custody.DefaultAccessSLA
	hr := func(x float64) time.Duration { return time.Duration(x * float64(time.Hour)) }
	for _, c := range []struct {
		name                       string
		r                          *custody.AccessRequest
		now                        float64
		elapsed, paused, due       float64 // hours; due after triageT0
		waiting, breached, dueSoon bool
	}{
		{"standard in time", triageReq("S1", custody.UrgencyStandard, 0), 144, 144, 0, 168, false, false, false},
		{"standard due soon", triageReq("S2", custody.UrgencyStandard, 0), 165, 165, 0, 168, false, false, true},
		{"emergency breached", triageReq("E1", custody.UrgencyEmergency, 0), 25, 25, 0, 24, false, true, false},
		// Waiting from hour 2 to 12: 10 hours do not count.
		{"emergency paused then answered", triageReq("E2", custody.UrgencyEmergency, 0,
			custody.StepAccessRequestInfo, 2.0, custody.StepAccessRespond, 12.0), 30, 20, 10, 34, false, false, true},
		// Still waiting since hour 2: the clock stands at 2 hours.
		{"emergency waiting", triageReq("E3", custody.UrgencyEmergency, 0, custody.StepAccessRequestInfo, 2.0), 40, 2, 38, 62, true, false, false},
		// Two rounds of questions: 3 + 5 hours paused.
		{"two rounds", triageReq("E4", custody.UrgencyEmergency, 0, custody.StepAccessRequestInfo, 1.0, custody.StepAccessRespond, 4.0,
			custody.StepAccessRequestInfo, 10.0, custody.StepAccessRespond, 15.0), 20, 12, 8, 32, false, false, false},
		// Decided at hour 30: the clock stopped there.
		{"decided late", triageReq("E5", custody.UrgencyEmergency, 0, custody.StepAccessDecide, 30.0), 100, 30, 0, 24, false, true, false},
	} {
		got := sla.ClockOf(c.r, triageT0.Add(hr(c.now)))
		if got.Elapsed != hr(c.elapsed) || got.Paused != hr(c.paused) || !got.Due.Equal(triageT0.Add(hr(c.due))) ||
			got.Waiting != c.waiting || got.Breached != c.breached || got.DueSoon != c.dueSoon {
			t.Errorf("%s: %+v", c.name, got)
		}
	}
	// Configured clocks replace the defaults.
	short := custody.AccessSLA{Emergency: 2 * time.Hour, Standard: 48 * time.Hour, DueSoon: time.Hour}
	if got := short.ClockOf(triageReq("E6", custody.UrgencyEmergency, 0), triageT0.Add(3*time.Hour)); !got.Breached || got.Limit != 2*time.Hour {
		t.Errorf("configured emergency clock: %+v", got)
	}
	if got := short.ClockOf(triageReq("S6", custody.UrgencyStandard, 0), triageT0.Add(47*time.Hour+30*time.Minute)); got.Breached || !got.DueSoon {
		t.Errorf("configured standard clock: %+v", got)
	}
}

func ids(items []custody.TriageItem) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, string(it.Request.ID))
	}
	return out
}

// TestBuildTriage checks the queue's order (emergency first, then by
// deadline), its counts, and that paging neither repeats nor skips a
// request when requests are added between pages.
func TestBuildTriage(t *testing.T) {
	sla := custody.DefaultAccessSLA
	reqs := []*custody.AccessRequest{
		triageReq("A", custody.UrgencyStandard, 10),  // due 178
		triageReq("B", custody.UrgencyEmergency, 20), // due 44
		triageReq("C", custody.UrgencyEmergency, 0),  // due 24: breached at 30
		triageReq("D", custody.UrgencyEmergency, 0, custody.StepAccessDecide, 5.0),
		triageReq("E", custody.UrgencyStandard, 0),                                      // due 168
		triageReq("G", custody.UrgencyEmergency, 0, custody.StepAccessRequestInfo, 1.0), // waiting since 1: due 30+23 = 53
	}
	now := triageT0.Add(30 * time.Hour)
	q := custody.BuildTriage(reqs, sla, now, "", 2)
	if got := ids(q.Items); !slices.Equal(got, []string{"C", "B"}) || q.Next == "" {
		t.Fatalf("first page: %v next %q", got, q.Next)
	}
	if q.Open != 5 || q.Breached != 1 || q.DueSoon != 0 {
		t.Errorf("counts: open %d breached %d due soon %d", q.Open, q.Breached, q.DueSoon)
	}
	if !q.Items[0].Clock.Breached {
		t.Errorf("C is not shown breached: %+v", q.Items[0].Clock)
	}
	// A new emergency request arrives between pages: it follows B by its
	// deadline and shows on the next page; nothing seen is repeated.
	reqs = append(reqs, triageReq("F", custody.UrgencyEmergency, 29.5)) // due 53.5
	seen := ids(q.Items)
	for q.Next != "" {
		q = custody.BuildTriage(reqs, sla, now, q.Next, 2)
		seen = append(seen, ids(q.Items)...)
	}
	if want := []string{"C", "B", "G", "F", "E", "A"}; !slices.Equal(seen, want) {
		t.Errorf("pages: %v, want %v", seen, want)
	}
	// Bounded: a limit out of range is the default.
	if q := custody.BuildTriage(reqs, sla, now, "", 0); len(q.Items) != 6 || q.Next != "" {
		t.Errorf("default limit: %v next %q", ids(q.Items), q.Next)
	}
}

// TestAccessFigures checks median and 90th percentile of the time to
// decision per month and urgency against values worked out by hand.
func TestAccessFigures(t *testing.T) {
	d := custody.StepAccessDecide
	reqs := []*custody.AccessRequest{
		// November, emergency: 10, 20, 30 hours: median 20, p90 at
		// h = 2*0.9 = 1.8: 20 + 0.8*10 = 28; one breached (30 > 24).
		triageReq("E1", custody.UrgencyEmergency, 0, d, 10.0),
		triageReq("E2", custody.UrgencyEmergency, 100, d, 130.0),
		triageReq("E3", custody.UrgencyEmergency, 200, d, 220.0),
		// November, standard: 48 hours.
		triageReq("S1", custody.UrgencyStandard, 0, d, 48.0),
		// December (hour 720 is 1 December), emergency: 8 hours less 3
		// waiting: 5.
		triageReq("E4", custody.UrgencyEmergency, 716, custody.StepAccessRequestInfo, 717.0, custody.StepAccessRespond, 720.0, d, 724.0),
		// Open: not counted.
		triageReq("O1", custody.UrgencyEmergency, 0),
	}
	got := custody.AccessFiguresOf(reqs, custody.DefaultAccessSLA)
	want := []custody.DecisionFigures{
		{Month: "2026-11", Urgency: custody.UrgencyEmergency, Count: 3, Median: 20, P90: 28, Breached: 1},
		{Month: "2026-11", Urgency: custody.UrgencyStandard, Count: 1, Median: 48, P90: 48},
		{Month: "2026-12", Urgency: custody.UrgencyEmergency, Count: 1, Median: 5, P90: 5},
	}
	if len(got) != len(want) {
		t.Fatalf("figures: %+v", got)
	}
	for i := range want {
		g := got[i]
		if g.Month != want[i].Month || g.Urgency != want[i].Urgency || g.Count != want[i].Count || g.Breached != want[i].Breached ||
			math.Abs(g.Median-want[i].Median) > 1e-9 || math.Abs(g.P90-want[i].P90) > 1e-9 {
			t.Errorf("figures[%d] = %+v, want %+v", i, g, want[i])
		}
	}
}

// TestAccessTriageService runs the queue through the service: the access
// team sees emergencies first, a request waiting for the physician is not
// breached however long the physician takes, and only the access team
// reads the queue.
func TestAccessTriageService(t *testing.T) {
	e := accessEnv(t)
	std := e.submitAccess(custody.UrgencyStandard)
	emg := e.submitAccess(custody.UrgencyEmergency)
	e.mustAccess(std.ID, "qa1", custody.StepAccessRequestInfo, custody.AccessStepData{Text: "Latest CD19 status?"})
	e.setNow(e.now.Add(10 * 24 * time.Hour))
	q, err := e.svc.AccessTriage(e.ctx, e.users["qa1"], "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(q.Items); !slices.Equal(got, []string{string(emg.ID), string(std.ID)}) {
		t.Fatalf("queue: %v", got)
	}
	if c := q.Items[1].Clock; !c.Waiting || c.Breached || c.Elapsed > time.Hour {
		t.Errorf("the waiting request's clock: %+v", c)
	}
	if q.Breached != 1 || !q.Items[0].Clock.Breached {
		t.Errorf("breaches: %d, %+v", q.Breached, q.Items[0].Clock)
	}
	// The physician answers: the clock runs again from there.
	e.mustAccess(std.ID, "doc2", custody.StepAccessRespond, custody.AccessStepData{Text: "CD19 positive on biopsy."})
	e.mustAccess(emg.ID, "qa1", custody.StepAccessDecide, custody.AccessStepData{Text: "Meets criteria.", Approve: &yes})
	q, err = e.svc.AccessTriage(e.ctx, e.users["qa1"], "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(q.Items); !slices.Equal(got, []string{string(std.ID)}) || q.Items[0].Clock.Waiting || q.Breached != 0 {
		t.Errorf("after the answer: %v %+v", got, q)
	}
	figs, err := e.svc.AccessFigures(e.ctx, e.users["qa1"])
	if err != nil || len(figs) != 1 || figs[0].Urgency != custody.UrgencyEmergency || figs[0].Breached != 1 {
		t.Errorf("figures: %+v %v", figs, err)
	}
	for _, who := range []string{"doc2", "nurse1"} {
		if _, err := e.svc.AccessTriage(e.ctx, e.users[who], "", 10); !errors.Is(err, custody.ErrForbidden) {
			t.Errorf("%s reads the queue: %v", who, err)
		}
	}
}

// TestAccessAssign: the access team of the request's manufacturing site
// hands an open request to a named colleague with a reason, as a signed
// record; other roles, other sites, assignees outside the team and a
// decided request are refused with nothing written.
func TestAccessAssign(t *testing.T) {
	e := accessEnv(t)
	if _, err := e.svc.AddUserIn(e.ctx, "qa2", "QA Two", custody.RoleQA, password("qa2"), "CELLCO", []string{"MFG-1"}); err != nil {
		t.Fatal(err)
	}
	e.users["qa2"], _ = e.store.User(e.ctx, "qa2")
	r := e.submitAccess(custody.UrgencyEmergency)
	assign := func(to, reason string) custody.AccessStepData {
		return custody.AccessStepData{Assignee: to, Text: reason}
	}
	for _, c := range []struct {
		name, by string
		data     custody.AccessStepData
		want     error
	}{
		{"physician assigns", "doc2", assign("qa2", "holiday cover"), custody.ErrForbidden},
		{"coordinator of another site", "coord", assign("qa2", "holiday cover"), custody.ErrForbidden},
		{"to a nurse", "qa1", assign("nurse1", "holiday cover"), custody.ErrInvalid},
		{"to a coordinator of another site", "qa1", assign("coord", "holiday cover"), custody.ErrInvalid},
		{"to nobody known", "qa1", assign("nobody", "holiday cover"), custody.ErrInvalid},
		{"without a reason", "qa1", assign("qa2", ""), custody.ErrInvalid},
		{"without an assignee", "qa1", assign("", "holiday cover"), custody.ErrInvalid},
	} {
		before := e.records()
		if _, err := e.access(r.ID, c.by, custody.StepAccessAssign, c.data); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if e.records() != before {
			t.Errorf("%s wrote a record", c.name)
		}
	}
	got := e.mustAccess(r.ID, "qa1", custody.StepAccessAssign, assign("qa2", "holiday cover"))
	last := got.Events[len(got.Events)-1]
	if got.Assignee != "qa2" || got.State != custody.AccessSubmitted || last.Step != custody.StepAccessAssign ||
		last.Data.Text != "holiday cover" || len(last.Signatures) != 1 || last.Signatures[0].User != "qa1" {
		t.Fatalf("after assign: %+v, last %+v", got, last)
	}
	q, err := e.svc.AccessTriage(e.ctx, e.users["qa1"], "", 10)
	if err != nil || len(q.Items) != 1 || q.Items[0].Request.Assignee != "qa2" {
		t.Fatalf("queue after assign: %+v %v", q, err)
	}
	// While waiting for the physician the request can be handed on too.
	e.mustAccess(r.ID, "qa1", custody.StepAccessRequestInfo, custody.AccessStepData{Text: "Latest CD19 status?"})
	e.mustAccess(r.ID, "qa2", custody.StepAccessAssign, assign("qa1", "back from leave"))
	e.mustAccess(r.ID, "doc2", custody.StepAccessRespond, custody.AccessStepData{Text: "CD19 positive on biopsy."})
	e.mustAccess(r.ID, "qa1", custody.StepAccessDecide, custody.AccessStepData{Text: "Meets criteria.", Approve: &yes})
	if _, err := e.access(r.ID, "qa1", custody.StepAccessAssign, assign("qa2", "late")); !errors.Is(err, custody.ErrConflict) {
		t.Errorf("assign after the decision: %v", err)
	}
}

// TestAccessTriageSeesNewRecords: a service that has read (and so
// cached) a request's fold shows the records appended since, by itself or
// by another service over the same store, in the triage queue and in the
// request itself.
func TestAccessTriageSeesNewRecords(t *testing.T) {
	e := accessEnv(t)
	reader, err := custody.NewService(custody.Config{Store: e.store, Hasher: passwd.Fast(), Logger: slog.New(slog.DiscardHandler),
		Now: func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }, FIN: "A9999",
		Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles()))})
	if err != nil {
		t.Fatal(err)
	}
	r := e.submitAccess(custody.UrgencyStandard)
	qa := e.users["qa1"]
	type seen struct {
		state    custody.State
		events   int
		assignee string
		waiting  bool
	}
	read := func(svc *custody.Service) seen {
		t.Helper()
		q, err := svc.AccessTriage(e.ctx, qa, "", 10)
		if err != nil || len(q.Items) != 1 {
			t.Fatalf("queue: %+v %v", q, err)
		}
		it := q.Items[0]
		got, err := svc.AccessRequest(e.ctx, qa, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != it.Request.State || len(got.Events) != len(it.Request.Events) {
			t.Fatalf("the request (%s, %d events) and its queue item (%s, %d events) differ", got.State, len(got.Events), it.Request.State, len(it.Request.Events))
		}
		return seen{it.Request.State, len(it.Request.Events), it.Request.Assignee, it.Clock.Waiting}
	}
	for _, svc := range []*custody.Service{e.svc, reader} {
		if got, want := read(svc), (seen{custody.AccessSubmitted, 1, "", false}); got != want {
			t.Fatalf("before: %+v, want %+v", got, want)
		}
	}
	e.mustAccess(r.ID, "qa1", custody.StepAccessRequestInfo, custody.AccessStepData{Text: "Latest CD19 status?"})
	e.mustAccess(r.ID, "qa1", custody.StepAccessAssign, custody.AccessStepData{Assignee: "qa1", Text: "mine"})
	for i, svc := range []*custody.Service{e.svc, reader} {
		if got, want := read(svc), (seen{custody.AccessInfoRequested, 3, "qa1", true}); got != want {
			t.Errorf("service %d after two records: %+v, want %+v", i, got, want)
		}
	}
	// Decided: the request leaves the queue.
	e.mustAccess(r.ID, "doc2", custody.StepAccessRespond, custody.AccessStepData{Text: "CD19 positive."})
	e.mustAccess(r.ID, "qa1", custody.StepAccessDecide, custody.AccessStepData{Text: "Meets criteria.", Approve: &yes})
	if got, err := reader.AccessRequest(e.ctx, qa, r.ID); err != nil || got.State != custody.AccessApproved || len(got.Events) != 5 {
		t.Fatalf("approved: %v %v", got, err)
	}
	if q, err := reader.AccessTriage(e.ctx, qa, "", 10); err != nil || len(q.Items) != 0 {
		t.Errorf("queue after the decision: %+v %v", q, err)
	}
}
