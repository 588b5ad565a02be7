package custody_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/coid-project/coid/custody"
)

// FuzzStepRequest sends arbitrary step requests to one chain. Property:
// a refused request writes nothing (a refused bedside check writes exactly
// one mismatch record), an accepted one writes exactly one record, every
// error is one of the documented sentinels, and the ledger always
// verifies.
func FuzzStepRequest(f *testing.F) {
	for _, js := range journey("CHA999926000002") {
		b, _ := json.Marshal(custody.StepRequest{Step: js.step, Data: mustJSON(js.data), Signatures: js.sigs})
		f.Add(b)
	}
	f.Add([]byte(`{"step":"note","data":{"text":"x"},"signatures":[{"user":"nurse1","password":"pw-nurse1-secret","meaning":"authored"}]}`))
	f.Add([]byte(`{"step":"collect","data":null}`))
	f.Add([]byte(`{"step":"bedside-verify","data":{"bag_code":"x","wristband_code":"y"},"signatures":[]}`))
	e := newEnv(f)
	e.enroll()
	coi := e.enroll() // CHA999926000002, matching the seeds
	f.Fuzz(func(t *testing.T, body []byte) {
		var req custody.StepRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		head := func() uint64 {
			seq, _, err := e.store.Head(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			return seq
		}
		before := head()
		_, err := e.svc.Record(e.ctx, e.users["nurse1"], coi, req)
		after := head()
		switch {
		case err == nil && after != before+1:
			t.Fatalf("accepted request wrote %d records", after-before)
		case err != nil && req.Step == custody.StepBedsideVerify && errors.Is(err, custody.ErrConflict) && after == before+1:
		case err != nil && after != before:
			t.Fatalf("refused request (%v) wrote %d records", err, after-before)
		}
		if err != nil && !(errors.Is(err, custody.ErrInvalid) || errors.Is(err, custody.ErrConflict) ||
			errors.Is(err, custody.ErrForbidden) || errors.Is(err, custody.ErrUnauthenticated)) {
			t.Fatalf("undocumented error: %v", err)
		}
		if rep, err := e.svc.VerifyChain(e.ctx, coi); err != nil || !rep.OK {
			t.Fatalf("chain does not verify: %+v %v", rep, err)
		}
	})
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
