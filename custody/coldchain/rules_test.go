package coldchain

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// shipper is the shipper of the test readings.
const shipper = "SHP-0042"

// t0 is 2026-11-22T13:00:00Z, the start of the test legs.
var t0 = time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)

func fp(v float64) *float64 { return &v }
func bp(v bool) *bool       { return &v }

// minute returns t0 plus m minutes.
func minute(m float64) time.Time { return t0.Add(time.Duration(m * float64(time.Minute))) }

// temps returns one reading a minute from minute first, with the given
// temperatures; seq counts from first.
func temps(first int, cs ...float64) []custody.Reading {
	rs := make([]custody.Reading, len(cs))
	for i, c := range cs {
		m := first + i
		rs[i] = custody.Reading{Shipper: shipper, Seq: uint64(m), HasSeq: true, DeviceTime: minute(float64(m)),
			ReceivedTime: minute(float64(m)), TempC: fp(c)}
	}
	return rs
}

// fill returns n copies of c.
func fill(n int, c float64) []float64 { return slices.Repeat([]float64{c}, n) }

func cat(parts ...[]float64) []float64 { return slices.Concat(parts...) }

// want describes an expected excursion; times in minutes from t0, end < 0
// means open.
type want struct {
	kind          custody.ExcursionKind
	start, end    float64
	dur, breach   float64 // minutes
	worst, limit  float64
	worstRequired bool
}

func (w want) String() string {
	return fmt.Sprintf("%s start=%v end=%v dur=%vm breach=%vm worst=%v", w.kind, w.start, w.end, w.dur, w.breach, w.worst)
}

func describe(es []custody.Excursion) string {
	var b strings.Builder
	for _, e := range es {
		end := "open"
		if !e.End.IsZero() {
			end = fmt.Sprint(e.End.Sub(t0).Minutes())
		}
		fmt.Fprintf(&b, "  %s start=%v end=%s dur=%v breach=%v", e.Kind, e.Start.Sub(t0).Minutes(), end, e.Duration, e.Breach)
		if e.Worst != nil {
			fmt.Fprintf(&b, " worst=%v limit=%v", *e.Worst, *e.Limit)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func check(t *testing.T, got []custody.Excursion, ws ...want) {
	t.Helper()
	bad := len(got) != len(ws)
	for i := 0; !bad && i < len(ws); i++ {
		e, w := got[i], ws[i]
		bad = e.Kind != w.kind || !e.Start.Equal(minute(w.start)) ||
			e.Duration != time.Duration(w.dur*float64(time.Minute)) ||
			e.Breach != time.Duration(w.breach*float64(time.Minute)) ||
			e.ID != custody.ExcursionID(e.Kind, e.Start)
		if w.end < 0 {
			bad = bad || !e.End.IsZero() || !e.Open()
		} else {
			bad = bad || !e.End.Equal(minute(w.end))
		}
		if w.worstRequired {
			bad = bad || e.Worst == nil || *e.Worst != w.worst || *e.Limit != w.limit
		} else {
			bad = bad || e.Worst != nil || e.Limit != nil
		}
	}
	if bad {
		t.Fatalf("excursions:\n%swant:\n  %v", describe(got), ws)
	}
}

// onlyKind filters excursions to one kind.
func onlyKind(k custody.ExcursionKind, es []custody.Excursion) []custody.Excursion {
	var out []custody.Excursion
	for _, e := range es {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

func TestEvaluateTemperature(t *testing.T) {
	cryo := custody.BuiltinProfiles()["cryogenic"] // <= -150 C, grace 5m
	fridge := custody.BuiltinProfiles()["refrigerated"]
	T := custody.ExcursionTemperature
	tests := []struct {
		name string
		p    custody.Profile
		rs   []custody.Reading
		to   float64
		want []want
	}{
		{"in range", cryo, temps(0, fill(31, -180)...), 30, nil},
		{"at the limit is in range", cryo, temps(0, fill(31, -150)...), 30, nil},
		{"breach shorter than grace", cryo, temps(0, cat(fill(5, -180), fill(4, -140), fill(12, -180))...), 20, nil},
		{"breach exactly grace", cryo, temps(0, cat(fill(5, -180), fill(5, -140), fill(11, -180))...), 20, nil},
		{"breach longer than grace", cryo, temps(0, cat(fill(5, -180), []float64{-140, -140, -130, -145, -149.9, -140}, fill(10, -180))...), 20,
			[]want{{kind: T, start: 5, end: 11, dur: 6, breach: 6, worst: -130, limit: -150, worstRequired: true}}},
		{"flapping around the limit is one excursion", cryo,
			temps(0, cat(fill(10, -180), slices.Repeat([]float64{-149, -151}, 10), fill(20, -180))...), 49,
			[]want{{kind: T, start: 10, end: 29, dur: 19, breach: 10, worst: -149, limit: -150, worstRequired: true}}},
		{"brief flaps that stay within grace in total", cryo,
			temps(0, cat(fill(10, -180), []float64{-149, -151, -149, -151}, fill(20, -180))...), 33, nil},
		{"returns of grace or more split episodes", cryo,
			temps(0, cat(fill(5, -180), fill(7, -140), fill(8, -180), fill(6, -120), fill(10, -180))...), 35,
			[]want{
				{kind: T, start: 5, end: 12, dur: 7, breach: 7, worst: -140, limit: -150, worstRequired: true},
				{kind: T, start: 20, end: 26, dur: 6, breach: 6, worst: -120, limit: -150, worstRequired: true},
			}},
		{"open at to", cryo, temps(0, cat(fill(10, -180), fill(6, -140))...), 20,
			[]want{{kind: T, start: 10, end: -1, dur: 10, breach: 10, worst: -140, limit: -150, worstRequired: true}}},
		{"not yet longer than grace at to", cryo, temps(0, cat(fill(10, -180), fill(3, -140))...), 14, nil},
		{"back in range for less than grace stays open", cryo, temps(0, cat(fill(10, -180), fill(7, -140), fill(4, -180))...), 20,
			[]want{{kind: T, start: 10, end: -1, dur: 10, breach: 7, worst: -140, limit: -150, worstRequired: true}}},
		{"back in range for grace closes", cryo, temps(0, cat(fill(10, -180), fill(7, -140), fill(6, -180))...), 22,
			[]want{{kind: T, start: 10, end: 17, dur: 7, breach: 7, worst: -140, limit: -150, worstRequired: true}}},
		{"both limits in one episode, worst by deviation", fridge, temps(0, cat(fill(10, 5), fill(5, 9), fill(6, 0.5), fill(20, 5))...), 40,
			[]want{{kind: T, start: 10, end: 21, dur: 11, breach: 11, worst: 0.5, limit: 2, worstRequired: true}}},
		{"silence holds the last value", cryo, append(temps(5, -140), temps(30, -180)...), 40,
			[]want{{kind: T, start: 5, end: 30, dur: 25, breach: 25, worst: -140, limit: -150, worstRequired: true}}},
		{"readings before from are ignored", cryo, append(temps(-20, fill(10, -100)...), temps(0, fill(21, -180)...)...), 20, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Evaluate(tt.p, tt.rs, t0, minute(tt.to))
			check(t, onlyKind(T, got), tt.want...)
		})
	}
}

func TestEvaluateHoldsThroughOtherReadings(t *testing.T) {
	// A breach at 5, lid-only readings 6..11, back in range at 12: the lid
	// readings carry no temperature and do not end the breach.
	rs := temps(5, -140)
	for m := 6; m <= 11; m++ {
		rs = append(rs, custody.Reading{Shipper: shipper, DeviceTime: minute(float64(m)), LidOpen: bp(false)})
	}
	rs = append(rs, temps(12, -180)...)
	check(t, onlyKind(custody.ExcursionTemperature, Evaluate(custody.BuiltinProfiles()["cryogenic"], rs, minute(5), minute(30))),
		want{kind: custody.ExcursionTemperature, start: 5, end: 12, dur: 7, breach: 7, worst: -140, limit: -150, worstRequired: true})
}

func tilts(first int, ds ...float64) []custody.Reading {
	rs := make([]custody.Reading, len(ds))
	for i, d := range ds {
		rs[i] = custody.Reading{Shipper: shipper, DeviceTime: minute(float64(first + i)), TiltDeg: fp(d), TempC: fp(-180)}
	}
	return rs
}

func lids(first int, open ...bool) []custody.Reading {
	rs := make([]custody.Reading, len(open))
	for i, o := range open {
		rs[i] = custody.Reading{Shipper: shipper, DeviceTime: minute(float64(first + i)), LidOpen: bp(o)}
	}
	return rs
}

func TestEvaluateTiltAndLid(t *testing.T) {
	cryo := custody.BuiltinProfiles()["cryogenic"] // tilt <= 30 grace 10m; lid grace 1m
	lightRs := lids(0, false, false, false, false, false)
	for m := 5; m <= 7; m++ {
		lightRs = append(lightRs, custody.Reading{Shipper: shipper, DeviceTime: minute(float64(m)), LidOpen: bp(false), Light: bp(m < 7)})
	}
	tests := []struct {
		name string
		kind custody.ExcursionKind
		rs   []custody.Reading
		to   float64
		want []want
	}{
		{"upright", custody.ExcursionTilt, tilts(0, cat(fill(20, 5), fill(10, 30))...), 29, nil},
		{"tilted shorter than grace", custody.ExcursionTilt, tilts(0, cat(fill(5, 5), fill(9, 45), fill(10, 5))...), 23, nil},
		{"on its side", custody.ExcursionTilt, tilts(0, cat(fill(5, 5), fill(5, 45), fill(6, 90), fill(10, 5))...), 40,
			[]want{{kind: custody.ExcursionTilt, start: 5, end: 16, dur: 11, breach: 11, worst: 90, limit: 30, worstRequired: true}}},
		{"lid open one minute is within grace", custody.ExcursionLid, lids(0, false, true, false, false), 3, nil},
		{"lid open two minutes", custody.ExcursionLid, lids(0, false, true, true, false, false), 4,
			[]want{{kind: custody.ExcursionLid, start: 1, end: 3, dur: 2, breach: 2}}},
		{"lid still open", custody.ExcursionLid, lids(0, false, true, true), 5,
			[]want{{kind: custody.ExcursionLid, start: 1, end: -1, dur: 4, breach: 4}}},
		{"light inside with lid switch closed", custody.ExcursionLid, lightRs, 9,
			[]want{{kind: custody.ExcursionLid, start: 5, end: 7, dur: 2, breach: 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, onlyKind(tt.kind, Evaluate(cryo, tt.rs, t0, minute(tt.to))), tt.want...)
		})
	}
	// Rules the profile does not set are not judged.
	none := custody.Profile{Name: "none", ExpectedInterval: time.Hour, SilenceIntervals: 10}
	if got := Evaluate(none, append(tilts(0, fill(30, 170)...), lids(30, true, true, true)...), t0, minute(40)); len(got) != 0 {
		t.Fatalf("profile without limits:\n%s", describe(got))
	}
}

// TestEvaluateLidAndLightHeldSeparately: the lid switch and the light
// sensor report on their own schedules (a switch often only on change), so
// each one's last value holds until that sensor reports again, and the lid
// rule is broken while either says open.
func TestEvaluateLidAndLightHeldSeparately(t *testing.T) {
	cryo := custody.BuiltinProfiles()["cryogenic"] // lid grace 1m
	L := custody.ExcursionLid
	type rd struct {
		m          float64 // minutes from t0
		lid, light *bool
	}
	// every returns light-only (or lid-only) readings every half minute in
	// [from, to).
	every := func(from, to float64, lid, light *bool) []rd {
		var out []rd
		for m := from; m < to; m += 0.5 {
			out = append(out, rd{m, lid, light})
		}
		return out
	}
	closed, dark := rd{0, bp(false), bp(false)}, bp(false)
	tests := []struct {
		name string
		rds  []rd
		to   float64
		want []want
	}{
		{"light-only dark readings do not close an open lid",
			slices.Concat([]rd{closed, {1, bp(true), nil}}, every(1.5, 20, nil, dark)), 20,
			[]want{{kind: L, start: 1, end: -1, dur: 19, breach: 19}}},
		{"the lid switch closes it",
			slices.Concat([]rd{closed, {1, bp(true), nil}}, every(1.5, 4, nil, dark), []rd{{4, bp(false), nil}}, every(4.5, 10, nil, dark)), 10,
			[]want{{kind: L, start: 1, end: 4, dur: 3, breach: 3}}},
		{"lid-only closed readings do not end light inside",
			slices.Concat([]rd{closed, {1, nil, bp(true)}}, every(1.5, 6, bp(false), nil), []rd{{6, nil, bp(false)}}), 10,
			[]want{{kind: L, start: 1, end: 6, dur: 5, breach: 5}}},
		{"lid open then light inside is one break until both end",
			[]rd{closed, {1, bp(true), nil}, {2, nil, bp(true)}, {3, bp(false), nil}, {5, nil, bp(false)}}, 10,
			[]want{{kind: L, start: 1, end: 5, dur: 4, breach: 4}}},
		{"lid open and dark at the same instant", []rd{closed, {1, bp(true), nil}, {1, nil, dark}, {2, nil, dark}, {3, nil, dark}}, 5,
			[]want{{kind: L, start: 1, end: -1, dur: 4, breach: 4}}},
		{"light-only sensor", []rd{{0, nil, dark}, {1, nil, bp(true)}, {3, nil, dark}}, 10,
			[]want{{kind: L, start: 1, end: 3, dur: 2, breach: 2}}},
		{"closed and dark throughout", slices.Concat([]rd{closed}, every(0.5, 10, nil, dark), every(0.25, 10, bp(false), nil)), 10, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := make([]custody.Reading, len(tt.rds))
			for i, r := range tt.rds {
				// seq gives readings at the same instant their payload order.
				rs[i] = custody.Reading{Shipper: shipper, Seq: uint64(i), HasSeq: true, DeviceTime: minute(r.m),
					LidOpen: r.lid, Light: r.light, TempC: fp(-180)}
			}
			check(t, onlyKind(L, Evaluate(cryo, rs, t0, minute(tt.to))), tt.want...)
			// The verdict does not depend on the order readings arrive in.
			rng := rand.New(rand.NewPCG(1, 2))
			for range 5 {
				rng.Shuffle(len(rs), func(a, b int) { rs[a], rs[b] = rs[b], rs[a] })
				check(t, onlyKind(L, Evaluate(cryo, rs, t0, minute(tt.to))), tt.want...)
			}
		})
	}
}

func TestEvaluateSilence(t *testing.T) {
	cryo := custody.BuiltinProfiles()["cryogenic"] // silence after 15 x 1m
	S := custody.ExcursionSilence
	every := func(from, to int) []custody.Reading {
		var rs []custody.Reading
		for m := from; m <= to; m++ {
			rs = append(rs, temps(m, -180)...)
		}
		return rs
	}
	tests := []struct {
		name     string
		rs       []custody.Reading
		from, to float64
		zeroFrom bool
		want     []want
	}{
		{"reporting", every(0, 60), 0, 60, false, nil},
		{"gap of exactly the limit", append(every(0, 10), every(25, 30)...), 0, 30, false, nil},
		{"gap in the middle", append(every(0, 10), every(30, 40)...), 0, 40, false,
			[]want{{kind: S, start: 10, end: 30, dur: 20, breach: 20}}},
		{"nothing since the ship step", every(20, 25), 0, 25, false,
			[]want{{kind: S, start: 0, end: 20, dur: 20, breach: 20}}},
		{"silent now", every(0, 10), 0, 30, false,
			[]want{{kind: S, start: 10, end: -1, dur: 20, breach: 20}}},
		{"no readings at all", nil, 0, 30, false,
			[]want{{kind: S, start: 0, end: -1, dur: 30, breach: 30}}},
		{"zero from counts from the first reading", every(20, 25), 0, 25, true, nil},
		{"heartbeats without measurements count", func() []custody.Reading {
			rs := every(0, 5)
			for m := 6; m <= 30; m += 10 {
				rs = append(rs, custody.Reading{Shipper: shipper, DeviceTime: minute(float64(m))})
			}
			return rs
		}(), 0, 30, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from := minute(tt.from)
			if tt.zeroFrom {
				from = time.Time{}
			}
			check(t, onlyKind(S, Evaluate(cryo, tt.rs, from, minute(tt.to))), tt.want...)
		})
	}
}

// journey is a synthetic cryogenic leg with every kind of excursion.
func journey() []custody.Reading {
	var rs []custody.Reading
	seq := uint64(0)
	add := func(m float64, c float64, tilt float64, lid bool) {
		seq++
		rs = append(rs, custody.Reading{Shipper: shipper, Seq: seq, HasSeq: true, DeviceTime: minute(m), ReceivedTime: minute(m),
			TempC: fp(c), TiltDeg: fp(tilt), LidOpen: bp(lid)})
	}
	for m := 0; m < 240; m++ {
		c, tilt, lid := -185.0, 3.0, false
		switch {
		case m >= 30 && m < 50: // warming, flapping at the limit
			c = -150.5 + float64(m%2)
		case m >= 60 && m < 75: // on its side
			tilt = 85
		case m >= 90 && m < 93: // lid opened at customs
			lid = true
		case m >= 120 && m < 150: // silent
			continue
		}
		add(float64(m), c, tilt, lid)
	}
	return rs
}

func TestEvaluateJourney(t *testing.T) {
	cryo := custody.BuiltinProfiles()["cryogenic"]
	got := Evaluate(cryo, journey(), t0, minute(240))
	check(t, got,
		want{kind: custody.ExcursionTemperature, start: 31, end: 50, dur: 19, breach: 10, worst: -149.5, limit: -150, worstRequired: true},
		want{kind: custody.ExcursionTilt, start: 60, end: 75, dur: 15, breach: 15, worst: 85, limit: 30, worstRequired: true},
		want{kind: custody.ExcursionLid, start: 90, end: 93, dur: 3, breach: 3},
		want{kind: custody.ExcursionSilence, start: 119, end: 150, dur: 31, breach: 31},
	)
}

func TestEvaluateOrderIndependent(t *testing.T) {
	cryo := custody.BuiltinProfiles()["cryogenic"]
	rs := journey()
	// Some readings at the same instant: the tie is broken by seq.
	rs[40].DeviceTime = rs[39].DeviceTime
	orig := slices.Clone(rs)
	want := Evaluate(cryo, rs, t0, minute(240))
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 30 {
		sh := slices.Clone(rs)
		rng.Shuffle(len(sh), func(a, b int) { sh[a], sh[b] = sh[b], sh[a] })
		if got := Evaluate(cryo, sh, t0, minute(240)); !reflect.DeepEqual(got, want) {
			t.Fatalf("shuffle %d:\n%swant:\n%s", i, describe(got), describe(want))
		}
	}
	if !reflect.DeepEqual(rs, orig) {
		t.Fatal("Evaluate modified its input")
	}
}

func TestEvaluateLateReadings(t *testing.T) {
	// An offline logger: live readings stop at minute 20 and the buffer for
	// 20..60, which holds a warming, is flushed at minute 61 with late
	// receive times. Judged by device time, the result equals the in-order
	// one: the silence disappears and the warming appears.
	cryo := custody.BuiltinProfiles()["cryogenic"]
	live := temps(0, fill(21, -185)...)
	buffered := temps(21, cat(fill(10, -185), fill(10, -140), fill(20, -185))...)
	for i := range buffered {
		buffered[i].ReceivedTime = minute(61)
	}
	before := Evaluate(cryo, live, t0, minute(50))
	check(t, before, want{kind: custody.ExcursionSilence, start: 20, end: -1, dur: 30, breach: 30})

	late := append(slices.Clone(live), buffered...)
	slices.Reverse(late[21:]) // and the flush arrives newest first
	inOrder := append(slices.Clone(live), buffered...)
	got := Evaluate(cryo, late, t0, minute(61))
	if want := Evaluate(cryo, inOrder, t0, minute(61)); !reflect.DeepEqual(got, want) {
		t.Fatalf("late:\n%sin order:\n%s", describe(got), describe(want))
	}
	check(t, got, want{kind: custody.ExcursionTemperature, start: 31, end: 41, dur: 10, breach: 10, worst: -140, limit: -150, worstRequired: true})
}

func TestEvaluateStableIDs(t *testing.T) {
	// Re-evaluating as readings arrive in device-time order keeps an
	// excursion's ID from the moment it appears; it is open until the
	// rule has been kept for the grace, then closed with the same ID.
	cryo := custody.BuiltinProfiles()["cryogenic"]
	rs := temps(0, cat(fill(10, -180), fill(8, -140), []float64{-180, -140}, fill(20, -180))...)
	ids := map[string]bool{}
	var last custody.Excursion
	for n := 1; n <= len(rs); n++ {
		es := onlyKind(custody.ExcursionTemperature, Evaluate(cryo, rs[:n], t0, rs[n-1].DeviceTime))
		for _, e := range es {
			ids[e.ID] = true
			last = e
		}
	}
	if len(ids) != 1 {
		t.Fatalf("ids %v, want one", ids)
	}
	if last.Open() || !last.End.Equal(minute(20)) || last.Breach != 9*time.Minute {
		t.Fatalf("final excursion %+v", last)
	}
}

func TestEvaluateEdges(t *testing.T) {
	cryo := custody.BuiltinProfiles()["cryogenic"]
	if got := Evaluate(cryo, temps(0, -100), minute(10), minute(5)); got != nil {
		t.Fatalf("to before from: %v", got)
	}
	// A reading exactly at to counts; readings after to do not.
	got := Evaluate(cryo, temps(0, cat(fill(10, -100), fill(10, -180))...), t0, minute(9))
	check(t, got, want{kind: custody.ExcursionTemperature, start: 0, end: -1, dur: 9, breach: 9, worst: -100, limit: -150, worstRequired: true})
	// Zero grace: any break of positive length is an excursion, each return
	// ends it.
	p := cryo
	p.Grace = 0
	check(t, onlyKind(custody.ExcursionTemperature, Evaluate(p, temps(0, -180, -149, -180, -149, -180), t0, minute(4))),
		want{kind: custody.ExcursionTemperature, start: 1, end: 2, dur: 1, breach: 1, worst: -149, limit: -150, worstRequired: true},
		want{kind: custody.ExcursionTemperature, start: 3, end: 4, dur: 1, breach: 1, worst: -149, limit: -150, worstRequired: true},
	)
}
