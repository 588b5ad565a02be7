package web_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// attentionEnv is a console with something of three kinds waiting: an
// open excursion, refused telemetry and expiring qualifications.
func attentionEnv(t *testing.T) (*webEnv, custody.COI) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	e.advance(coi, custody.StateToTreatment)
	e.clock.Advance(10 * time.Minute)
	e.excursion(coi)
	webNetwork(t, e) // after the enrolment: its sites are free text
	for range 3 {
		q := custody.QuarantineEntry{Topic: "shippers/SHP-0002/telemetry", Received: e.clock.Now(), Reason: "conflicting reading",
			Payload: []byte(`{"seq":1,"temp_c":-181.25,"device_time":"2026-11-22T12:00:00Z"}`)}
		q.Size = len(q.Payload)
		if err := e.store.Quarantine(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	return e, coi
}

// TestConsoleAttention: the console's attention strip counts what waits,
// in custody.AttentionOrder, each panel linked to its section, before the
// chain table; a role that sees neither the quarantine nor the
// qualifications sees only its own panels.
func TestConsoleAttention(t *testing.T) {
	e, _ := attentionEnv(t)
	p := e.login(wQA).get("/qa")
	kinds := regexp.MustCompile(`data-kind="([a-z-]+)" href="(#[a-z-]+)"><span class="count">([0-9]+\+?)</span>`).FindAllStringSubmatch(p.Body, -1)
	var got []string
	for _, k := range kinds {
		got = append(got, k[1]+" "+k[2]+" "+k[3])
	}
	want := []string{"open-excursions #open-issues 1", "quarantined-telemetry #quarantine 3", "expiring-qualifications #qualifications-expiring 2"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Fatalf("attention strip %q, want %q\n%s", got, want, excerpt(p.Body))
	}
	if i, j := strings.Index(p.Body, `id="attention"`), strings.Index(p.Body, `id="open-issues"`); i < 0 || j < i {
		t.Fatalf("the attention strip (%d) comes after the open issues (%d)", i, j)
	}
	m := e.login(wMfg).get("/qa")
	wantBody(t, m, "manufacturing's console", `data-kind="open-excursions"`)
	wantNotBody(t, m, "manufacturing's console", `data-kind="quarantined-telemetry"`, `data-kind="expiring-qualifications"`)
	empty := newWebEnv(t, false)
	wantBody(t, empty.login(wQA).get("/qa"), "an empty console", "Nothing waits for attention.")
}
