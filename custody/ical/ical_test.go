package ical_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/ical"
	goical "github.com/emersion/go-ical"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var stamp = time.Date(2026, 11, 22, 9, 30, 0, 0, time.UTC)

func events() []custody.FeedEvent {
	return []custody.FeedEvent{
		{UID: "CHA999926000001-apheresis", COI: "CHA999926000001", Product: "CART-19", Kind: "apheresis", From: "2026-12-01", To: "2026-12-01", Stamp: stamp},
		{UID: "CHA999926000002-infusion-window", COI: "CHA999926000002", Product: `Ré,ñ;é\ ` + strings.Repeat("é", 40),
			Kind: "infusion-window", From: "2026-12-30", To: "2027-01-12"},
	}
}

func TestEncode(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	out := ical.Encode("PAR-1", events(), now)
	golden := filepath.Join("testdata", "feed.ics")
	if *update {
		if err := os.WriteFile(golden, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("feed differs from %s (go test -update rewrites it):\n%s", golden, out)
	}
	if !bytes.HasSuffix(out, []byte("END:VCALENDAR\r\n")) || bytes.Count(out, []byte("\n")) != bytes.Count(out, []byte("\r\n")) {
		t.Errorf("lines must end in CRLF")
	}
	for i, l := range strings.Split(strings.TrimSuffix(string(out), "\r\n"), "\r\n") {
		if len(l) > 75 || !utf8.ValidString(l) {
			t.Errorf("line %d: %d octets or a split UTF-8 sequence: %q", i+1, len(l), l)
		}
	}
	cal, err := goical.NewDecoder(bytes.NewReader(out)).Decode()
	if err != nil {
		t.Fatalf("go-ical refuses the feed: %v", err)
	}
	evs := cal.Events()
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	for i, tc := range []struct {
		uid, summary, from, end string
		stamp                   time.Time
	}{
		{"CHA999926000001-apheresis@coid", "Apheresis CHA999926000001 (CART-19)", "2026-12-01", "2026-12-02", stamp},
		{"CHA999926000002-infusion-window@coid", "Infusion window CHA999926000002 (" + events()[1].Product + ")", "2026-12-30", "2027-01-13", now},
	} {
		e := evs[i]
		uid, _ := e.Props.Text(goical.PropUID)
		sum, _ := e.Props.Text(goical.PropSummary)
		from, _ := e.DateTimeStart(time.UTC)
		end, _ := e.DateTimeEnd(time.UTC)
		st, _ := e.Props.DateTime(goical.PropDateTimeStamp, time.UTC)
		if uid != tc.uid || sum != tc.summary || from.Format(custody.DateLayout) != tc.from || end.Format(custody.DateLayout) != tc.end || !st.Equal(tc.stamp) {
			t.Errorf("event %d = %q %q %s..%s %s, want %+v", i, uid, sum, from, end, st, tc)
		}
	}
}
