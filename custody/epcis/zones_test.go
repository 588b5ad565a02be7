package epcis_test

import (
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/epcis"
)

// TestEventTimeZoneOffsetBySite checks that an event at a registered site
// carries that site's offset at the event time, across a DST change, and
// an event at a site from before the network the default zone's (then
// UTC's).
func TestEventTimeZoneOffsetBySite(t *testing.T) {
	load := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	zones := custody.SiteZones{"CHI-1": load("America/Chicago"), "BER-1": load("Europe/Berlin")}
	at := func(seq uint64, site string, tm time.Time) custody.Record {
		return custody.Record{Seq: seq, Step: custody.StepReceive, Site: site, Time: tm}
	}
	c := &custody.Chain{COI: "COI-1", Facility: "F1234", Head: "head", Records: []custody.Record{
		at(1, "CHI-1", time.Date(2026, 3, 8, 7, 59, 0, 0, time.UTC)), // CST, before spring forward
		at(2, "CHI-1", time.Date(2026, 3, 8, 8, 0, 0, 0, time.UTC)),  // CDT, after
		at(3, "BER-1", time.Date(2026, 3, 8, 8, 0, 0, 0, time.UTC)),  // CET
		at(4, "BER-1", time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC)),  // CEST
		at(5, "St. Mary Apheresis", time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC)),
	}}
	for _, tc := range []struct {
		name string
		def  *time.Location
		want []string
	}{
		{"default zone", load("Asia/Kolkata"), []string{"-06:00", "-05:00", "+01:00", "+02:00", "+05:30"}},
		{"no default zone", nil, []string{"-06:00", "-05:00", "+01:00", "+02:00", "+00:00"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := epcis.Export(&epcis.Input{Chain: c, CreatedAt: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC),
				Zone: tc.def, SiteZones: zones})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, ev := range doc.Body.EventList {
				if ev.Seq != 0 {
					got = append(got, ev.EventTimeZoneOffset)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d events, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("event %d: offset %s, want %s", i+1, got[i], tc.want[i])
				}
			}
		})
	}
}
