package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	goical "github.com/emersion/go-ical"
)

// newFeedToken creates a feed token for user through the API.
func (e *env) newFeedToken(t *testing.T, user string) custody.NewFeedToken {
	t.Helper()
	r := e.do(t, http.MethodPost, "/api/v1/me/feed-tokens", user, nil)
	e.conforms(t, http.MethodPost, "/api/v1/me/feed-tokens", r)
	if r.Code != http.StatusCreated {
		t.Fatalf("create feed token for %s: %s", user, r)
	}
	var out custody.NewFeedToken
	if err := json.Unmarshal(r.Body, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func calPath(site, token string) string {
	return "/cal/" + site + ".ics?token=" + url.QueryEscape(token)
}

func TestCalendarFeed(t *testing.T) {
	e := scheduleEnv(t)
	n := netOf(t, e)
	n.Bind(t, nurse2, "CELLCO", "MFG-1") // a nurse of another site than PAR-1
	r := e.do(t, http.MethodPost, "/api/v1/chains", coord, networkEnroll(netSites, "CART-19"))
	if r.Code != http.StatusCreated {
		t.Fatalf("enroll: %s", r)
	}
	var ch struct{ COI custody.COI }
	if err := json.Unmarshal(r.Body, &ch); err != nil {
		t.Fatal(err)
	}
	if r := e.do(t, http.MethodPost, chainPath(ch.COI, "/schedule"), coord, bookBody("2026-12-01", "", sig{coord, custody.MeaningAuthored, ""})); r.Code != http.StatusCreated {
		t.Fatalf("book: %s", r)
	}
	var booking custody.Booking
	if err := json.Unmarshal(e.do(t, http.MethodGet, chainPath(ch.COI, "/booking"), coord, nil).Body, &booking); err != nil || booking.Current == nil {
		t.Fatalf("booking: %v %+v", err, booking)
	}
	plan := booking.Current.Plan

	nurse := e.newFeedToken(t, nurse1)
	other := e.newFeedToken(t, nurse2)
	quality := e.newFeedToken(t, qa)
	revoked := e.newFeedToken(t, coord)
	if !strings.HasPrefix(nurse.Token, custody.FeedTokenPrefix) || nurse.ID == "" {
		t.Fatalf("feed token %+v", nurse)
	}
	if r := e.do(t, http.MethodPost, "/api/v1/me/feed-tokens/"+revoked.ID+"/revoke", coord, nil); r.Code != http.StatusOK {
		t.Fatalf("revoke: %s", r)
	}

	for _, x := range []struct {
		name, path, auth string
		status           int
		code             string
	}{
		{"no token", "/cal/PAR-1.ics", "", 401, "unauthenticated"},
		{"unknown token", calPath("PAR-1", custody.FeedTokenPrefix+nurse1+"_"+strings.Repeat("0", 64)), "", 401, "unauthenticated"},
		{"garbage token", calPath("PAR-1", "x"), "", 401, "unauthenticated"},
		{"revoked token", calPath("PAR-1", revoked.Token), "", 401, "unauthenticated"},
		{"API token is not a feed token", calPath("PAR-1", e.tokens[nurse1]), "", 401, "unauthenticated"},
		{"feed token is not an API token", "/api/v1/me", "Bearer " + nurse.Token, 401, "unauthenticated"},
		{"nurse of another site", calPath("PAR-1", other.Token), "", 404, "not_found"},
		{"bad site code", calPath("par%201", nurse.Token), "", 400, "invalid"},
		{"no token, bad site code", "/cal/par%201.ics", "", 401, "unauthenticated"},
		{"unknown site", calPath("NOPE-9", nurse.Token), "", 404, "not_found"},
		{"not an .ics", "/cal/PAR-1?token=" + url.QueryEscape(nurse.Token), "", 404, "not_found"},
		{"nurse of the site", calPath("PAR-1", nurse.Token), "", 200, ""},
		{"QA reads the plant", calPath("MFG-1", quality.Token), "", 200, ""},
	} {
		t.Run(x.name, func(t *testing.T) {
			r := e.doAuth(t, http.MethodGet, x.path, x.auth, nil)
			if r.Code != x.status {
				t.Fatalf("%s", r)
			}
			p, _, _ := strings.Cut(x.path, "?")
			e.conforms(t, http.MethodGet, p, r)
			if x.code != "" {
				if code, _ := r.errorBody(t); code != x.code {
					t.Errorf("code %q, want %q", code, x.code)
				}
			}
		})
	}

	type ev struct{ uid, summary, from, to string }
	parse := func(t *testing.T, site, token string) (map[string]ev, []byte) {
		t.Helper()
		r := e.doAuth(t, http.MethodGet, calPath(site, token), "", nil)
		if r.Code != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/calendar") {
			t.Fatalf("feed: %s %q", r, r.Header.Get("Content-Type"))
		}
		for i, l := range strings.SplitAfter(string(r.Body), "\r\n") {
			if len(strings.TrimSuffix(l, "\r\n")) > 75 || strings.Contains(strings.TrimSuffix(l, "\r\n"), "\n") {
				t.Errorf("line %d is not a folded CRLF line of at most 75 octets: %q", i+1, l)
			}
		}
		cal, err := goical.NewDecoder(bytes.NewReader(r.Body)).Decode()
		if err != nil {
			t.Fatalf("go-ical refuses the feed: %v\n%s", err, r.Body)
		}
		out := map[string]ev{}
		for _, v := range cal.Events() {
			uid, _ := v.Props.Text(goical.PropUID)
			sum, _ := v.Props.Text(goical.PropSummary)
			if v.Props.Get(goical.PropDateTimeStamp) == nil {
				t.Errorf("%s: no DTSTAMP", uid)
			}
			if st := v.Props.Get(goical.PropDateTimeStart); st == nil || st.ValueType() != goical.ValueDate {
				t.Errorf("%s: DTSTART is not a DATE: %+v", uid, st)
			}
			from, err1 := v.DateTimeStart(time.UTC)
			end, err2 := v.DateTimeEnd(time.UTC)
			if err1 != nil || err2 != nil {
				t.Fatalf("%s: dates: %v %v", uid, err1, err2)
			}
			out[uid] = ev{uid, sum, from.Format(custody.DateLayout), end.AddDate(0, 0, -1).Format(custody.DateLayout)}
		}
		return out, r.Body
	}

	coi := string(ch.COI)
	par, body := parse(t, "PAR-1", nurse.Token)
	want := map[string]ev{
		coi + "-apheresis@coid":       {coi + "-apheresis@coid", "Apheresis " + coi + " (CART-19)", plan.Apheresis.Date, plan.Apheresis.Date},
		coi + "-infusion-window@coid": {coi + "-infusion-window@coid", "Infusion window " + coi + " (CART-19)", plan.InfusionFrom.Date, plan.InfusionTo.Date},
	}
	if len(par) != len(want) {
		t.Errorf("PAR-1 feed has %d events, want %d:\n%s", len(par), len(want), body)
	}
	for uid, w := range want {
		if par[uid] != w {
			t.Errorf("PAR-1 event %s = %+v, want %+v", uid, par[uid], w)
		}
	}
	for _, id := range patientA.identifiers() {
		if bytes.Contains(body, []byte(id)) {
			t.Errorf("the feed carries the patient identifier %q", id)
		}
	}
	again, body2 := parse(t, "PAR-1", nurse.Token)
	if len(again) != len(par) || !bytes.Equal(body, body2) {
		t.Errorf("the feed is not stable across requests")
	}
	mfgFeed, _ := parse(t, "MFG-1", quality.Token)
	uid := coi + "-manufacturing-start@coid"
	if w := (ev{uid, "Manufacturing start " + coi + " (CART-19)", plan.ManufacturingStart.Date, plan.ManufacturingStart.Date}); len(mfgFeed) != 1 || mfgFeed[uid] != w {
		t.Errorf("MFG-1 feed = %+v, want only %+v", mfgFeed, w)
	}
	// An administrator's reset holds the account, feeds included, to the
	// password change.
	if r := e.do(t, http.MethodPost, "/api/v1/users/"+nurse1+"/reset", admin, map[string]any{"password": "Temp-Passw0rd!x", "reason": "forgot it"}); r.Code != http.StatusOK {
		t.Fatalf("reset: %s", r)
	}
	if r := e.doAuth(t, http.MethodGet, calPath("PAR-1", nurse.Token), "", nil); r.Code != http.StatusForbidden {
		t.Errorf("feed of a user who must change the password: %s, want 403", r)
	} else {
		e.conforms(t, http.MethodGet, "/cal/PAR-1.ics", r)
	}
	if strings.Contains(e.logs.String(), strings.TrimPrefix(nurse.Token, custody.FeedTokenPrefix+nurse1+"_")) {
		t.Errorf("a feed token is in the server log")
	}
}

func TestFeedTokensAPI(t *testing.T) {
	e := newEnv(t)
	tok := e.newFeedToken(t, nurse1)
	stored, err := e.store.User(context.Background(), nurse1)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(stored)
	secret := tok.Token[strings.LastIndexByte(tok.Token, '_')+1:]
	if len(stored.FeedTokens) != 1 || stored.FeedTokens[0].ID != tok.ID || bytes.Contains(raw, []byte(secret)) {
		t.Fatalf("the account keeps %s, want the token's hash only", raw)
	}
	for _, x := range []struct {
		name, method, path, user string
		body                     any
		status                   int
		code                     string
	}{
		{"no API token", http.MethodPost, "/api/v1/me/feed-tokens", "", nil, 401, "unauthenticated"},
		{"own list", http.MethodGet, "/api/v1/me/feed-tokens", nurse1, nil, 200, ""},
		{"admin lists", http.MethodGet, "/api/v1/users/" + nurse1 + "/feed-tokens", admin, nil, 200, ""},
		{"nurse lists another", http.MethodGet, "/api/v1/users/" + nurse1 + "/feed-tokens", nurse2, nil, 403, "forbidden"},
		{"nurse revokes another's", http.MethodPost, "/api/v1/users/" + nurse1 + "/feed-tokens/" + tok.ID + "/revoke", nurse2, nil, 403, "forbidden"},
		{"bad ID", http.MethodPost, "/api/v1/me/feed-tokens/xyz/revoke", nurse1, nil, 400, "invalid"},
		{"unknown ID", http.MethodPost, "/api/v1/me/feed-tokens/0123456789abcdef/revoke", nurse1, nil, 404, "not_found"},
		{"admin without reason", http.MethodPost, "/api/v1/users/" + nurse1 + "/feed-tokens/" + tok.ID + "/revoke", admin, nil, 400, "invalid"},
		{"admin revokes", http.MethodPost, "/api/v1/users/" + nurse1 + "/feed-tokens/" + tok.ID + "/revoke", admin, map[string]any{"reason": "phone lost"}, 200, ""},
		{"revoked twice", http.MethodPost, "/api/v1/me/feed-tokens/" + tok.ID + "/revoke", nurse1, nil, 404, "not_found"},
	} {
		t.Run(x.name, func(t *testing.T) {
			r := e.do(t, x.method, x.path, x.user, x.body)
			if r.Code != x.status {
				t.Fatalf("%s, want %d", r, x.status)
			}
			e.conforms(t, x.method, x.path, r)
			if x.code != "" {
				if code, _ := r.errorBody(t); code != x.code {
					t.Errorf("code %q, want %q", code, x.code)
				}
			}
		})
	}
	if r := e.do(t, http.MethodGet, "/api/v1/me/feed-tokens", nurse1, nil); r.Code != 200 || strings.TrimSpace(string(r.Body)) != "[]" {
		t.Errorf("after revocation: %s", r)
	}
	if r := e.do(t, http.MethodGet, "/api/v1/me", nurse1, nil); strings.Contains(string(r.Body), "feed_tokens") {
		t.Errorf("the user's feed token hashes are shown: %s", r)
	}
	r := e.do(t, http.MethodGet, "/api/v1/users/"+nurse1+"/audit", admin, nil)
	for _, want := range []string{string(custody.AuditFeedTokenIssue), string(custody.AuditFeedTokenRevoke), "phone lost"} {
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("audit of %s lacks %q: %s", nurse1, want, r)
		}
	}
	if strings.Contains(string(r.Body), tok.Token) {
		t.Errorf("the audit shows the token")
	}
}
