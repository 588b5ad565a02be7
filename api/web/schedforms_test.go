package web_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// waitEntry returns chain coi's waiting-list entry (nil: not waiting).
func (e *webEnv) waitEntry(coi custody.COI) *custody.WaitEntry {
	e.t.Helper()
	list, _, err := e.svc.Waitlist(context.Background(), e.users[wAdmin], "", 0, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, x := range list {
		if x.COI == coi {
			return &x
		}
	}
	return nil
}

// TestWebWaitlistForms: a coordinator puts a chain on the waiting list,
// changes its urgency, declines and accepts its offers and takes a chain
// off, each with its reason; each refusal shows beside its field (or
// above the list) and changes nothing; another role, or a forged CSRF
// token, changes nothing.
func TestWebWaitlistForms(t *testing.T) {
	e := newWebEnv(t, false)
	webSchedule(t, e, true)
	a, b := e.enrollRegistered(), e.enrollRegistered()
	coord, nurse := e.login(wCoord), e.login(wNurse1)
	p := coord.get("/waitlist")
	wantBody(t, p, "coordinator's list", `id="form-wl-add"`)
	wantNotBody(t, nurse.get("/waitlist"), "nurse's list", `id="form-wl-add"`)
	add := func(coi custody.COI, urgency, reason string) url.Values {
		return url.Values{"coi": {string(coi)}, "urgency": {urgency}, "reason": {reason}}
	}
	state := func() string {
		var sb strings.Builder
		for _, coi := range []custody.COI{a, b} {
			if x := e.waitEntry(coi); x != nil {
				sb.WriteString(string(x.COI) + ":" + string(rune('0'+x.Urgency)))
				if x.Offer != nil {
					sb.WriteString("@" + x.Offer.Slot.Date)
				}
				sb.WriteString(";")
			}
		}
		return sb.String()
	}
	sigs := func(pw string) url.Values {
		return url.Values{"sig_user_1": {wCoord}, "sig_password_1": {pw}, "sig_meaning_1": {"authored"}}
	}
	for _, x := range []struct {
		name        string
		who         *browser
		path        string
		form        url.Values
		code        int
		field, says string // the refusal beside field ("": above the list)
		changes     bool
	}{
		{"not a COI", coord, "/waitlist", add("CHA-nonsense", "1", "plant full"), 400, "coi", "", false},
		{"no reason", coord, "/waitlist", add(a, "1", ""), 400, "reason", "reason", false},
		{"urgency 7", coord, "/waitlist", add(a, "7", "plant full"), 400, "urgency", "urgency 7", false},
		{"a reason naming the patient", coord, "/waitlist", add(a, "1", webPatient.Name+" is worse"), 400, "reason", "", false},
		{"a nurse adds", nurse, "/waitlist", add(a, "1", "plant full"), 403, "", "", false},
		{"forged CSRF", coord, "/waitlist", func() url.Values { v := add(a, "1", "plant full"); v.Set("csrf", "forged"); return v }(), 403, "", "", false},
		{"added", coord, "/waitlist", add(a, "2", "plant full in December"), 303, "", "", true},
		{"added twice", coord, "/waitlist", add(a, "2", "plant full"), 409, "", "already", false},
		{"added b", coord, "/waitlist", add(b, "3", "plant full in December"), 303, "", "", true},
		{"same urgency", coord, "/waitlist/" + string(a) + "/urgency", url.Values{"urgency": {"2"}, "reason": {"worse"}}, 409, "urgency", "already", false},
		{"urgency without reason", coord, "/waitlist/" + string(a) + "/urgency", url.Values{"urgency": {"1"}}, 400, "reason", "reason", false},
		{"a nurse changes urgency", nurse, "/waitlist/" + string(a) + "/urgency", url.Values{"urgency": {"1"}, "reason": {"worse"}}, 403, "", "", false},
		{"urgency changed", coord, "/waitlist/" + string(a) + "/urgency", url.Values{"urgency": {"1"}, "reason": {"disease progressing"}}, 303, "", "", true},
		{"decline without an offer", coord, "/waitlist/" + string(b) + "/decline", url.Values{"reason": {"not fit"}}, 404, "", "no open offer", false},
		{"remove without reason", coord, "/waitlist/" + string(b) + "/remove", url.Values{}, 400, "reason", "reason", false},
		{"a nurse removes", nurse, "/waitlist/" + string(b) + "/remove", url.Values{"reason": {"x"}}, 403, "", "", false},
	} {
		t.Run(x.name, func(t *testing.T) {
			before, audit := state(), len(e.auditOf(custody.KindWaitlist))
			x.who.get("/waitlist")
			p := x.who.post(x.path, x.form)
			wantCode(t, p, x.code, x.name)
			if x.field != "" {
				wantFormFieldError(t, p, x.name, x.path, x.field, x.says)
			} else if x.says != "" {
				wantBody(t, p, x.name, x.says)
			}
			changed := state() != before || len(e.auditOf(custody.KindWaitlist)) != audit
			if changed != x.changes {
				t.Errorf("%s: changed %v (%s -> %s), want %v", x.name, changed, before, state(), x.changes)
			}
		})
	}
	p = coord.get("/waitlist")
	if i, j := strings.Index(p.Body, `data-coi="`+string(a)), strings.Index(p.Body, `data-coi="`+string(b)); i < 0 || j < 0 || i > j {
		t.Errorf("a (urgency 1) is not listed before b")
	}
	// QA runs the allocation: a, the most urgent, is offered the first
	// free slot, which is then held for it; b the next.
	ds, err := e.svc.AllocateWaitlist(context.Background(), e.users[wQA])
	if err != nil || len(ds) == 0 || ds[0].Offered != a {
		t.Fatalf("allocation: %+v %v", ds, err)
	}
	first := e.waitEntry(a).Offer.Slot.Date
	p = coord.get("/waitlist")
	wantBody(t, p, "offers", `id="wl-accept-`+string(a)+`"`, `id="wl-decline-`+string(a)+`"`, "slot "+first+", held until")
	for _, x := range []struct {
		name        string
		path        string
		form        url.Values
		code        int
		field, says string
		changes     bool
	}{
		{"decline without reason", "/decline", url.Values{}, 400, "reason", "reason", false},
		{"accept with a wrong password", "/accept", sigs("wrong"), 401, "", "", false},
		{"declined", "/decline", url.Values{"reason": {"patient needs a few more days"}}, 303, "", "", true},
	} {
		t.Run(x.name, func(t *testing.T) {
			before, records := state(), len(e.chain(a).Records)
			coord.get("/waitlist")
			p := coord.post("/waitlist/"+string(a)+x.path, x.form)
			wantCode(t, p, x.code, x.name)
			if x.field != "" {
				wantFormFieldError(t, p, x.name, "/waitlist/"+string(a)+x.path, x.field, x.says)
			}
			if changed := state() != before || len(e.chain(a).Records) != records; changed != x.changes {
				t.Errorf("%s: changed %v (%s -> %s), want %v", x.name, changed, before, state(), x.changes)
			}
		})
	}
	// Declined, the slot passed on; a holds a later offer, which it
	// accepts: it is booked on the offered day and leaves the list.
	o := e.waitEntry(a).Offer
	if o == nil || o.Slot.Date == first {
		t.Fatalf("after the decline: %+v", o)
	}
	coord.get("/waitlist")
	wantCode(t, coord.post("/waitlist/"+string(a)+"/accept", sigs(webPassword(wCoord))), http.StatusSeeOther, "accept")
	if e.waitEntry(a) != nil {
		t.Error("a accepted is still on the list")
	}
	if bk := custody.BookingOf(e.chain(a)); bk.Current == nil || bk.Current.Plan.ManufacturingStart.Date != o.Slot.Date {
		t.Errorf("a accepted is not booked on %s: %+v", o.Slot.Date, bk.Current)
	}
	coord.get("/waitlist")
	wantCode(t, coord.post("/waitlist/"+string(b)+"/remove", url.Values{"reason": {"booked at another plant"}}), http.StatusSeeOther, "remove")
	if e.waitEntry(b) != nil {
		t.Error("b removed is still on the list")
	}
	for _, act := range []custody.AuditAction{custody.AuditWaitlistAdd, custody.AuditWaitlistUrgency, custody.AuditWaitlistDecline,
		custody.AuditWaitlistAccept, custody.AuditWaitlistRemove} {
		found := false
		for _, x := range e.auditOf(custody.KindWaitlist) {
			found = found || x.Action == act
		}
		if !found {
			t.Errorf("no %s in the audit trail", act)
		}
	}
}

// wantFormFieldError is wantFieldError for the form posting to action,
// one of many on the page.
func wantFormFieldError(t *testing.T, p page, what, action, field, want string) {
	t.Helper()
	i := strings.Index(p.Body, `action="`+action+`"`)
	if i < 0 {
		t.Errorf("%s: no form posting to %s", what, action)
		return
	}
	form := p.Body[i:]
	if j := strings.Index(form, "</form>"); j >= 0 {
		form = form[:j]
	}
	wantFieldError(t, page{Body: form}, what, field, want)
	if n := strings.Count(p.Body, `class="field-error"`); n != 1 {
		t.Errorf("%s: %d field refusals on the page, want 1", what, n)
	}
	if action != "/waitlist" && !strings.Contains(p.Body[max(0, i-400):i], " open>") {
		t.Errorf("%s: the refused form is not shown open", what)
	}
}

// auditOf returns the audit entries of kind.
func (e *webEnv) auditOf(kind custody.ObjectKind) []custody.AuditEntry {
	e.t.Helper()
	a, err := e.store.AuditEntries(context.Background(), custody.AuditFilter{Kind: kind})
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

// TestWebCollectOverride: collection of a chain without a booked slot is
// blocked; a coordinator and QA sign the override with a reason on the
// chain page, then collection is allowed. A refusal (no reason, a wrong
// password, the wrong role, a forged CSRF token) writes nothing.
func TestWebCollectOverride(t *testing.T) {
	e := newWebEnv(t, false)
	webSchedule(t, e, true)
	e.net().Bind(t, wQA, "CELLCO", "MFG-1")
	a := e.enrollRegistered()
	coord, qa, nurse := e.login(wCoord), e.login(wQA), e.login(wNurse1)
	wantBody(t, coord.get(coiPath(a)), "coordinator's chain page", `id="form-collect-override"`)
	wantBody(t, qa.get(coiPath(a)), "QA's chain page", `id="form-collect-override"`)
	e.net().Bind(t, wNurse2, "APHP", "PAR-1")
	wantNotBody(t, e.login(wNurse2).get(coiPath(a)), "a nurse's chain page", `id="form-collect-override"`)
	form := func(reason, qaPassword string) url.Values {
		return url.Values{"reason": {reason}, "sig_user_1": {wCoord}, "sig_password_1": {webPassword(wCoord)}, "sig_meaning_1": {"approved"},
			"sig_user_2": {wQA}, "sig_password_2": {qaPassword}, "sig_meaning_2": {"approved"}}
	}
	path := coiPath(a) + "/booking/override"
	for _, x := range []struct {
		name  string
		who   *browser
		form  url.Values
		code  int
		field string
		says  string
	}{
		{"no reason", coord, form("", webPassword(wQA)), 400, "reason", "reason"},
		{"a reason naming the patient", coord, form(webPatient.Name+" cannot wait", webPassword(wQA)), 400, "", ""},
		{"QA's wrong password", coord, form("plant slot released by phone", "wrong"), 401, "", ""},
		{"forged CSRF", coord, func() url.Values {
			v := form("plant slot released by phone", webPassword(wQA))
			v.Set("csrf", "forged")
			return v
		}(), 403, "", ""},
		{"a nurse", nurse, form("plant slot released by phone", webPassword(wQA)), 404, "", ""},
	} {
		t.Run(x.name, func(t *testing.T) {
			before := len(e.chain(a).Records)
			x.who.get(coiPath(a))
			p := x.who.post(path, x.form)
			wantCode(t, p, x.code, x.name)
			if x.field != "" {
				wantFieldError(t, p, x.name, x.field, x.says)
			}
			if n := len(e.chain(a).Records); n != before {
				t.Errorf("%s wrote %d record(s)", x.name, n-before)
			}
		})
	}
	if ch := e.chain(a); custody.BookingOf(ch).Override != 0 {
		t.Fatal("overridden before the good form")
	}
	qa.get(coiPath(a))
	p := qa.post(path, form("plant confirmed a slot by phone", webPassword(wQA)))
	wantCode(t, p, http.StatusSeeOther, "override")
	wantBody(t, qa.get(p.Location), "after the override", "Collection allowed without a booking (record")
	p = coord.get(coiPath(a))
	wantBody(t, p, "after the override", "collection allowed without one: record")
	wantNotBody(t, p, "after the override", `id="form-collect-override"`)
	if custody.BookingOf(e.chain(a)).Override == 0 {
		t.Fatal("no override recorded")
	}
	coord.get(coiPath(a))
	wantCode(t, coord.post(path, form("again", webPassword(wQA))), http.StatusConflict, "a second override")
}

// TestWebFeedTokens: a user issues a calendar feed token on their own
// screen, sees it and the feed addresses once, finds it listed (by ID
// only) afterwards, and revokes it; the feed then refuses it. A forged
// CSRF token issues nothing; another user's token cannot be revoked.
func TestWebFeedTokens(t *testing.T) {
	e := newWebEnv(t, false)
	webSchedule(t, e, true)
	coord, qa := e.login(wCoord), e.login(wQA)
	p := coord.get("/calendar-feeds")
	wantCode(t, p, http.StatusOK, "feeds screen")
	wantBody(t, p, "feeds screen", "You hold no feed token.", `id="form-feed-issue"`)
	wantCode(t, coord.post("/calendar-feeds", url.Values{"csrf": {"forged"}}), http.StatusForbidden, "forged CSRF")
	if toks, _ := e.svc.FeedTokens(context.Background(), e.users[wCoord], wCoord); len(toks) != 0 {
		t.Fatalf("a forged form issued %d token(s)", len(toks))
	}
	coord.get("/calendar-feeds")
	p = coord.post("/calendar-feeds", url.Values{})
	wantCode(t, p, http.StatusOK, "issue")
	i := strings.Index(p.Body, `<code id="feed-token">`)
	if i < 0 {
		t.Fatalf("the token is not shown:\n%s", excerpt(p.Body))
	}
	tok := p.Body[i+len(`<code id="feed-token">`):]
	tok = tok[:strings.Index(tok, "<")]
	wantBody(t, p, "issue", "/cal/PAR-1.ics?token="+url.QueryEscape(tok), "shown only once")
	u, err := e.svc.FeedUser(context.Background(), tok)
	if err != nil || u.ID != wCoord {
		t.Fatalf("the token shown opens no feed: %v %v", u.ID, err)
	}
	toks, _ := e.svc.FeedTokens(context.Background(), e.users[wCoord], wCoord)
	if len(toks) != 1 {
		t.Fatalf("%d tokens, want 1", len(toks))
	}
	p = coord.get("/calendar-feeds")
	wantBody(t, p, "list", `data-token="`+toks[0].ID+`"`)
	wantNotBody(t, p, "list", tok, `id="feed-new"`)
	// Another user cannot revoke it from their own screen.
	qa.get("/calendar-feeds")
	wantCode(t, qa.post("/calendar-feeds/"+toks[0].ID+"/revoke", url.Values{}), http.StatusNotFound, "another user's token")
	wantCode(t, coord.post("/calendar-feeds/nothex/revoke", url.Values{}), http.StatusBadRequest, "a bad token ID")
	if _, err := e.svc.FeedUser(context.Background(), tok); err != nil {
		t.Fatalf("a refused revocation ended the token: %v", err)
	}
	coord.get("/calendar-feeds")
	wantCode(t, coord.post("/calendar-feeds/"+toks[0].ID+"/revoke", url.Values{}), http.StatusSeeOther, "revoke")
	if _, err := e.svc.FeedUser(context.Background(), tok); !errors.Is(err, custody.ErrUnauthenticated) {
		t.Fatalf("a revoked token still opens the feed: %v", err)
	}
	wantBody(t, coord.get("/calendar-feeds"), "after revoking", "revoked", "You hold no feed token.")
}

// TestWebClosureChangeAndRemove: an administrator changes a plant
// closure's days and removes it on the capacity screen, each with its
// reason; the screen shows the chains the closure hits with the nearest
// free days; a coordinator, a missing reason, a closure not held or a
// forged CSRF token changes nothing.
func TestWebClosureChangeAndRemove(t *testing.T) {
	e := newWebEnv(t, false)
	webSchedule(t, e, true)
	a := e.enrollRegistered()
	ctx := context.Background()
	if _, err := e.svc.Book(ctx, e.users[wCoord], a, custody.BookRequest{ApheresisDate: "2026-12-01",
		Signatures: []custody.SignatureRequest{wsig(wCoord, custody.MeaningAuthored)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.AddClosure(ctx, e.users[wAdmin], "MFG-1", custody.Closure{From: "2026-12-08", To: "2026-12-09", Reason: "audit"}); err != nil {
		t.Fatal(err)
	}
	closures := func() []custody.Closure {
		cp, err := e.svc.SiteCapacity(ctx, e.users[wAdmin], "MFG-1")
		if err != nil {
			t.Fatal(err)
		}
		return cp.Closures
	}
	admin, coord := e.login(wAdmin), e.login(wCoord)
	base := "/admin/capacity/MFG-1/closures/2026-12-08/2026-12-09"
	wantBody(t, admin.get("/admin/capacity/MFG-1?month=2026-12"), "capacity screen", `action="`+base+`"`, `action="`+base+`/remove"`)
	wantNotBody(t, coord.get("/admin/capacity/MFG-1"), "a coordinator's capacity screen", `action="`+base+`"`)
	move := url.Values{"from": {"2026-12-02"}, "to": {"2026-12-03"}, "reason": {"clean room requalification moved"}}
	for _, x := range []struct {
		name string
		who  *browser
		path string
		form url.Values
		code int
	}{
		{"a coordinator changes", coord, base, move, 403},
		{"no reason", admin, base, url.Values{"from": {"2026-12-02"}, "to": {"2026-12-03"}}, 400},
		{"backwards", admin, base, url.Values{"from": {"2026-12-03"}, "to": {"2026-12-02"}, "reason": {"x"}}, 400},
		{"a closure not held", admin, "/admin/capacity/MFG-1/closures/2026-12-07/2026-12-09", move, 404},
		{"forged CSRF", admin, base, func() url.Values { v := url.Values{"csrf": {"forged"}}; return v }(), 403},
		{"removed without a reason", admin, base + "/remove", url.Values{}, 400},
		{"removed by a coordinator", coord, base + "/remove", url.Values{"reason": {"x"}}, 403},
	} {
		t.Run(x.name, func(t *testing.T) {
			x.who.get("/admin/capacity/MFG-1")
			wantCode(t, x.who.post(x.path, x.form), x.code, x.name)
			if cl := closures(); len(cl) != 1 || cl[0].From != "2026-12-08" {
				t.Errorf("%s changed the closures: %+v", x.name, cl)
			}
		})
	}
	admin.get("/admin/capacity/MFG-1")
	wantCode(t, admin.post(base, move), http.StatusSeeOther, "changed")
	if cl := closures(); len(cl) != 1 || cl[0].From != "2026-12-02" || cl[0].To != "2026-12-03" {
		t.Fatalf("after the change: %+v", cl)
	}
	// The booking's manufacturing start (2 December) is now closed: the
	// screen lists the chain with the nearest free days.
	p := admin.get("/admin/capacity/MFG-1?month=2026-12")
	wantBody(t, p, "the closure's impact", `id="impacted"`, string(a), "2026-12-02", "clean room requalification moved", "2026-12-01", "2026-12-04")
	moved := "/admin/capacity/MFG-1/closures/2026-12-02/2026-12-03/remove"
	wantCode(t, admin.post(moved, url.Values{"reason": {"plant requalified early"}}), http.StatusSeeOther, "removed")
	if cl := closures(); len(cl) != 0 {
		t.Fatalf("after the removal: %+v", cl)
	}
	wantBody(t, admin.get("/admin/capacity/MFG-1?month=2026-12"), "after the removal", `id="no-impact"`)
}
