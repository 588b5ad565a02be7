package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// The QA console and the scan station as QA leads expect them: charts
// with axes, limits, excursions and gaps; durations and times people read;
// the expiry on manufacture and release; the refused telemetry for QA; no
// empty "Next step".

func TestWebChartAxesLimitsExcursionsGaps(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	e.advance(coi, custody.StateToTreatment)
	e.clock.Advance(40 * time.Minute)
	// Readings one second apart with a 20-minute silence in the middle
	// (the cryogenic profile expects one a minute).
	now := e.clock.Now()
	var rs []custody.Reading
	for i := range 120 {
		at := now.Add(-40*time.Minute + time.Duration(i)*time.Second)
		if i >= 60 {
			at = now.Add(-60*time.Second + time.Duration(i-60)*time.Second)
		}
		c := -185.0 + float64(i%5)
		rs = append(rs, custody.Reading{Shipper: "SHP-0002", Seq: uint64(i + 1), HasSeq: true, DeviceTime: at, TempC: &c})
	}
	if _, err := e.store.AddReadings(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	e.excursion(coi)
	qa := e.login(wQA)
	p := qa.get(coiPath(coi))
	wantCode(t, p, http.StatusOK, "chain page")
	wantBody(t, p, "chart", "Temperature (°C)", "Device time (UTC)", `class="limit hi"`, "limit -150 °C", `class="exc"`,
		`class="tick"`, "a break in the line: no reading for longer than 2 min")
	if n := strings.Count(p.Body, `<polyline class="temp"`); n != 2 {
		t.Errorf("the line has %d runs, want 2 (broken across the 20-minute silence)", n)
	}
	if !regexp.MustCompile(`data-gaps="\[\[\d+,\d+\]\]"`).MatchString(p.Body) {
		t.Errorf("the chart does not give the script its one gap")
	}
}

func TestWebExpiryOnManufactureAndRelease(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	e.advance(coi, custody.StateAtManufacturing)
	mfg := e.login(wMfg)
	p := mfg.get(coiPath(coi))
	wantBody(t, p, "manufacture form", `name="expires_at"`, "Expiry")
	p = mfg.post(coiPath(coi)+"/steps/manufacture", url.Values{"final_bags": {"1"}, "expires_at": {"2027-01-31T23:30"}, "tz_offset": {"60"},
		"sig_user_1": {wMfg}, "sig_password_1": {webPassword(wMfg)}})
	wantCode(t, p, http.StatusSeeOther, "manufacture with an expiry")
	ch := e.chain(coi)
	last := ch.Records[len(ch.Records)-1]
	if d, ok := last.Body().(custody.ManufactureData); !ok || d.ExpiresAt == nil || *d.ExpiresAt != "2027-01-31T23:30:00+01:00" {
		t.Fatalf("manufacture record data %s", last.Data)
	}
	wantBody(t, mfg.get(coiPath(coi)), "timeline", "Expires 2027-01-31 22:30 UTC")

	qa := e.login(wQA)
	p = qa.get(coiPath(coi))
	wantBody(t, p, "release form", `id="form-release"`, `name="expires_at"`)
	// Optional: a release without one records none.
	p = qa.post(coiPath(coi)+"/steps/release", url.Values{"expires_at": {""}, "sig_user_1": {wQA}, "sig_password_1": {webPassword(wQA)}})
	wantCode(t, p, http.StatusSeeOther, "release without an expiry")
	ch = e.chain(coi)
	if last := ch.Records[len(ch.Records)-1]; last.Step != custody.StepRelease || strings.Contains(string(last.Data), "expires_at") {
		t.Fatalf("release record %s %s", last.Step, last.Data)
	}
}

func TestWebNoEmptyNextStep(t *testing.T) {
	e := newWebEnv(t, false)
	// Every role, every state of a whole journey, and chains whose next
	// steps are blocked (an excursion going on in transit, a bedside
	// mismatch nobody has acknowledged): the heading shows only with
	// something under it.
	re := regexp.MustCompile(`(?s)<div class="label">Next step</div>\s*</div>`)
	type chainCase struct {
		what string
		coi  custody.COI
	}
	var cases []chainCase
	for _, st := range []custody.State{custody.StateEnrolled, custody.StateCollected, custody.StateToManufacturing, custody.StateAtManufacturing,
		custody.StateManufactured, custody.StateReleased, custody.StateToTreatment, custody.StateAtTreatment} {
		c := e.enroll()
		e.advance(c, st)
		cases = append(cases, chainCase{string(st), c})
	}
	exc := e.enroll()
	e.advance(exc, custody.StateToManufacturing)
	e.excursion(exc)
	cases = append(cases, chainCase{"excursion going on in transit", exc})
	mm := e.enroll()
	e.advance(mm, custody.StateAtTreatment)
	_, err := e.svc.Record(context.Background(), e.users[wNurse1], mm, custody.StepRequest{Step: custody.StepBedsideVerify,
		Data:       json.RawMessage(fmt.Sprintf(`{"bag_code":%q,"wristband_code":"MRN-0000001"}`, payload(mm, custody.BagFinalProduct, 1))),
		Signatures: []custody.SignatureRequest{wsig(wNurse1, custody.MeaningVerified), wsig(wNurse2, custody.MeaningVerified)}})
	if err == nil {
		t.Fatal("a wrong wristband passed the bedside check")
	}
	cases = append(cases, chainCase{"unacknowledged bedside mismatch", mm})
	for _, cc := range cases {
		for id := range webRoles {
			p := e.login(id).get(coiPath(cc.coi))
			if re.MatchString(p.Body) {
				t.Errorf("%s, %s: an empty Next step heading", id, cc.what)
			}
		}
	}
}

func TestWebQuarantineForQA(t *testing.T) {
	e := newWebEnv(t, false)
	ctx := context.Background()
	at := e.clock.Now()
	for i := range 25 {
		q := custody.QuarantineEntry{Topic: fmt.Sprintf("shippers/SHP-%04d/telemetry", i), Received: at.Add(time.Duration(i) * time.Minute),
			Reason: fmt.Sprintf("reading conflict number %d", i), Payload: []byte(fmt.Sprintf(`{"seq":%d,"temp_c":<5.1>}`, i))}
		q.Size = len(q.Payload)
		if err := e.store.Quarantine(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	qa := e.login(wQA)
	p := qa.get("/qa")
	wantBody(t, p, "QA console", `id="quarantine"`, "Refused telemetry", "SHP-0024", "reading conflict number 24", "reading conflict number 5",
		`{&#34;seq&#34;:24,&#34;temp_c&#34;:&lt;5.1&gt;}`, `href="/qa?quarantine=2#quarantine"`, "Page 1")
	wantNotBody(t, p, "QA console page 1", "reading conflict number 4<", "SHP-0004")
	p = qa.get("/qa?quarantine=2")
	wantBody(t, p, "QA console page 2", "reading conflict number 4", "reading conflict number 0", `href="/qa?quarantine=1#quarantine"`, "Page 2")
	wantNotBody(t, p, "QA console page 2", "SHP-0005", `?quarantine=3`)
	p = qa.get("/qa?quarantine=9")
	wantBody(t, p, "past the last page", "No more refused payloads.")

	for _, id := range []string{wCoord, wMfg} {
		p := e.login(id).get("/qa")
		wantCode(t, p, http.StatusOK, id+" console")
		wantNotBody(t, p, id+" console", `id="quarantine"`, "SHP-0024")
	}
	wantBody(t, e.login(wAdmin).get("/qa"), "admin console", `id="quarantine"`)
}

func TestWebBedsideTellsMismatchAtTheWristband(t *testing.T) {
	e := newWebEnv(t, false)
	coi := e.enroll()
	e.advance(coi, custody.StateAtTreatment)
	b := e.login(wNurse1)
	before := len(e.chain(coi).Records)
	// An apheresis bag of this chain: told at the bag scan.
	b.post(coiPath(coi)+"/bedside", url.Values{"action": {"bag"}, "code": {payload(coi, custody.BagApheresis, 1)}})
	p := b.get(coiPath(coi) + "/bedside")
	wantBody(t, p, "apheresis bag", string(coi)+"-APH-01 is an apheresis collection bag, not a final-product bag.", `id="early-mismatch"`)
	b.post(coiPath(coi)+"/bedside", url.Values{"action": {"reset"}})
	// The right bag and wristband: no warning, the check signs as before.
	b.post(coiPath(coi)+"/bedside", url.Values{"action": {"bag"}, "code": {payload(coi, custody.BagFinalProduct, 1)}})
	b.post(coiPath(coi)+"/bedside", url.Values{"action": {"wristband"}, "code": {" " + webPatient.MRN + " "}})
	p = b.get(coiPath(coi) + "/bedside")
	wantBody(t, p, "matching wristband", "scanned ✓", "Sign: both nurses verified bag and wristband")
	wantNotBody(t, p, "matching wristband", `id="early-mismatch"`, "does not match")
	// Nothing was recorded by the scans themselves.
	if n := len(e.chain(coi).Records); n != before {
		t.Fatalf("the scans recorded %d records", n-before)
	}
	var buf strings.Builder
	_ = json.NewEncoder(&buf).Encode(e.chain(coi).Records)
	if strings.Contains(buf.String(), webPatient.MRN) {
		t.Error("a record holds the wristband code")
	}
}
