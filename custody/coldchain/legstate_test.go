package coldchain

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// incrementalRun is what one randomised comparison of incremental and full
// judgement saw.
type incrementalRun struct {
	checks, resets, excursions, holds int
}

// randomLeg returns a random profile, leg and readings (in arrival order,
// with late, out-of-order, repeated-time and future-dated readings) drawn
// from seed; n bounds the readings and late how far a reading may arrive
// after its turn.
func randomLeg(seed uint64, n, late int) (custody.LegRef, []custody.Reading) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	p := custody.Profile{Name: "random", ExpectedInterval: time.Minute, SilenceIntervals: 1 + rng.IntN(5)}
	if rng.IntN(4) > 0 {
		p.MinC, p.MaxC, p.Grace = fp(2), fp(8), time.Duration(rng.IntN(600))*time.Second
	}
	if rng.IntN(4) > 0 {
		p.MaxTiltDeg, p.TiltGrace = fp(30), time.Duration(rng.IntN(300))*time.Second
	}
	p.LidMustBeClosed, p.LidGrace = rng.IntN(4) > 0, time.Duration(rng.IntN(180))*time.Second
	l := custody.LegRef{COI: "COI-1", Profile: p, Leg: custody.Leg{N: 1, Shipper: shipper, ShippedAt: t0}}
	rs := make([]custody.Reading, 0, n)
	t := t0.Add(-time.Duration(rng.IntN(5)) * time.Minute) // some before the leg
	temp, tilt, ln2 := 5.0, 5.0, 90.0
	for i := range n {
		switch rng.IntN(20) {
		case 0: // a gap
			t = t.Add(time.Duration(rng.IntN(15)) * time.Minute)
		case 1: // the same device time again
		default:
			t = t.Add(time.Duration(10+rng.IntN(80)) * time.Second)
		}
		temp += rng.NormFloat64() * 1.5
		tilt = max(0, tilt+rng.NormFloat64()*8)
		ln2 -= rng.Float64() * 0.2
		r := custody.Reading{Shipper: shipper, DeviceTime: t, ReceivedTime: t}
		if rng.IntN(10) > 0 {
			r.Seq, r.HasSeq = uint64(i+1), true
		}
		if rng.IntN(5) > 0 {
			r.TempC = fp(temp)
		}
		if rng.IntN(3) == 0 {
			r.TiltDeg = fp(tilt)
		}
		if rng.IntN(3) == 0 {
			r.LidOpen = bp(rng.IntN(6) == 0)
		}
		if rng.IntN(4) == 0 {
			r.Light = bp(rng.IntN(8) == 0)
		}
		if rng.IntN(2) == 0 {
			r.LN2Pct = fp(ln2)
		}
		rs = append(rs, r)
	}
	// Arrival order: most in turn, some late by up to late places.
	key := make([]int, len(rs))
	for i := range key {
		key[i] = 2 * i
		if late > 0 && rng.IntN(6) == 0 {
			key[i] += 2*rng.IntN(late) + 1
		}
	}
	idx := make([]int, len(rs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return key[a] - key[b] })
	arrived := make([]custody.Reading, len(rs))
	for i, j := range idx {
		arrived[i] = rs[j]
	}
	return l, arrived
}

// compareIncremental drives a LegState as the monitor does, over the
// readings of randomLeg(seed, n, late) arriving in random batches at
// checks whose "now" moves forward at random (sometimes behind readings
// already stored, whose device clock ran fast), with the leg received at
// a random check (sometimes before readings already judged). At every check
// it compares the state's judgement with EvaluateLeg and ProjectHold over
// every reading stored so far.
func compareIncremental(seed uint64, n, late int) (incrementalRun, error) {
	l, arrived := randomLeg(seed, n, late)
	rng := rand.New(rand.NewPCG(seed^0x5555, seed))
	hold := HoldConfig{Window: time.Duration(30+rng.IntN(90)) * time.Minute, MinSpan: 10 * time.Minute}
	x := NewLegState(l, hold)
	var run incrementalRun
	now := t0
	receiveAt := -1
	if rng.IntN(3) == 0 {
		receiveAt = rng.IntN(len(arrived) + 1)
	}
	for stored := 0; stored < len(arrived) || run.checks == 0; run.checks++ {
		k := min(len(arrived)-stored, rng.IntN(12))
		batch := arrived[stored : stored+k]
		stored += k
		if stored >= receiveAt && receiveAt >= 0 && l.Leg.ReceivedAt == nil {
			ra := now.Add(time.Duration(rng.IntN(1200)-600) * time.Second)
			l.Leg.ReceivedAt = &ra
		}
		now = now.Add(time.Duration(rng.IntN(1500)) * time.Second)
		all := slices.Clone(arrived[:stored])
		if !x.Add(batch) || x.Behind(l, now) {
			x.Reset(all)
			run.resets++
		}
		es, hp := x.Judge(l, now, hold)
		ref := l.At(now)
		wantEs := EvaluateLeg(ref, all)
		custody.SortReadings(all)
		var wantHp custody.HoldProjection
		if ref.Leg.ReceivedAt == nil {
			wantHp = ProjectHold(ref, all, now, hold)
		}
		if !reflect.DeepEqual(es, wantEs) {
			return run, fmt.Errorf("check %d (now %s, %d stored): incremental\n%s\nfull\n%s", run.checks,
				now.Format(time.RFC3339), stored, describe(es), describe(wantEs))
		}
		if !reflect.DeepEqual(hp, wantHp) {
			return run, fmt.Errorf("check %d: hold projection incremental %+v, full %+v", run.checks, hp, wantHp)
		}
		run.excursions += len(es)
		if hp.OK {
			run.holds++
		}
	}
	return run, nil
}

// TestLegStateMatchesFullJudgement compares incremental and full judgement
// on many seeded random series with late, out-of-order and future-dated
// readings, and checks the series were varied enough to mean something:
// excursions and hold projections were found, and both late readings
// (rebuilds) and readings carried forward occurred.
func TestLegStateMatchesFullJudgement(t *testing.T) {
	var total incrementalRun
	for seed := range uint64(300) {
		run, err := compareIncremental(seed, 50+int(seed%7)*60, int(seed%4)*3)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		total.checks += run.checks
		total.resets += run.resets
		total.excursions += run.excursions
		total.holds += run.holds
	}
	t.Logf("%+v", total)
	if total.resets == 0 || total.resets*2 > total.checks || total.excursions == 0 || total.holds == 0 {
		t.Fatalf("random series too uniform to test anything: %+v", total)
	}
}

// FuzzLegState asserts that incremental judgement equals full judgement
// for any seed, length and lateness.
func FuzzLegState(f *testing.F) {
	f.Add(uint64(1), uint16(100), uint8(3))
	f.Add(uint64(7), uint16(400), uint8(0))
	f.Add(uint64(42), uint16(20), uint8(20))
	f.Fuzz(func(t *testing.T, seed uint64, n uint16, late uint8) {
		if _, err := compareIncremental(seed, int(n%600), int(late%32)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestLegStateCarriesForward checks that readings arriving in order are
// judged without a rebuild: the state takes them and the open excursion's
// ID stays while it grows.
func TestLegStateCarriesForward(t *testing.T) {
	p := custody.BuiltinProfiles()["refrigerated"]
	l := custody.LegRef{COI: "COI-1", Profile: p, Leg: custody.Leg{N: 1, Shipper: shipper, ShippedAt: t0}, From: t0}
	rs := temps(0, cat(fill(10, 5), fill(60, 12))...)
	x := NewLegState(l, HoldConfig{})
	var ids []string
	for i := 0; i < len(rs); i += 10 {
		if !x.Add(rs[i : i+10]) {
			t.Fatalf("readings %d.. in order refused", i)
		}
		es, _ := x.Judge(l, rs[i+9].DeviceTime, HoldConfig{})
		for _, e := range es {
			ids = append(ids, e.ID)
		}
	}
	if len(ids) < 5 || len(slices.Compact(slices.Clone(ids))) != 1 {
		t.Fatalf("excursion IDs over the checks: %v, want one ID throughout", ids)
	}
	if x.Add(rs[5:6]) {
		t.Fatal("a reading before the last judged was taken, want refused")
	}
}
