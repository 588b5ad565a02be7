package api_test

import (
	"net/http"
	"testing"
)

// TestAccessQueueDeadlines: the access team's queue lists the IRB report
// an emergency authorisation leaves owed, with its request.
func TestAccessQueueDeadlines(t *testing.T) {
	e := accessAPIEnv(t, t.TempDir())
	r := e.do(t, http.MethodPost, "/api/v1/access/requests", physician, accessBody("emergency"))
	if r.Code != http.StatusCreated {
		t.Fatalf("submit: %s", r)
	}
	id := r.object(t)["id"].(string)
	deadlines := func() []any {
		t.Helper()
		r := e.do(t, http.MethodGet, "/api/v1/access/queue", qa, nil)
		if r.Code != http.StatusOK {
			t.Fatalf("queue: %s", r)
		}
		d, ok := r.object(t)["deadlines"].([]any)
		if !ok {
			t.Fatalf("queue without a deadlines list: %s", r)
		}
		return d
	}
	for _, s := range []struct {
		user, step string
		data       map[string]any
	}{
		{qa, "decide", map[string]any{"text": "Emergency, meets criteria", "approve": true}}, {qa, "loa-issued", map[string]any{}},
		{physician, "emergency-authorised", map[string]any{"reference": "FDA phone 42"}},
	} {
		if n := len(deadlines()); n != 0 {
			t.Fatalf("before %s: %d deadlines", s.step, n)
		}
		if r := e.do(t, http.MethodPost, "/api/v1/access/requests/"+id+"/records", s.user, map[string]any{"step": s.step, "data": s.data}); r.Code != http.StatusCreated {
			t.Fatalf("%s: %s", s.step, r)
		}
	}
	d := deadlines()
	if len(d) != 1 {
		t.Fatalf("deadlines %v, want the IRB report", d)
	}
	got := d[0].(map[string]any)
	if got["request"] != id || got["step"] != "irb-reported" || got["status"] != "due" || got["urgency"] != "emergency" || got["due"] == "" {
		t.Fatalf("deadline %v", got)
	}
}
