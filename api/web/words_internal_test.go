package web

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

func TestHumanDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "under 1 s"},
		{400 * time.Millisecond, "under 1 s"},
		{4400441 * time.Microsecond, "4 s"},
		{59 * time.Second, "59 s"},
		{60 * time.Second, "1 min"},
		{86*time.Second + 400*time.Millisecond, "1 min 26 s"},
		{20 * time.Minute, "20 min"},
		{time.Hour, "1 h"},
		{2*time.Hour + 5*time.Minute + 30*time.Second, "2 h 5 min"},
		{26 * time.Hour, "1 d 2 h"},
		{-5 * time.Second, "5 s"},
	} {
		if got := humanDuration(tc.d); got != tc.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// A timeline entry says its record in sentences from the typed step data:
// no member names, durations as people read them, one time format.
func TestTimelineEntrySentences(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	end := at.Add(86*time.Second + 400*time.Millisecond)
	worst, limit := -120.0, -150.0
	exc := custody.ExcursionData{ID: "temperature/2026-11-22T10:00:00Z", Kind: custody.ExcursionTemperature, Leg: 2, Shipper: "SHP-0002",
		Profile: "cryogenic", Start: at, End: &end, Worst: &worst, Limit: &limit,
		DurationNS: int64(end.Sub(at)), Duration: end.Sub(at).String(), BreachNS: int64(end.Sub(at))}
	cases := []struct {
		step        custody.Step
		data        any
		want, never []string
	}{
		{custody.StepExcursion, exc,
			[]string{"Temperature excursion on leg 2 (shipper SHP-0002, cryogenic profile) from 2026-11-22 10:00 UTC to 2026-11-22 10:01 UTC, for 1 min 26 s, worst -120 °C (limit -150 °C)"},
			[]string{"excursion_id", "worst:", "breach_ns", "duration_ns", "1m26.4s", "Worst", "limit:"}},
		{custody.StepCorrection, custody.ExcursionEndData{Corrects: 7, Reason: "excursion ended", ID: exc.ID, End: &end, Worst: &worst,
			DurationNS: int64(4400441 * time.Microsecond), Duration: "4.400441s", BreachNS: int64(4400441 * time.Microsecond)},
			[]string{"Corrects record 7", "Excursion figures now to 2026-11-22 10:01 UTC, for 4 s, worst -120 °C", "Reason: excursion ended"},
			[]string{"4.400441s", "excursion_id", "breach_ns"}},
		{custody.StepMismatch, custody.MismatchData{Reasons: []string{"the wristband does not belong to this chain's patient"},
			BagCode: "not-a-code", WristbandDigest: "c2VjcmV0", AttemptedBy: []string{"nurse.a", "nurse.b"}},
			[]string{"The wristband does not belong to this chain's patient", "Bag scanned: a label that is not a coid bag label", "Attempted by nurse.a and nurse.b"},
			[]string{"c2VjcmV0", "wristband_digest", "attempted_by", "not-a-code"}},
		{custody.StepExcursion, custody.ExcursionData{ID: "tilt/2026-11-22T10:00:00Z", Kind: custody.ExcursionTilt, Leg: 1, Shipper: "SHP-0001",
			Profile: "cryogenic", Start: at, Worst: ptr(48.0), Limit: ptr(30.0), DurationNS: int64(20 * time.Minute), BreachNS: int64(20 * time.Minute)},
			[]string{"Shipper tilted on leg 1 (shipper SHP-0001, cryogenic profile) from 2026-11-22 10:00 UTC, still going on, for 20 min, worst 48° from upright (limit 30° from upright)"},
			[]string{"°C"}},
		{custody.StepDisposition, custody.DispositionData{Excursion: 5, Decision: custody.DecisionAccept, Reason: "within stability data"},
			[]string{"Record 5: accepted, the product may continue", "Reason: within stability data"}, []string{"decision:"}},
		{custody.StepManufacture, custody.ManufactureData{FinalBags: 2, ExpiresAt: ptr("2027-01-31T23:00:00Z")},
			[]string{"2 final-product bag(s)", "Expires 2027-01-31 23:00 UTC"}, []string{"final_bags", "expires_at"}},
	}
	for _, tc := range cases {
		raw, err := json.Marshal(tc.data)
		if err != nil {
			t.Fatal(err)
		}
		body, err := custody.Canonicalize(raw)
		if err != nil {
			t.Fatal(err)
		}
		rv := timelineEntry(custody.Record{Seq: 9, Step: tc.step, Time: at, Data: body, SubmittedBy: custody.SystemUser}, nil)
		all := strings.Join(rv.Summary, " | ")
		for _, w := range tc.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s: timeline %q lacks %q", tc.step, all, w)
			}
		}
		for _, n := range tc.never {
			if strings.Contains(all, n) {
				t.Errorf("%s: timeline %q shows %q", tc.step, all, n)
			}
		}
		if rv.Name == string(tc.step) && tc.step != custody.StepNote {
			t.Errorf("%s: step named by its raw name %q", tc.step, rv.Name)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestSignatureTimeOneFormat(t *testing.T) {
	if got := signatureTime("2026-11-22T10:00:05.123Z"); got != "2026-11-22 10:00 UTC" {
		t.Errorf("signature time %q", got)
	}
	if got := screenTime(time.Date(2026, 11, 22, 11, 0, 0, 0, time.FixedZone("CET", 3600))); got != "2026-11-22 10:00 UTC" {
		t.Errorf("screen time %q", got)
	}
}
