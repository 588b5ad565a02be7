package custody_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

func TestParseDataTypesEachStep(t *testing.T) {
	for _, tc := range []struct {
		step custody.Step
		data string
		want custody.StepData
	}{
		{custody.StepCollect, `{"din":"A999926123456","volume_ml":212.5,"bags":2,"started_at":"a","ended_at":"b"}`,
			custody.CollectData{DIN: "A999926123456", VolumeML: ptr(212.5), Bags: 2, StartedAt: "a", EndedAt: "b"}},
		{custody.StepShip, `{"shipper":"SHP-1","profile":"cryogenic"}`, custody.ShipData{Shipper: "SHP-1", Profile: "cryogenic"}},
		{custody.StepReceive, `{"seal_intact":false}`, custody.ReceiveData{SealIntact: ptr(false)}},
		{custody.StepManufacture, `{"final_bags":3}`, custody.ManufactureData{FinalBags: 3}},
		{custody.StepRelease, `{}`, custody.ReleaseData{}},
		{custody.StepBedsideVerify, `{"bag_code":"x","wristband_code":"y"}`, custody.BedsideData{BagCode: "x", WristbandCode: "y"}},
		{custody.StepInfuse, `{"bag":"B"}`, custody.InfuseData{Bag: "B"}},
		{custody.StepDisposition, `{"excursion":4,"decision":"accept","reason":"r"}`, custody.DispositionData{Excursion: 4, Decision: "accept", Reason: "r"}},
		{custody.StepCorrection, `{"corrects":2,"reason":"r","volume_ml":1}`, custody.CorrectionData{Corrects: 2, Reason: "r"}},
		{custody.StepCancel, `{"reason":"r"}`, custody.CancelData{Reason: "r"}},
		{custody.StepNote, `{"text":"t"}`, custody.NoteData{Text: "t"}},
		{custody.StepNote, `null`, custody.NoteData{}},
		{"site-audit", `{}`, custody.OtherData{Of: "site-audit", Members: map[string]json.RawMessage{}}},
	} {
		got, err := custody.ParseData(tc.step, json.RawMessage(tc.data))
		if err != nil {
			t.Errorf("%s %s: %v", tc.step, tc.data, err)
			continue
		}
		if got.Step() != tc.step {
			t.Errorf("%s: parsed data names step %s", tc.step, got.Step())
		}
		if g, w := jsonOf(t, got), jsonOf(t, tc.want); g != w {
			t.Errorf("%s %s: parsed %s, want %s", tc.step, tc.data, g, w)
		}
	}
}

func TestParseDataRefusesAsTheServiceDoes(t *testing.T) {
	for _, tc := range []struct {
		step custody.Step
		data string
		want string
	}{
		{custody.StepShip, `{"shipper":"SHP-1","profile":"cryogenic","extra":1}`, "ship: data.extra is not a member of ship data (one of shipper, profile, planned_arrival)"},
		{custody.StepCollect, `{"bags":"two"}`, "collect: data.bags must be a int"},
		{custody.StepNote, `[1]`, "note: data must be a JSON object"},
		{custody.StepNote, `{"text":` + strings.Repeat(" ", custody.MaxDataSize) + `"t"}`, "note: data larger than"},
		{"site-audit", `{"finding":"none"}`, "site-audit: data.finding is not a member of site-audit data, which holds none"},
	} {
		_, err := custody.ParseData(tc.step, json.RawMessage(tc.data))
		if !errors.Is(err, custody.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %.40s: %v, want ErrInvalid saying %q", tc.step, tc.data, err, tc.want)
		}
	}
	// expires_at was never checked: its type is not refused now either.
	if _, err := custody.ParseData(custody.StepManufacture, json.RawMessage(`{"final_bags":1,"expires_at":5}`)); err != nil {
		t.Errorf("manufacture with a numeric expires_at: %v", err)
	}
}

func TestRecordParsedIsTolerant(t *testing.T) {
	r := custody.Record{Seq: 7, Step: custody.StepExcursion, Time: time.Unix(0, 0).UTC(),
		Data: json.RawMessage(`{"end":"not a time","excursion_id":"x1","kind":"tilt","worst":"high"}`)}
	d, err := r.Parsed()
	x, ok := d.(custody.ExcursionData)
	if err != nil || !ok || x.ID != "x1" || x.Kind != custody.ExcursionTilt || x.End != nil || x.Worst != nil {
		t.Fatalf("excursion with malformed members: %#v %v", d, err)
	}
	r = custody.Record{Seq: 8, Step: custody.StepCollect, Data: json.RawMessage(`{"bags":"two","din":"A999926123456"}`)}
	d, err = r.Parsed()
	if c, _ := d.(custody.CollectData); !errors.Is(err, custody.ErrChainBroken) || c.DIN != "A999926123456" {
		t.Fatalf("collect with a malformed member: %#v %v, want what reads and ErrChainBroken", d, err)
	}
	r = custody.Record{Seq: 9, Step: custody.StepNote, Data: json.RawMessage(`[]`)}
	if _, err := r.Members(); err == nil {
		t.Fatal("members of data that is not an object: no error")
	}
}

func TestChainViewScansOnce(t *testing.T) {
	recs := chainRecords(t, 14)
	c, err := custody.Fold(custody.DefaultJourney(), recs)
	if err != nil {
		t.Fatal(err)
	}
	v := custody.ViewChain(c)
	if r := v.Record(5); r == nil || r.Step != custody.StepReceive {
		t.Fatalf("record 5: %+v", r)
	}
	if cs := v.Corrections(2); len(cs) != 1 || cs[0].Seq != 10 {
		t.Errorf("corrections of record 2: %v", cs)
	}
	if d := v.Disposition(4); d == nil || d.Seq != 7 {
		t.Errorf("disposition of excursion 4: %v", d)
	}
	if s := v.Seal(1); s == nil || s.Seal.Count != 100 || v.Seal(2) != nil {
		t.Errorf("seals: leg 1 %+v, leg 2 %+v", s, v.Seal(2))
	}
	exc := v.LegExcursions(1)
	if len(exc) != 1 || exc[0].Record.Seq != 4 || exc[0].Leg != 1 || exc[0].Figures == nil || exc[0].Figures.Seq != 8 ||
		*exc[0].Figures.Worst != 9.8 || !exc[0].Readable {
		t.Fatalf("leg 1 excursions: %+v", exc)
	}
	if f, ok := v.Figures(4); !ok || f.Seq != 8 {
		t.Errorf("figures of excursion 4: %+v %v", f, ok)
	}
	if l := v.LegOf(3); l.N != 1 || v.LegOf(5).N != 1 || v.LegOf(6).N != 0 {
		t.Errorf("legs of records 3, 5, 6: %d %d %d", l.N, v.LegOf(5).N, v.LegOf(6).N)
	}
	if !slices.ContainsFunc(v.Excursions(), func(e custody.ExcursionView) bool { return e.Record.Seq == 4 }) {
		t.Error("excursion 4 not listed")
	}
}

func ptr[T any](v T) *T { return &v }

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestJourneyDataMembers(t *testing.T) {
	j := custody.DefaultJourney()
	j.Exceptions = append(j.Exceptions, custody.Exception{Step: "site-audit", Data: []string{"room", "finding"}})
	j.Transitions[2].Data = []string{"ignored"} // ship: custody's own schema stands
	if got := j.DataMembers("site-audit"); !slices.Equal(got, []string{"finding", "room"}) {
		t.Errorf("site-audit members %v", got)
	}
	if got := j.DataMembers(custody.StepShip); !slices.Equal(got, []string{"shipper", "profile", "planned_arrival"}) {
		t.Errorf("ship members %v", got)
	}
	if got := j.DataMembers("unlisted"); got != nil {
		t.Errorf("members of a step no row names: %v", got)
	}
}
