package custody_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

func planSite(t *testing.T, code, zone string) custody.PlanSite {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	return custody.PlanSite{Code: code, Loc: loc}
}

// TestComputePlan checks the plan's day arithmetic across zones and
// daylight-saving changes: days are added on each site's calendar, each
// milestone at noon there, never as multiples of 24 hours.
func TestComputePlan(t *testing.T) {
	lt := custody.LeadTimes{ApheresisToStart: 1, Manufacturing: 10, Release: 3, Shipping: 2, InfusionWindow: 14}
	for _, c := range []struct {
		name                 string
		date                 string
		col, mfg, trt        string
		start, startUTC      string
		release, arrival, to string
		arrivalUTC           string
	}{
		{name: "one zone, no change", date: "2026-12-01", col: "UTC", mfg: "UTC", trt: "UTC",
			start: "2026-12-02", startUTC: "2026-12-02T12:00:00Z", release: "2026-12-15", arrival: "2026-12-17", to: "2026-12-31",
			arrivalUTC: "2026-12-17T12:00:00Z"},
		{name: "Paris spring forward between apheresis and start", date: "2026-03-28", col: "Europe/Paris", mfg: "Europe/Paris", trt: "Europe/Paris",
			start: "2026-03-29", startUTC: "2026-03-29T10:00:00Z", release: "2026-04-11", arrival: "2026-04-13", to: "2026-04-27",
			arrivalUTC: "2026-04-13T10:00:00Z"},
		{name: "New York fall back between apheresis and start", date: "2026-10-31", col: "America/New_York", mfg: "America/New_York", trt: "America/New_York",
			start: "2026-11-01", startUTC: "2026-11-01T17:00:00Z", release: "2026-11-14", arrival: "2026-11-16", to: "2026-11-30",
			arrivalUTC: "2026-11-16T17:00:00Z"},
		// Noon in Tokyo is still the day before in New York: the plant's
		// day one is that day plus one.
		{name: "Tokyo to New York, westward", date: "2026-12-01", col: "Asia/Tokyo", mfg: "America/New_York", trt: "Asia/Tokyo",
			start: "2026-12-01", startUTC: "2026-12-01T17:00:00Z", release: "2026-12-14", arrival: "2026-12-17", to: "2026-12-31",
			arrivalUTC: "2026-12-17T03:00:00Z"},
		// Noon in Los Angeles is already the next day in Tokyo.
		{name: "Los Angeles to Tokyo, eastward", date: "2026-12-01", col: "America/Los_Angeles", mfg: "Asia/Tokyo", trt: "America/Los_Angeles",
			start: "2026-12-03", startUTC: "2026-12-03T03:00:00Z", release: "2026-12-16", arrival: "2026-12-17", to: "2026-12-31",
			arrivalUTC: "2026-12-17T20:00:00Z"},
		// The return leg crosses Sydney's spring forward (4 October 2026).
		{name: "Paris plant, Sydney patient across its DST start", date: "2026-09-18", col: "Australia/Sydney", mfg: "Europe/Paris", trt: "Australia/Sydney",
			start: "2026-09-19", startUTC: "2026-09-19T10:00:00Z", release: "2026-10-02", arrival: "2026-10-04", to: "2026-10-18",
			arrivalUTC: "2026-10-04T01:00:00Z"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := custody.ComputePlan(c.date, lt, planSite(t, "COL", c.col), planSite(t, "MFG", c.mfg), planSite(t, "TRT", c.trt))
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range []struct{ n, got, want string }{
				{"apheresis", p.Apheresis.Date, c.date},
				{"start", p.ManufacturingStart.Date, c.start},
				{"start time", p.ManufacturingStart.Time.Format(time.RFC3339), c.startUTC},
				{"release", p.Release.Date, c.release},
				{"shipment", p.Shipment.Date, c.release},
				{"arrival", p.Arrival.Date, c.arrival},
				{"arrival time", p.Arrival.Time.Format(time.RFC3339), c.arrivalUTC},
				{"infusion from", p.InfusionFrom.Date, c.arrival},
				{"infusion to", p.InfusionTo.Date, c.to},
				{"start site", p.ManufacturingStart.Site, "MFG"},
				{"arrival site", p.Arrival.Site, "TRT"},
			} {
				if f.got != f.want {
					t.Errorf("%s = %s, want %s", f.n, f.got, f.want)
				}
			}
			// Every milestone is at noon on its site's calendar.
			for _, m := range []custody.Milestone{p.Apheresis, p.ManufacturingStart, p.ManufacturingEnd, p.Release, p.Arrival, p.InfusionTo} {
				zone := map[string]string{"COL": c.col, "MFG": c.mfg, "TRT": c.trt}[m.Site]
				loc, _ := time.LoadLocation(zone)
				if l := m.Time.In(loc); l.Hour() != 12 || l.Format(custody.DateLayout) != m.Date {
					t.Errorf("milestone at %s on %s is %s local", m.Site, m.Date, l)
				}
			}
			cl := p.Claims("KYM")
			if len(cl) != 2 || cl[0] != (custody.Claim{Site: "COL", Date: c.date}) || cl[1] != (custody.Claim{Site: "MFG", Date: c.start, Product: "KYM"}) {
				t.Errorf("claims %+v", cl)
			}
		})
	}
	if _, err := custody.ComputePlan("2026-13-01", lt, planSite(t, "A", "UTC"), planSite(t, "B", "UTC"), planSite(t, "C", "UTC")); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("bad date: %v", err)
	}
}

func TestCapacityCount(t *testing.T) {
	c := custody.Capacity{Site: "MFG-1", Chairs: 0, Slots: map[string]int{"KYM": 3},
		ClosedWeekdays: []time.Weekday{time.Sunday},
		Closures:       []custody.Closure{{From: "2026-12-24", To: "2026-12-26", Reason: "holidays"}},
		Exceptions: []custody.CapacityException{{Date: "2026-12-01", Product: "KYM", Count: 1, Reason: "maintenance"},
			{Date: "2026-12-02", Count: 2, Reason: "extra chairs"}}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		date, product string
		n             int
		closed        string
	}{
		{"2026-11-30", "KYM", 3, ""}, {"2026-12-01", "KYM", 1, ""}, {"2026-12-02", "", 2, ""}, {"2026-12-02", "KYM", 3, ""},
		{"2026-12-06", "KYM", 0, "closed on Sundays"}, {"2026-12-25", "KYM", 0, "closed from 2026-12-24 to 2026-12-26: holidays"},
		{"2026-12-03", "OTHER", 0, ""}, {"2026-12-03", "", 0, ""},
	} {
		n, closed := c.Count(x.date, x.product)
		if n != x.n || closed != x.closed {
			t.Errorf("Count(%s, %q) = %d %q, want %d %q", x.date, x.product, n, closed, x.n, x.closed)
		}
	}
	for _, bad := range []func(*custody.Capacity){
		func(c *custody.Capacity) { c.Chairs = -1 },
		func(c *custody.Capacity) { c.Slots["kym"] = 1 },
		func(c *custody.Capacity) { c.ClosedWeekdays = []time.Weekday{7} },
		func(c *custody.Capacity) { c.Closures[0].To = "2026-12-01" },
		func(c *custody.Capacity) { c.Closures[0].Reason = "" },
		func(c *custody.Capacity) { c.Exceptions[1].Product, c.Exceptions[1].Date = "KYM", "2026-12-01" },
		func(c *custody.Capacity) { c.Exceptions[0].Count = 5000 },
	} {
		b, _ := json.Marshal(c)
		var x custody.Capacity
		_ = json.Unmarshal(b, &x)
		bad(&x)
		if err := x.Validate(); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("bad capacity %+v: %v", x, err)
		}
	}
}

func TestProductLeadTimes(t *testing.T) {
	// A product stored before lead times existed still decodes; it has
	// none set and says which is missing.
	var p custody.Product
	if err := json.Unmarshal([]byte(`{"code":"CART-19","name":"x","isbt_code":"S1234V00","storage_profile":"cryogenic","shelf_life_hours":1,"manufacturing_days":10,"suspended":false}`), &p); err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.LeadTimes(); !errors.Is(err, custody.ErrConflict) || !strings.Contains(err.Error(), "apheresis_to_start_days") {
		t.Errorf("lead times of an old product: %v", err)
	}
	p.ApheresisToStartDays, p.ReleaseDays, p.ShippingDays = 1, 3, 2
	if _, err := p.LeadTimes(); !errors.Is(err, custody.ErrConflict) || !strings.Contains(err.Error(), "infusion_window_days") {
		t.Errorf("lead times without a window: %v", err)
	}
	p.InfusionWindowDays = 14
	if lt, err := p.LeadTimes(); err != nil || lt.Manufacturing != 10 {
		t.Errorf("lead times: %+v %v", lt, err)
	}
	p.ShippingDays = -1
	if err := p.Validate(); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("negative shipping days: %v", err)
	}
}

// scheduleNetwork registers the network, sets CART-19's lead times and
// gives PAR-1 chairs and MFG-1 slots.
func scheduleNetwork(t *testing.T, e *env, chairs, slots int) {
	t.Helper()
	registerNetwork(t, e)
	admin := e.users["admin1"]
	p, err := e.svc.Product(e.ctx, admin, "CART-19")
	if err != nil {
		t.Fatal(err)
	}
	p.ManufacturingDays, p.ApheresisToStartDays, p.ReleaseDays, p.ShippingDays, p.InfusionWindowDays = 10, 1, 3, 2, 14
	if _, err := e.svc.UpdateProduct(e.ctx, admin, "CART-19", p, "lead times agreed with the plant"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetCapacity(e.ctx, admin, "PAR-1", custody.Capacity{Chairs: chairs}, "apheresis unit opens"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetCapacity(e.ctx, admin, "MFG-1", custody.Capacity{Slots: map[string]int{"CART-19": slots}}, "plant opens"); err != nil {
		t.Fatal(err)
	}
}

func (e *env) book(coi custody.COI, date string) (custody.Record, error) {
	return e.svc.Book(e.ctx, e.users["coord"], coi, custody.BookRequest{ApheresisDate: date,
		Signatures: []custody.SignatureRequest{sig("coord", custody.MeaningAuthored)}})
}

func (e *env) free(site, product, date string) int {
	e.t.Helper()
	a, err := e.svc.Availability(e.ctx, e.users["coord"], custody.AvailabilityQuery{Sites: []string{site}, Product: product, From: date, To: date})
	if err != nil || len(a) != 1 || len(a[0].Days) != 1 {
		e.t.Fatalf("availability of %s: %+v %v", site, a, err)
	}
	return a[0].Days[0].Free
}

func TestBookRescheduleUnschedule(t *testing.T) {
	e := newEnv(t)
	scheduleNetwork(t, e, 1, 1)
	a, b := e.enrollNet(), e.enrollNet()
	rec, err := e.book(a, "2026-12-01")
	if err != nil {
		t.Fatal(err)
	}
	x, err := rec.Parsed()
	sd, ok := x.(custody.ScheduleData)
	if err != nil || !ok || sd.Plan.ManufacturingStart.Date != "2026-12-02" || sd.Plan.InfusionTo.Date != "2027-01-01" ||
		len(sd.Claims) != 2 || sd.Claims[1] != (custody.Claim{Site: "MFG-1", Date: "2026-12-02", Product: "CART-19"}) {
		t.Fatalf("schedule record data %+v %v", x, err)
	}
	if rec.Signatures[0].User != "coord" || rec.Signatures[0].Meaning != custody.MeaningAuthored {
		t.Errorf("schedule signatures %+v", rec.Signatures)
	}
	// Noon in Paris is morning in New York: the plant starts the next day.
	if e.free("PAR-1", "", "2026-12-01") != 0 || e.free("MFG-1", "CART-19", "2026-12-02") != 0 {
		t.Error("booked chair and slot still free")
	}
	// Chain b wants the same day: taken, nothing written.
	before := e.records()
	if _, err := e.book(b, "2026-12-01"); !errors.Is(err, custody.ErrSlotTaken) {
		t.Fatalf("second booking of the last slot: %v, want ErrSlotTaken", err)
	}
	if e.records() != before {
		t.Fatal("a refused booking wrote a record")
	}
	for _, c := range []struct {
		name string
		run  func() error
		want error
		text string
	}{
		{"twice", func() error { _, err := e.book(a, "2026-12-03"); return err }, custody.ErrConflict, "booked already"},
		{"past day", func() error { _, err := e.book(b, "2026-11-01"); return err }, custody.ErrInvalid, "is past at PAR-1"},
		{"not a date", func() error { _, err := e.book(b, "soon"); return err }, custody.ErrInvalid, "apheresis_date"},
		{"nurse", func() error {
			_, err := e.svc.Book(e.ctx, e.users["nurse1"], b, custody.BookRequest{ApheresisDate: "2026-12-05",
				Signatures: []custody.SignatureRequest{sig("nurse1", custody.MeaningAuthored)}})
			return err
		}, custody.ErrForbidden, "may not"},
		{"unsigned", func() error {
			_, err := e.svc.Book(e.ctx, e.users["coord"], b, custody.BookRequest{ApheresisDate: "2026-12-05"})
			return err
		}, custody.ErrInvalid, "signature"},
		{"reschedule without reason", func() error {
			_, err := e.svc.Reschedule(e.ctx, e.users["coord"], a, custody.BookRequest{ApheresisDate: "2026-12-05",
				Signatures: []custody.SignatureRequest{sig("coord", custody.MeaningAuthored)}})
			return err
		}, custody.ErrInvalid, "reason"},
		{"reason naming the patient", func() error {
			_, err := e.svc.Reschedule(e.ctx, e.users["coord"], a, custody.BookRequest{ApheresisDate: "2026-12-05", Reason: "Jane Doe asked to move",
				Signatures: []custody.SignatureRequest{sig("coord", custody.MeaningAuthored)}})
			return err
		}, custody.ErrInvalid, "name"},
		{"unschedule of an unbooked chain", func() error {
			_, err := e.svc.Unschedule(e.ctx, e.users["coord"], b, custody.ReasonRequest{Reason: "x",
				Signatures: []custody.SignatureRequest{sig("coord", custody.MeaningAuthored)}})
			return err
		}, custody.ErrConflict, "no booking"},
	} {
		before := e.records()
		err := c.run()
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: %v, want %v naming %q", c.name, err, c.want, c.text)
		}
		if e.records() != before {
			t.Errorf("%s: refused, yet wrote a record", c.name)
		}
	}
	// Chain a moves to the 3rd: the 1st is free for b.
	if _, err := e.svc.Reschedule(e.ctx, e.users["coord"], a, custody.BookRequest{ApheresisDate: "2026-12-03", Reason: "patient's platelets too low",
		Signatures: []custody.SignatureRequest{sig("coord", custody.MeaningAuthored)}}); err != nil {
		t.Fatal(err)
	}
	if e.free("PAR-1", "", "2026-12-01") != 1 || e.free("MFG-1", "CART-19", "2026-12-04") != 0 {
		t.Error("reschedule did not move the claims")
	}
	if _, err := e.book(b, "2026-12-01"); err != nil {
		t.Fatal(err)
	}
	c, _ := e.svc.Chain(e.ctx, a)
	if bk := custody.BookingOf(c); bk.Current == nil || bk.Current.Plan.Apheresis.Date != "2026-12-03" {
		t.Errorf("booking of a after the reschedule: %+v", bk)
	}
	// Unscheduling frees the claims.
	if _, err := e.svc.Unschedule(e.ctx, e.users["coord"], a, custody.ReasonRequest{Reason: "patient withdrew consent",
		Signatures: []custody.SignatureRequest{sig("coord", custody.MeaningAuthored)}}); err != nil {
		t.Fatal(err)
	}
	if e.free("PAR-1", "", "2026-12-03") != 1 || e.free("MFG-1", "CART-19", "2026-12-04") != 1 {
		t.Error("unschedule did not free the claims")
	}
	c, _ = e.svc.Chain(e.ctx, a)
	if bk := custody.BookingOf(c); bk.Current != nil {
		t.Errorf("booking after unschedule: %+v", bk)
	}
	// Cancelling chain b frees its booking too.
	e.must(b, "coord", custody.StepCancel, map[string]any{"reason": "patient died"}, sig("coord", custody.MeaningApproved))
	if e.free("PAR-1", "", "2026-12-01") != 1 || e.free("MFG-1", "CART-19", "2026-12-02") != 1 {
		t.Error("cancel did not free the claims")
	}
	if v, err := e.svc.VerifyLedger(e.ctx); err != nil || !v.OK {
		t.Fatalf("ledger: %+v %v", v, err)
	}
}

func TestBookingNeedsLeadTimesAndRegistered(t *testing.T) {
	e := newEnv(t)
	free := e.enroll()
	registerNetwork(t, e)
	coi := e.enrollNet()
	if _, err := e.book(coi, "2026-12-01"); !errors.Is(err, custody.ErrConflict) || !strings.Contains(err.Error(), "apheresis_to_start_days") {
		t.Errorf("booking without lead times: %v", err)
	}
	if _, err := e.book(free, "2026-12-01"); !errors.Is(err, custody.ErrConflict) || !strings.Contains(err.Error(), "not a registered product") {
		t.Errorf("booking a free-text chain: %v", err)
	}
}

func TestCollectGate(t *testing.T) {
	e := newEnv(t)
	freeText := e.enroll()
	registerNetwork(t, e)
	before := e.enrollNet() // enrolled before the plant's capacity was defined
	admin := e.users["admin1"]
	p, _ := e.svc.Product(e.ctx, admin, "CART-19")
	p.ApheresisToStartDays, p.ManufacturingDays, p.ReleaseDays, p.ShippingDays, p.InfusionWindowDays = 1, 10, 3, 2, 14
	if _, err := e.svc.UpdateProduct(e.ctx, admin, "CART-19", p, "lead times"); err != nil {
		t.Fatal(err)
	}
	for site, c := range map[string]custody.Capacity{"PAR-1": {Chairs: 2}, "MFG-1": {Slots: map[string]int{"CART-19": 2}}} {
		if _, err := e.svc.SetCapacity(e.ctx, admin, site, c, "opens"); err != nil {
			t.Fatal(err)
		}
	}
	gated, booked := e.enrollNet(), e.enrollNet()
	collect := journey(gated)[0]

	n := e.records()
	_, err := e.step(gated, "nurse1", collect.step, collect.data, collect.sigs...)
	if !errors.Is(err, custody.ErrNotBooked) || !strings.Contains(err.Error(), "override") {
		t.Fatalf("collect without a booking: %v, want ErrNotBooked", err)
	}
	if e.records() != n {
		t.Fatal("a refused collect wrote a record")
	}
	// Chains enrolled before the capacity, and free-text chains, go on.
	e.must(before, "nurse1", collect.step, collect.data, collect.sigs...)
	e.must(freeText, "nurse1", collect.step, collect.data, collect.sigs...)
	// A booked chain is collected.
	if _, err := e.book(booked, "2026-12-01"); err != nil {
		t.Fatal(err)
	}
	e.must(booked, "nurse1", collect.step, collect.data, collect.sigs...)

	// The override needs a coordinator and QA, and a reason.
	override := func(reason string, sigs ...custody.SignatureRequest) error {
		_, err := e.svc.OverrideCollectGate(e.ctx, e.users["coord"], gated, custody.ReasonRequest{Reason: reason, Signatures: sigs})
		return err
	}
	if err := override("urgent", sig("coord", custody.MeaningApproved)); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("override by a coordinator alone: %v", err)
	}
	if err := override("urgent", sig("coord", custody.MeaningApproved), sig("nurse1", custody.MeaningApproved)); !errors.Is(err, custody.ErrForbidden) {
		t.Errorf("override by a coordinator and a nurse: %v", err)
	}
	if err := override("", sig("coord", custody.MeaningApproved), sig("qa1", custody.MeaningApproved)); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("override without a reason: %v", err)
	}
	if _, err := e.svc.OverrideCollectGate(e.ctx, e.users["nurse1"], gated, custody.ReasonRequest{Reason: "x"}); !errors.Is(err, custody.ErrForbidden) {
		t.Errorf("override submitted by a nurse: %v", err)
	}
	if err := override("plant confirmed by phone; slot system down", sig("coord", custody.MeaningApproved), sig("qa1", custody.MeaningApproved)); err != nil {
		t.Fatal(err)
	}
	if err := override("again", sig("coord", custody.MeaningApproved), sig("qa1", custody.MeaningApproved)); !errors.Is(err, custody.ErrConflict) {
		t.Errorf("second override: %v", err)
	}
	e.must(gated, "nurse1", collect.step, collect.data, collect.sigs...)
	// Once collected, no booking nor override is taken.
	if _, err := e.book(gated, "2026-12-05"); !errors.Is(err, custody.ErrConflict) {
		t.Errorf("booking a collected chain: %v", err)
	}
}

func TestCapacityAdministration(t *testing.T) {
	e := newEnv(t)
	registerNetwork(t, e)
	admin := e.users["admin1"]
	for _, c := range []struct {
		name  string
		actor string
		site  string
		cap   custody.Capacity
		want  error
	}{
		{"coordinator", "coord", "MFG-1", custody.Capacity{Slots: map[string]int{"CART-19": 1}}, custody.ErrForbidden},
		{"unknown site", "admin1", "NOPE-1", custody.Capacity{Chairs: 1}, custody.ErrNotFound},
		{"chairs at a plant", "admin1", "MFG-1", custody.Capacity{Chairs: 1}, custody.ErrInvalid},
		{"slots at a hospital", "admin1", "PAR-1", custody.Capacity{Slots: map[string]int{"CART-19": 1}}, custody.ErrInvalid},
		{"unregistered product", "admin1", "MFG-1", custody.Capacity{Slots: map[string]int{"KYM": 1}}, custody.ErrInvalid},
		{"other site in body", "admin1", "MFG-1", custody.Capacity{Site: "PAR-1"}, custody.ErrInvalid},
	} {
		if _, err := e.svc.SetCapacity(e.ctx, e.users[c.actor], c.site, c.cap, "because"); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := e.svc.SetCapacity(e.ctx, admin, "MFG-1", custody.Capacity{Slots: map[string]int{"CART-19": 2}}, ""); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("no reason: %v", err)
	}
	c1, err := e.svc.SetCapacity(e.ctx, admin, "MFG-1", custody.Capacity{Slots: map[string]int{"CART-19": 2}}, "plant opens")
	if err != nil {
		t.Fatal(err)
	}
	c2, err := e.svc.AddClosure(e.ctx, admin, "MFG-1", custody.Closure{From: "2026-12-24", To: "2026-12-26", Reason: "holidays"})
	if err != nil || len(c2.Closures) != 1 || !c2.Since.Equal(c1.Since) {
		t.Fatalf("closure: %+v %v", c2, err)
	}
	got, err := e.svc.SiteCapacity(e.ctx, e.users["nurse1"], "MFG-1")
	if err != nil || len(got.Closures) != 1 || got.Slots["CART-19"] != 2 {
		t.Fatalf("capacity read back: %+v %v", got, err)
	}
	if _, err := e.svc.AddClosure(e.ctx, admin, "PAR-1", custody.Closure{From: "2026-12-24", To: "2026-12-26", Reason: "x"}); !errors.Is(err, custody.ErrNotFound) {
		t.Errorf("closure of a site without capacity: %v", err)
	}
	trail, err := e.svc.AuditTrail(e.ctx, admin, custody.AuditFilter{Kind: custody.KindCapacity})
	if err != nil || len(trail) != 2 || trail[1].Action != custody.AuditCapacityClose || trail[1].Reason != "holidays" || trail[0].Old != nil {
		t.Fatalf("audit trail of capacity: %+v %v", trail, err)
	}
	a, err := e.svc.Availability(e.ctx, e.users["coord"], custody.AvailabilityQuery{Product: "CART-19", From: "2026-12-23", To: "2026-12-25"})
	if err != nil || len(a) != 1 || a[0].Site != "MFG-1" || a[0].Days[0].Free != 2 || a[0].Days[1].Closed == "" || a[0].Days[1].Free != 0 {
		t.Fatalf("availability: %+v %v", a, err)
	}
	for _, q := range []custody.AvailabilityQuery{{From: "2026-12-01", To: "2027-12-03"}, {From: "2026-12-03", To: "2026-12-01"},
		{From: "x", To: "2026-12-01"}, {From: "2026-12-01", To: "2026-12-01", Limit: 5000}} {
		if _, err := e.svc.Availability(e.ctx, e.users["coord"], q); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("availability %+v: %v", q, err)
		}
	}
}

// TestChangeAndRemoveClosure: an administrator moves a closure's days
// and removes it, each with its reason and audited; a closure not held,
// no reason or another role is refused and changes nothing; the days it
// no longer covers take bookings again.
func TestChangeAndRemoveClosure(t *testing.T) {
	e := newEnv(t)
	scheduleNetwork(t, e, 1, 1)
	admin := e.users["admin1"]
	if _, err := e.svc.AddClosure(e.ctx, admin, "MFG-1", custody.Closure{From: "2026-12-24", To: "2026-12-26", Reason: "holidays"}); err != nil {
		t.Fatal(err)
	}
	moved := custody.Closure{From: "2026-12-25", To: "2026-12-27", Reason: "holidays moved a day"}
	for _, c := range []struct {
		name     string
		actor    string
		from, to string
		cl       custody.Closure
		want     error
	}{
		{"no such closure", "admin1", "2026-12-23", "2026-12-26", moved, custody.ErrNotFound},
		{"no reason", "admin1", "2026-12-24", "2026-12-26", custody.Closure{From: "2026-12-25", To: "2026-12-27"}, custody.ErrInvalid},
		{"backwards", "admin1", "2026-12-24", "2026-12-26", custody.Closure{From: "2026-12-27", To: "2026-12-25", Reason: "x"}, custody.ErrInvalid},
		{"coordinator", "coord", "2026-12-24", "2026-12-26", moved, custody.ErrForbidden},
	} {
		if _, err := e.svc.ChangeClosure(e.ctx, e.users[c.actor], "MFG-1", c.from, c.to, c.cl); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := e.svc.RemoveClosure(e.ctx, admin, "MFG-1", "2026-12-24", "2026-12-26", ""); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("remove without a reason: %v", err)
	}
	if _, err := e.svc.RemoveClosure(e.ctx, e.users["coord"], "MFG-1", "2026-12-24", "2026-12-26", "x"); !errors.Is(err, custody.ErrForbidden) {
		t.Errorf("remove by a coordinator: %v", err)
	}
	closed := func(date string) bool {
		t.Helper()
		a, err := e.svc.Availability(e.ctx, e.users["coord"], custody.AvailabilityQuery{Sites: []string{"MFG-1"}, Product: "CART-19", From: date, To: date})
		if err != nil || len(a) != 1 || len(a[0].Days) != 1 {
			t.Fatalf("availability of %s: %+v %v", date, a, err)
		}
		return a[0].Days[0].Closed != ""
	}
	if !closed("2026-12-24") || closed("2026-12-27") {
		t.Fatal("refused changes moved the closure")
	}
	c, err := e.svc.ChangeClosure(e.ctx, admin, "MFG-1", "2026-12-24", "2026-12-26", moved)
	if err != nil || len(c.Closures) != 1 || c.Closures[0] != moved {
		t.Fatalf("changed: %+v %v", c, err)
	}
	if closed("2026-12-24") || !closed("2026-12-27") {
		t.Error("the closure's days did not move")
	}
	if c, err = e.svc.RemoveClosure(e.ctx, admin, "MFG-1", moved.From, moved.To, "plant works through the holidays"); err != nil || len(c.Closures) != 0 {
		t.Fatalf("removed: %+v %v", c, err)
	}
	if closed("2026-12-25") {
		t.Error("a removed closure still closes its days")
	}
	trail, err := e.svc.AuditTrail(e.ctx, admin, custody.AuditFilter{Kind: custody.KindCapacity})
	if err != nil {
		t.Fatal(err)
	}
	var acts []custody.AuditAction
	for _, a := range trail {
		acts = append(acts, a.Action)
	}
	if !slices.Contains(acts, custody.AuditCapacityCloseChange) || !slices.Contains(acts, custody.AuditCapacityReopen) {
		t.Errorf("audit trail: %v", acts)
	}
}

func TestSiteBookingsAfterClosure(t *testing.T) {
	e := newEnv(t)
	scheduleNetwork(t, e, 5, 2)
	admin := e.users["admin1"]
	var cois []custody.COI
	// Apheresis on the 1st, 1st, 2nd and 4th: plant starts the 2nd, 2nd, 3rd and 5th.
	for _, d := range []string{"2026-12-01", "2026-12-01", "2026-12-02", "2026-12-04"} {
		coi := e.enrollNet()
		if _, err := e.book(coi, d); err != nil {
			t.Fatal(err)
		}
		cois = append(cois, coi)
	}
	// The plant loses the 2nd and the 3rd, and can take only one on the 5th.
	if _, err := e.svc.AddClosure(e.ctx, admin, "MFG-1", custody.Closure{From: "2026-12-02", To: "2026-12-03", Reason: "clean-room failure"}); err != nil {
		t.Fatal(err)
	}
	c, _ := e.svc.SiteCapacity(e.ctx, admin, "MFG-1")
	c.Exceptions = []custody.CapacityException{{Date: "2026-12-05", Product: "CART-19", Count: 0, Reason: "staff"}}
	if _, err := e.svc.SetCapacity(e.ctx, admin, "MFG-1", c, "staff shortage"); err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.SiteBookings(e.ctx, e.users["mfg1"], "MFG-1", "2026-12-01", "2026-12-10")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 {
		t.Fatalf("bookings %+v", got)
	}
	// Free: two a day but on the closed days and the 5th; the nearest
	// days first, later before earlier, each free slot handed to one
	// booking only (the 1st, 4th and 30th are gone after the first two).
	want := []struct {
		coi       custody.COI
		date      string
		proposals string
	}{
		{cois[0], "2026-12-02", "[2026-12-01 2026-12-04 2026-11-30]"},
		{cois[1], "2026-12-02", "[2026-12-01 2026-12-04 2026-11-30]"},
		{cois[2], "2026-12-03", "[2026-12-06 2026-12-07 2026-11-29]"},
		{cois[3], "2026-12-05", "[2026-12-06 2026-12-07 2026-12-08]"},
	}
	for i, w := range want {
		g := got[i]
		if g.COI != w.coi || g.Date != w.date || g.Moved == "" || fmt.Sprint(g.Proposals) != w.proposals {
			t.Errorf("booking %d: %s on %s moved %q proposals %v; want %s on %s, proposals %s", i, g.COI, g.Date, g.Moved, g.Proposals, w.coi, w.date, w.proposals)
		}
	}
	if _, err := e.svc.SiteBookings(e.ctx, e.users["coord"], "MFG-1", "2026-12-01", "2026-12-10"); !errors.Is(err, custody.ErrForbidden) {
		t.Errorf("coordinator of another site: %v", err)
	}
	if _, err := e.svc.SiteBookings(e.ctx, admin, "MFG-1", "2026-12-10", "2026-12-01"); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("backwards range: %v", err)
	}
}

// TestRescheduleCollected: once the cells are collected, the plant's lost
// day moves their slot; the apheresis and its chair stay.
func TestRescheduleCollected(t *testing.T) {
	e := newEnv(t)
	scheduleNetwork(t, e, 2, 1)
	coi := e.enrollNet()
	if _, err := e.book(coi, "2026-12-01"); err != nil {
		t.Fatal(err)
	}
	collect := journey(coi)[0]
	e.must(coi, "nurse1", collect.step, collect.data, collect.sigs...)
	move := func(aph, start string) (custody.Record, error) {
		return e.svc.Reschedule(e.ctx, e.users["coord"], coi, custody.BookRequest{ApheresisDate: aph, ManufacturingStart: start,
			Reason: "clean-room failure", Signatures: []custody.SignatureRequest{sig("coord", custody.MeaningAuthored)}})
	}
	for _, c := range []struct{ aph, start, text string }{
		{"2026-12-03", "2026-12-04", "only the manufacturing_start moves"},
		{"", "", "manufacturing_start is required"},
		{"", "2026-11-30", "before the apheresis"},
		{"", "2026-11-01", "is past at MFG-1"},
	} {
		if _, err := move(c.aph, c.start); !errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("move %q %q: %v, want ErrInvalid naming %q", c.aph, c.start, err, c.text)
		}
	}
	rec, err := move("", "2026-12-04")
	if err != nil {
		t.Fatal(err)
	}
	x, _ := rec.Parsed()
	rd, ok := x.(custody.RescheduleData)
	if !ok || rd.Plan.Apheresis.Date != "2026-12-01" || rd.Plan.ManufacturingStart.Date != "2026-12-04" || rd.Plan.Release.Date != "2026-12-17" ||
		len(rd.Claims) != 2 || rd.Claims[0].Date != "2026-12-01" || rd.Claims[1].Date != "2026-12-04" {
		t.Fatalf("reschedule data %+v", x)
	}
	if e.free("MFG-1", "CART-19", "2026-12-02") != 1 || e.free("MFG-1", "CART-19", "2026-12-04") != 0 || e.free("PAR-1", "", "2026-12-01") != 1 {
		t.Error("the slot did not move, or the chair moved")
	}
}

// TestConcurrentBookings: 64 coordinators' requests for 10 slots at once
// through the service: exactly 10 are booked, the others refused with
// ErrSlotTaken and nothing written for them.
func TestConcurrentBookings(t *testing.T) {
	const clients, slots = 64, 10
	e := newEnv(t)
	scheduleNetwork(t, e, 100, slots)
	cois := make([]custody.COI, clients)
	for i := range cois {
		cois[i] = e.enrollNet()
	}
	before := e.records()
	errs := make([]error, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() { _, errs[i] = e.book(cois[i], "2026-12-01") })
	}
	wg.Wait()
	booked := 0
	for i, err := range errs {
		switch {
		case err == nil:
			booked++
		case !errors.Is(err, custody.ErrSlotTaken):
			t.Errorf("client %d: %v", i, err)
		}
	}
	if booked != slots || e.records() != before+slots {
		t.Fatalf("%d booked, %d records written; want %d", booked, e.records()-before, slots)
	}
	if n := e.free("MFG-1", "CART-19", "2026-12-02"); n != 0 {
		t.Fatalf("%d slots still free", n)
	}
}
