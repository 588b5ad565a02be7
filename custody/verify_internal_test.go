package custody

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

func TestReadStep(t *testing.T) {
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	rec := Record{V: 1, Seq: 9, Chain: "CHA999926000001", ChainSeq: 2, Step: StepNote, Time: now, Site: `Site "step":"infuse"`,
		SubmittedBy: `odd\"user"`, Data: json.RawMessage(`{"step":"infuse","text":"\\"}`),
		Signatures: []Signature{{User: "n1", Name: `"step":"infuse"\`, Role: RoleNurse, Meaning: MeaningAuthored, Time: FormatTime(now), Method: "password"}}}
	canon := rec.Canonical(nil)
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"canonical, step-like text before and escapes after", string(canon), "note"},
		// Only the end is read: the scan from the start would find no object.
		{"canonical tail, read backwards", `...,"step":"acknowledge","submitted_by":"a\\\"","time":"t","v":10}`, "acknowledge"},
		{"members in another order", `{"step":"infuse","chain":"x","v":1}`, "infuse"},
		{"duplicate step: the last, as encoding/json", `{"step":"note","chain":"x","step":"cancel"}`, "cancel"},
		{"no step", `{"chain":"x","submitted_by":"a","time":"t","v":1}`, ""},
		{"step not a string", `{"step":{"a":1},"submitted_by":"a","time":"t","v":1}`, ""},
		{"not an object", `[1]`, ""},
	}
	for _, tt := range tests {
		if got := string(readStep([]byte(tt.in))); got != tt.want {
			t.Errorf("%s: readStep = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestJourneyTableFollowsFold replays random step sequences, mostly ones
// the journey allows, through Fold and through the compiled table: both
// must refuse the same sequences and reach the same state.
func TestJourneyTableFollowsFold(t *testing.T) {
	j := DefaultJourney()
	jt := newJourneyTable(j)
	var all []Step
	for _, tr := range j.Transitions {
		all = append(all, tr.Step)
	}
	for _, e := range j.Exceptions {
		all = append(all, e.Step)
	}
	all = append(all, "no-such-step")
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 20000 {
		var recs []Record
		var state State
		var st uint8
		for k := 0; k < 1+rng.IntN(16); k++ {
			step := all[rng.IntN(len(all))]
			if allowed := j.Allowed(state); state == "" {
				step = StepEnroll
				if rng.IntN(20) == 0 {
					step = all[rng.IntN(len(all))]
				}
			} else if len(allowed) > 0 && rng.IntN(4) > 0 {
				step = allowed[rng.IntN(len(allowed))]
			}
			recs = append(recs, Record{Seq: uint64(k + 1), Chain: "CHA999926000001", ChainSeq: uint64(k + 1), Step: step, Data: json.RawMessage(`{}`)})
			st = jt.next(st, jt.stepIndex([]byte(step)))
			c, err := Fold(j, recs)
			if (err != nil) != (st == brokenState) {
				t.Fatalf("case %d %v: Fold %v, table %d", n, steps(recs), err, st)
			}
			if err != nil {
				break
			}
			if state = c.State; jt.stateName(st) != state {
				t.Fatalf("case %d %v: Fold reaches %q, the table %q", n, steps(recs), state, jt.stateName(st))
			}
		}
	}
}

func steps(recs []Record) []Step {
	var out []Step
	for _, r := range recs {
		out = append(out, r.Step)
	}
	return out
}
