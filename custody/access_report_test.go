package custody_test

import (
	"testing"

	"github.com/coid-project/coid/custody"
)

// TestChainAccessRequest: the request a chain was enrolled from comes
// with its whole history and names the chain back; a chain enrolled
// without one has none.
func TestChainAccessRequest(t *testing.T) {
	e, coi := oosEnv(t)
	c, err := e.svc.Chain(e.ctx, coi)
	if err != nil {
		t.Fatal(err)
	}
	id := custody.RequestOf(c)
	r, err := e.svc.ChainAccessRequest(e.ctx, c)
	if err != nil || r == nil || id == "" || r.ID != id || r.COI != coi || r.State != custody.AccessEnrolled {
		t.Fatalf("request of %s (%s): %+v, %v", coi, id, r, err)
	}
	var steps []custody.Step
	for _, ev := range r.Events {
		steps = append(steps, ev.Step)
	}
	want := []custody.Step{custody.StepAccessSubmit, custody.StepAccessDecide, custody.StepLOAIssued, custody.StepINDAcknowledged,
		custody.StepIRBWaived, custody.StepAccessEnroll}
	if len(steps) != len(want) {
		t.Fatalf("history %v, want %v", steps, want)
	}
	for i := range want {
		if steps[i] != want[i] || len(r.Events[i].Signatures) == 0 {
			t.Fatalf("history %v, want %v (each signed)", steps, want)
		}
	}
	plain, err := e.svc.Chain(e.ctx, e.enrollNet())
	if err != nil {
		t.Fatal(err)
	}
	if r, err := e.svc.ChainAccessRequest(e.ctx, plain); err != nil || r != nil || custody.RequestOf(plain) != "" {
		t.Fatalf("chain enrolled without a request: %+v, %v", r, err)
	}
}
