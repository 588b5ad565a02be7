package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coid-project/coid/api/internal/nettest"
	"github.com/coid-project/coid/custody"
)

// zonedNetwork registers the Midwest hospital's collection site CHI-1 in
// America/Chicago and the CellWorks plant PAR-M in Europe/Paris, maps the
// test chains' free-text name "Midwest Apheresis" to CHI-1 (and with
// plant, "CellWorks Plant 2" to PAR-M), and binds the coordinator to
// CHI-1, so it reads those chains.
func zonedNetwork(t *testing.T, e *webEnv, plant bool) {
	t.Helper()
	n := e.net()
	n.Register(t, "network set-up", []custody.Organisation{{Code: "MIDWEST", Name: "Midwest Health", Kind: custody.OrgHospital},
		{Code: "CELLWORKS", Name: "CellWorks", Kind: custody.OrgManufacturer}},
		[]custody.Site{nettest.Site("CHI-1", "Midwest Apheresis", "MIDWEST", "America/Chicago", custody.SiteCollection, custody.SiteTreatment),
			nettest.Site("PAR-M", "CellWorks Plant 2", "CELLWORKS", "Europe/Paris", custody.SiteManufacturing)}, nil)
	names := map[string]string{"Midwest Apheresis": "CHI-1"}
	if plant {
		names["CellWorks Plant 2"] = "PAR-M"
	}
	n.Map(t, "network set-up", names)
	n.Bind(t, wCoord, "MIDWEST", "CHI-1")
}

// enrollAt enrolls a chain for webPatient collected at collection, made
// at CellWorks Plant 2 and treated at St. Mary Oncology.
func enrollAt(t *testing.T, e *webEnv, collection string) custody.COI {
	t.Helper()
	return e.net().Enroll(t, e.users[wCoord], custody.PHI{Name: webPatient.Name, BirthDate: webPatient.BirthDate, MRN: webPatient.MRN},
		"Autologous anti-CD19 CAR-T", custody.Sites{Collection: collection, Manufacturing: "CellWorks Plant 2", Treatment: "St. Mary Oncology"})
}

// TestTimelineSiteZones checks that the chain page shows a record at a
// registered site in that site's local time, zone named, with UTC beside
// it, and a record at a site from before the network in UTC only.
func TestTimelineSiteZones(t *testing.T) {
	e := newWebEnv(t, false)
	// Both chains are enrolled before the network is registered; the
	// administrator then maps one's collection site name to CHI-1.
	registered, old := enrollAt(t, e, "Midwest Apheresis"), enrollAt(t, e, "St. Mary Apheresis")
	zonedNetwork(t, e, false)
	b := e.login(wCoord)
	// The clock stands at 2026-11-22 12:00 UTC: 06:00 in Chicago (CST).
	p := b.get(coiPath(registered))
	wantCode(t, p, 200, "registered chain")
	wantBody(t, p, "registered chain", `title="2026-11-22 12:00 UTC">2026-11-22 06:00 CST</time> <span class="muted">(2026-11-22 12:00 UTC)</span>`)
	p = b.get(coiPath(old))
	wantCode(t, p, 200, "old chain")
	wantBody(t, p, "old chain", `<time datetime="2026-11-22T12:00:00Z">2026-11-22 12:00 UTC</time> <span class="muted">at St. Mary Apheresis</span>`)
	wantNotBody(t, p, "old chain", "CST")
}

// dstLeg walks a chain collected at Midwest Apheresis (Chicago) to its
// first leg, shipped to CellWorks Plant 2 (Paris) in shipper SHP-0001 on
// 2027-03-14 at 07:30 UTC, 01:30 in Chicago (CST): in transit, Chicago
// moves its clocks to summer time at 08:00 UTC (02:00 CST becomes 03:00
// CDT). The shipper reports every 30 s until 08:45 UTC, and a temperature
// excursion runs from 08:30 to 08:40 UTC; at 08:45 UTC a hold-time
// warning fits the readings from 07:45 UTC. The leg is planned to arrive
// at 09:30 UTC; with receive it arrives at 09:00 UTC, 10:00 in Paris (CET,
// which changes only on 28 March).
func dstLeg(t *testing.T, e *webEnv, receive bool) custody.COI {
	t.Helper()
	at := func(hhmm string) time.Time {
		x, err := time.Parse(time.RFC3339, "2027-03-14T"+hhmm+":00Z")
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	e.clock.Advance(at("07:30").Sub(e.clock.Now()))
	coi := enrollAt(t, e, "Midwest Apheresis")
	e.advance(coi, custody.StateCollected)
	e.step(coi, custody.StepShip, `{"shipper":"SHP-0001","profile":"refrigerated","planned_arrival":"2027-03-14T09:30:00Z"}`,
		wsig(wNurse1, custody.MeaningHandedOver), wsig(wCourier, custody.MeaningReceived))
	var rs []custody.Reading
	for i, x := 0, at("07:30"); !x.After(at("08:45")); i, x = i+1, x.Add(30*time.Second) {
		c := 4.0
		if !x.Before(at("08:30")) && x.Before(at("08:40")) {
			c = 11
		}
		rs = append(rs, custody.Reading{Shipper: "SHP-0001", Seq: uint64(i + 1), HasSeq: true, DeviceTime: x, TempC: &c})
	}
	if _, err := e.store.AddReadings(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(at("08:45").Sub(e.clock.Now()))
	worst, limit := 11.0, 8.0
	if _, ok, err := e.svc.RecordExcursion(context.Background(), coi, 1, custody.Excursion{
		ID: custody.ExcursionID(custody.ExcursionTemperature, at("08:30")), Kind: custody.ExcursionTemperature,
		Start: at("08:30"), End: at("08:40"), Worst: &worst, Limit: &limit, Duration: 10 * time.Minute, Breach: 10 * time.Minute}); err != nil || !ok {
		t.Fatalf("record excursion: %v %v", ok, err)
	}
	last, pa := 40.0, at("09:30")
	if _, ok, err := e.svc.RecordHoldWarning(context.Background(), coi, 1, custody.HoldWarning{Cause: custody.HoldCauseHoldTime,
		Message: "LN2 projected to reach 10% in 5h0m0s", Projection: custody.HoldProjection{Method: custody.HoldMethodTheilSen, At: at("08:45"), OK: true,
			Window: "1h0m0s", FitFrom: at("07:45"), FitTo: at("08:45"), Points: 120, RatePctPerHour: 6, LastPct: &last, FloorPct: 10, PlannedArrival: &pa}}); err != nil || !ok {
		t.Fatalf("record hold warning: %v %v", ok, err)
	}
	if receive {
		e.clock.Advance(at("09:00").Sub(e.clock.Now()))
		e.step(coi, custody.StepReceive, `{"seal_intact":true}`, wsig(wMfg, custody.MeaningReceived))
	}
	return coi
}

// TestLegSiteZones checks the chain page's shipments: a leg's departure in
// the zone of the site it left, its arrival in the zone of the site it
// reached, and its excursion, issue and chart in the zone of the site it
// left (its hold-time warning too, and its planned arrival in the zone of
// the site it goes to), across that zone's change to summer time, each
// with UTC beside it;
// and the timeline's records and signatures in their sites' zones.
func TestLegSiteZones(t *testing.T) {
	e := newWebEnv(t, false)
	coi := dstLeg(t, e, true)
	zonedNetwork(t, e, true)
	p := e.login(wCoord).get(coiPath(coi))
	wantCode(t, p, 200, "chain page")
	legs := section(p.Body, `id="legs-title"`)
	wantBody(t, page{Body: legs}, "leg 1",
		`Shipped <time datetime="2027-03-14T07:30:00Z" title="2027-03-14 07:30 UTC">2027-03-14 01:30 CST</time> <span class="muted">(2027-03-14 07:30 UTC)</span>`,
		`received <time datetime="2027-03-14T09:00:00Z" title="2027-03-14 09:00 UTC">2027-03-14 10:00 CET</time> <span class="muted">(2027-03-14 09:00 UTC)</span>`,
		`from <time datetime="2027-03-14T08:30:00Z" title="2027-03-14 08:30 UTC">2027-03-14 03:30 CDT</time> <span class="muted">(2027-03-14 08:30 UTC)</span>`+
			` to <time datetime="2027-03-14T08:40:00Z" title="2027-03-14 08:40 UTC">2027-03-14 03:40 CDT</time> <span class="muted">(2027-03-14 08:40 UTC)</span>`,
		`Planned arrival <time datetime="2027-03-14T09:30:00Z" title="2027-03-14 09:30 UTC">2027-03-14 10:30 CET</time>`,
		`title="2027-03-14 08:45 UTC">2027-03-14 03:45 CDT</time> <span class="muted">(2027-03-14 08:45 UTC)</span>): LN2 projected`,
		`from <time datetime="2027-03-14T07:45:00Z" title="2027-03-14 07:45 UTC">2027-03-14 01:45 CST</time>`,
		`Device time (America/Chicago)`, `data-zone="America/Chicago"`)
	// The chart's time axis is in Chicago time: 01:45 CST, then 03:00 CDT
	// straight after 01:59; no 02:xx exists that day.
	ticks := xTicks(legs)
	if !strings.Contains(ticks, "|01:45|") || !strings.Contains(ticks, "|03:00|") || strings.Contains(ticks, "|02:") || strings.Contains(ticks, "|07:") {
		t.Errorf("time axis ticks %s, want Chicago time across the change to CDT", ticks)
	}
	issues := section(p.Body, `id="issues-title"`)
	wantBody(t, page{Body: issues}, "issues", `2027-03-14 03:45 CDT`, "(2027-03-14 08:45 UTC)")
	wantBody(t, p, "timeline",
		`Excursion detected</strong> <time datetime="2027-03-14T08:45:00Z" title="2027-03-14 08:45 UTC">2027-03-14 03:45 CDT</time>`,
		`Shipment received</strong> <time datetime="2027-03-14T09:00:00Z" title="2027-03-14 09:00 UTC">2027-03-14 10:00 CET</time>`,
		"from 2027-03-14 03:30 CDT (2027-03-14 08:30 UTC) to 2027-03-14 03:40 CDT (2027-03-14 08:40 UTC)",
		// Signatures in the zone of the record's site too.
		`: handed over, <time datetime="2027-03-14T07:30:00Z" title="2027-03-14 07:30 UTC">2027-03-14 01:30 CST</time>`,
		`: received, <time datetime="2027-03-14T09:00:00Z" title="2027-03-14 09:00 UTC">2027-03-14 10:00 CET</time>`)
}

// section returns body from the element holding marker to the end of its
// <section>.
func section(body, marker string) string {
	i := strings.Index(body, marker)
	if i < 0 {
		return ""
	}
	body = body[i:]
	if j := strings.Index(body, "</section>"); j >= 0 {
		body = body[:j]
	}
	return body
}

// xTicks returns the labels of the chart's time axis, "|"-separated and
// enclosed.
func xTicks(s string) string {
	i := strings.Index(s, `<g class="xaxis">`)
	if i < 0 {
		return ""
	}
	s = s[i:]
	s = s[:strings.Index(s, "</g>")]
	var out []string
	for _, part := range strings.Split(s, "</text>") {
		if k := strings.LastIndex(part, ">"); k >= 0 && strings.Contains(part, `class="tick"`) {
			out = append(out, part[k+1:])
		}
	}
	return "|" + strings.Join(out, "|") + "|"
}

// TestBrowserChartSiteZone: in a browser whose own zone is Tokyo, the live
// chart of a leg that left Chicago keeps its time axis in Chicago time as
// readings arrive and the script redraws it, across Chicago's change to
// summer time, never in the browser's zone or in UTC.
func TestBrowserChartSiteZone(t *testing.T) {
	e := newWebEnv(t, false)
	coi := dstLeg(t, e, false)
	zonedNetwork(t, e, true)
	ctx := newChrome(t, 1280, 900, 90*time.Second, chromedp.Env("TZ=Asia/Tokyo"))
	browserLogin(t, ctx, e, wCoord)
	run(t, ctx, "chain page", chromedp.Navigate(e.ts.URL+coiPath(coi)), chromedp.WaitVisible(chromedp.CSS("[data-chart] polyline")))
	if off := value(t, ctx, "browser zone", chromedp.Evaluate[float64](`new Date().getTimezoneOffset()`)); off != -540 {
		t.Fatalf("the browser's zone is %v minutes behind UTC, want Tokyo's -540", off)
	}
	value(t, ctx, "stream open", chromedp.Poll[bool](`document.querySelector("[data-live-status]").textContent === "live"`,
		chromedp.WithPollingTimeout(10*time.Second)))
	// Five more minutes of readings; the script redraws the axes.
	start := e.clock.Now()
	rs := make([]custody.Reading, 10)
	for i := range rs {
		c := 5.0
		rs[i] = custody.Reading{Shipper: "SHP-0001", Seq: uint64(1000 + i), HasSeq: true, DeviceTime: start.Add(time.Duration(i+1) * 30 * time.Second), TempC: &c}
	}
	if _, err := e.store.AddReadings(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
	value(t, ctx, "the new readings arrive", chromedp.Poll[bool](
		`document.querySelector("[data-chart-caption]").textContent.indexOf("latest 5.0") >= 0`,
		chromedp.WithPollingTimeout(15*time.Second)))
	got := value(t, ctx, "axis", chromedp.Evaluate[map[string]any](`(function(){
		var s = document.querySelector("[data-chart] svg");
		var texts = function (sel) { return Array.prototype.map.call(s.querySelectorAll(sel), function (t) { return t.textContent; }).join("|"); };
		return {x: "|" + texts("g.xaxis text") + "|", title: texts(".x-title")};
	})()`))
	x, _ := got["x"].(string)
	// 07:30 to 08:50 UTC in 15-minute steps: 01:30 and 01:45 CST, then
	// 03:00 CDT at 08:00 UTC. Tokyo would read 16:30, UTC 07:30.
	if !strings.Contains(x, "|01:30|01:45|03:00|03:15|") || strings.Contains(x, "|02:") || strings.Contains(x, "|16:") || strings.Contains(x, "|07:") {
		t.Errorf("time axis after the redraw %s, want Chicago time across the change to CDT", x)
	}
	if got["title"] != "Device time (America/Chicago)" {
		t.Errorf("time axis title %q", got["title"])
	}
	shot(t, ctx, "16-chart-site-zone")
}
