package report_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/labels/report"
)

// chainBuilder builds a chain's records by hand, linked and hashed as a
// store would, so a report can be rendered from fixed bytes (a service
// salts the patient commitment randomly, so its records differ per run).
type chainBuilder struct {
	t      testing.TB
	coi    custody.COI
	recs   []custody.Record
	seq    uint64
	prev   custody.Hash
	sites  custody.Sites
	people map[string]custody.User
}

func newChainBuilder(t testing.TB) *chainBuilder {
	return &chainBuilder{t: t, coi: "CHA999926000042", seq: 100,
		sites: custody.Sites{Collection: "St Elsewhere Apheresis", Manufacturing: "CellWorks NJ", Treatment: "St Elsewhere BMT"},
		people: map[string]custody.User{
			"coord":    {ID: "coord", Name: "Cora Ordinator", Role: custody.RoleCoordinator},
			"nurse1":   {ID: "nurse1", Name: "Ada Nightingale", Role: custody.RoleNurse},
			"nurse2":   {ID: "nurse2", Name: "Bea Seacole", Role: custody.RoleNurse},
			"courier1": {ID: "courier1", Name: "Cy Courier", Role: custody.RoleCourier},
			"mfg1":     {ID: "mfg1", Name: "Dan Fabricant", Role: custody.RoleManufacturing},
			"qa1":      {ID: "qa1", Name: "Eve Assurance", Role: custody.RoleQA},
		}}
}

type signer struct {
	id string
	m  custody.Meaning
}

func (b *chainBuilder) add(step custody.Step, at time.Time, site string, data any, sigs ...signer) custody.Record {
	b.t.Helper()
	return b.addAs("test", step, at, site, data, sigs...)
}

// addAs is add with the record's submitted_by set to by.
func (b *chainBuilder) addAs(by string, step custody.Step, at time.Time, site string, data any, sigs ...signer) custody.Record {
	b.t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		b.t.Fatal(err)
	}
	canon, err := custody.Canonicalize(raw)
	if err != nil {
		b.t.Fatal(err)
	}
	var ss []custody.Signature
	for _, s := range sigs {
		if s.id == "system" {
			ss = append(ss, custody.Signature{User: "system", Name: "coid", Role: custody.RoleSystem, Meaning: custody.MeaningDetected,
				Time: custody.FormatTime(at), Method: "system"})
			continue
		}
		u := b.people[s.id]
		ss = append(ss, custody.Signature{User: u.ID, Name: u.Name, Role: u.Role, Meaning: s.m, Time: custody.FormatTime(at), Method: "password"})
	}
	b.seq += 3 // other chains share the ledger
	r := custody.Record{V: custody.EncodingVersion, Seq: b.seq, Prev: custody.Hash{byte(b.seq)}, Chain: b.coi,
		ChainSeq: uint64(len(b.recs) + 1), Step: step, Time: at.UTC(), Site: site, SubmittedBy: by, Data: canon, Signatures: ss}
	if len(b.recs) > 0 {
		r.ChainPrev = b.recs[len(b.recs)-1].Hash
	}
	r.Hash = r.ComputeHash()
	b.recs = append(b.recs, r)
	return r
}

func (b *chainBuilder) chain() *custody.Chain {
	b.t.Helper()
	c, err := custody.Fold(custody.DefaultJourney(), b.recs)
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}

func day(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, time.UTC) }

func f64(v float64) *float64 { return &v }
func bl(v bool) *bool        { return &v }

// legReadings makes a leg's readings every step from a to b around base,
// with a temperature bump in [bumpA, bumpB) to bump, a tilt in [tiltA,
// tiltB), the lid open in [lidA, lidB), and no readings in [gapA, gapB).
type legPlan struct {
	shipper      string
	a, b         time.Time
	step         time.Duration
	base, wave   float64
	bumpA, bumpB time.Time
	bump         float64
	tiltA, tiltB time.Time
	lidA, lidB   time.Time
	gapA, gapB   time.Time
}

func in(t, a, b time.Time) bool { return !a.IsZero() && !t.Before(a) && t.Before(b) }

func (p legPlan) readings() []custody.Reading {
	var out []custody.Reading
	n := uint64(0)
	for t := p.a; !t.After(p.b); t = t.Add(p.step) {
		n++
		if in(t, p.gapA, p.gapB) {
			continue
		}
		x := float64(t.Sub(p.a)) / float64(time.Hour)
		v := p.base + p.wave*math.Sin(x/1.7)
		if in(t, p.bumpA, p.bumpB) {
			v = p.bump
		}
		v = math.Round(v*10) / 10
		tilt := 3.0
		if in(t, p.tiltA, p.tiltB) {
			tilt = 48
		}
		out = append(out, custody.Reading{Shipper: p.shipper, Seq: n, HasSeq: true, DeviceTime: t, ReceivedTime: t.Add(time.Second),
			TempC: f64(v), TiltDeg: f64(tilt), LidOpen: bl(in(t, p.lidA, p.lidB)), BatteryPct: f64(90)})
	}
	return out
}

// sealOf is the "telemetry" member a receive record carries.
func sealOf(leg int, shipper string, from, to time.Time, rs []custody.Reading, profile string) map[string]any {
	p := custody.BuiltinProfiles()[profile]
	return map[string]any{"version": "coid-leg-seal-v1", "leg": leg, "shipper": shipper, "from": from, "to": to,
		"watermark": 7, "seal": custody.SealReadings(rs, p)}
}

// fullJourney is a complete chain with two legs, three excursions (one
// with an unknown extra field), their dispositions, a note and a
// correction, and the readings of both legs.
func fullJourney(t testing.TB) (*custody.Chain, []report.Telemetry) {
	b := newChainBuilder(t)
	s := b.sites
	b.add(custody.StepEnroll, day(20, 8, 0), s.Collection, map[string]any{"product": "Autologous anti-CD19 CAR-T cells",
		"sites": s, "facility": "A9999", "patient_commitment": "5f1e0c4a9d3b2e7f60718293a4b5c6d7e8f90123456789abcdef0123456789ab"},
		signer{"coord", custody.MeaningAuthored})
	b.add(custody.StepCollect, day(20, 10, 30), s.Collection, map[string]any{"din": "A999926123456", "volume_ml": 212.5, "bags": 2,
		"started_at": "2026-11-20T08:40:00Z", "ended_at": "2026-11-20T10:10:00Z"},
		signer{"nurse1", custody.MeaningPerformed}, signer{"nurse2", custody.MeaningVerified})
	leg1 := legPlan{shipper: "SHP-0042", a: day(20, 11, 0), b: day(21, 9, 0), step: 2 * time.Minute, base: 5, wave: 1.2,
		bumpA: day(21, 2, 0), bumpB: day(21, 2, 40), bump: 9.6, lidA: day(21, 3, 10), lidB: day(21, 3, 14),
		gapA: day(21, 5, 0), gapB: day(21, 5, 50)}
	b.add(custody.StepShip, leg1.a, s.Collection, map[string]any{"shipper": leg1.shipper, "profile": "refrigerated"},
		signer{"nurse1", custody.MeaningHandedOver}, signer{"courier1", custody.MeaningReceived})
	r1 := leg1.readings()
	e1 := b.add(custody.StepExcursion, day(21, 2, 45), s.Manufacturing, map[string]any{"excursion_id": "temperature/2026-11-21T02:00:00Z",
		"kind": "temperature", "leg": 1, "shipper": leg1.shipper, "profile": "refrigerated", "start": day(21, 2, 0), "end": day(21, 2, 40),
		"worst": 9.6, "limit": 8, "duration_ns": int64(40 * time.Minute), "duration": "40m0s", "breach_ns": int64(40 * time.Minute)},
		signer{"system", ""})
	e2 := b.add(custody.StepExcursion, day(21, 5, 51), s.Manufacturing, map[string]any{"excursion_id": "silence/2026-11-21T04:58:00Z",
		"kind": "silence", "leg": 1, "shipper": leg1.shipper, "profile": "refrigerated", "start": day(21, 4, 58), "end": day(21, 5, 50),
		"duration_ns": int64(52 * time.Minute), "duration": "52m0s", "breach_ns": int64(52 * time.Minute), "gateway": "gw-7"},
		signer{"system", ""})
	b.add(custody.StepReceive, leg1.b, s.Manufacturing, map[string]any{"seal_intact": true,
		"telemetry": sealOf(1, leg1.shipper, leg1.a, leg1.b, r1, "refrigerated")}, signer{"mfg1", custody.MeaningReceived})
	b.add(custody.StepManufacture, day(28, 15, 0), s.Manufacturing, map[string]any{"final_bags": 2}, signer{"mfg1", custody.MeaningPerformed})
	b.add(custody.StepDisposition, day(29, 9, 0), "", map[string]any{"excursion": e1.Seq, "decision": "accept",
		"reason": "40 minutes at up to 9.6 C is within the stability data for the apheresis product"}, signer{"qa1", custody.MeaningApproved})
	b.add(custody.StepDisposition, day(29, 9, 5), "", map[string]any{"excursion": e2.Seq, "decision": "accept",
		"reason": "gateway outage; readings either side in range"}, signer{"qa1", custody.MeaningApproved})
	b.add(custody.StepRelease, day(30, 10, 0), s.Manufacturing, map[string]any{}, signer{"qa1", custody.MeaningApproved})
	leg2 := legPlan{shipper: "SHP-0099", a: day(30, 14, 0), b: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), step: time.Minute,
		base: -186, wave: 1.5, tiltA: time.Date(2026, 12, 1, 1, 0, 0, 0, time.UTC), tiltB: time.Date(2026, 12, 1, 1, 20, 0, 0, time.UTC)}
	b.add(custody.StepShip, leg2.a, s.Manufacturing, map[string]any{"shipper": leg2.shipper, "profile": "cryogenic"},
		signer{"mfg1", custody.MeaningHandedOver}, signer{"courier1", custody.MeaningReceived})
	r2 := leg2.readings()
	e3 := b.add(custody.StepExcursion, time.Date(2026, 12, 1, 1, 21, 0, 0, time.UTC), s.Treatment, map[string]any{
		"excursion_id": "tilt/2026-12-01T01:00:00Z", "kind": "tilt", "leg": 2, "shipper": leg2.shipper, "profile": "cryogenic",
		"start": leg2.tiltA, "end": leg2.tiltB, "worst": 48, "limit": 30, "duration_ns": int64(20 * time.Minute), "duration": "20m0s",
		"breach_ns": int64(20 * time.Minute)}, signer{"system", ""})
	b.add(custody.StepReceive, leg2.b, s.Treatment, map[string]any{"seal_intact": true,
		"telemetry": sealOf(2, leg2.shipper, leg2.a, leg2.b, r2, "cryogenic")}, signer{"nurse1", custody.MeaningReceived})
	b.add(custody.StepDisposition, time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC), "", map[string]any{"excursion": e3.Seq,
		"decision": "accept", "reason": "20 minutes on its side; LN2 level 68% at receipt, temperature never above -180 C"},
		signer{"qa1", custody.MeaningApproved})
	b.add(custody.StepNote, time.Date(2026, 12, 1, 11, 0, 0, 0, time.UTC), "", map[string]any{"text": "Patient premedicated per protocol."},
		signer{"nurse2", custody.MeaningAuthored})
	b.add(custody.StepBedsideVerify, time.Date(2026, 12, 1, 13, 0, 0, 0, time.UTC), s.Treatment, map[string]any{
		"bag": "CHA999926000042-FP-01", "bag_code": "C1:CHA999926000042" + string(custody.COI("CHA999926000042").K()) + ":FP-01",
		"wristband_match": true}, signer{"nurse1", custody.MeaningVerified}, signer{"nurse2", custody.MeaningVerified})
	b.add(custody.StepInfuse, time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC), s.Treatment, map[string]any{}, signer{"nurse2", custody.MeaningPerformed})
	b.add(custody.StepCorrection, time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC), "", map[string]any{"corrects": b.recs[1].Seq,
		"reason": "collected volume was 215.0 mL, transcription error", "volume_ml": 215.0}, signer{"nurse1", custody.MeaningAuthored})
	b.add(custody.StepReview, time.Date(2026, 12, 2, 9, 30, 0, 0, time.UTC), "", map[string]any{
		"statement": "Custody record reviewed: chain of identity intact; the tilt excursion on leg 2 was dispositioned."},
		signer{"qa1", custody.MeaningReviewed})
	return b.chain(), []report.Telemetry{{Available: true, Readings: r1}, {Available: true, Readings: r2}}
}

// input wraps a chain as a report input with fixed verification figures.
func input(c *custody.Chain, tele []report.Telemetry, zone *time.Location) *report.Input {
	return &report.Input{
		Chain: c, Patient: report.Patient{Initials: "JQD", BirthYear: "1970", OnFile: true}, Telemetry: tele,
		ChainCheck:  custody.Report{OK: true, Records: uint64(len(c.Records)), Head: c.Head, Chain: c.COI},
		LedgerCheck: custody.Report{OK: true, Records: 1234, Head: "9d4c5e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d"},
		GeneratedAt: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC),
		GeneratedBy: custody.User{ID: "qa1", Name: "Eve Assurance", Role: custody.RoleQA},
		Zone:        zone,
	}
}
