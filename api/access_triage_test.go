package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestAccessQueueAPI: the access team reads the queue (emergency first,
// paged by cursor) and the figures as JSON and CSV; a physician reads
// neither.
func TestAccessQueueAPI(t *testing.T) {
	e := accessAPIEnv(t, t.TempDir())
	var ids []string
	for _, u := range []string{"standard", "emergency"} {
		r := e.do(t, http.MethodPost, "/api/v1/access/requests", physician, accessBody(u))
		if r.Code != http.StatusCreated {
			t.Fatalf("submit: %s", r)
		}
		ids = append(ids, r.object(t)["id"].(string))
	}
	r := e.do(t, http.MethodGet, "/api/v1/access/queue?limit=1", qa, nil)
	if r.Code != http.StatusOK {
		t.Fatalf("queue: %s", r)
	}
	q := r.object(t)
	items := q["items"].([]any)
	first := items[0].(map[string]any)["request"].(map[string]any)["id"]
	if len(items) != 1 || first != ids[1] || q["open"] != float64(2) || q["next"] == "" {
		t.Fatalf("first page: %s", r)
	}
	r = e.do(t, http.MethodGet, "/api/v1/access/queue?limit=1&after="+q["next"].(string), qa, nil)
	items = r.object(t)["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["request"].(map[string]any)["id"] != ids[0] {
		t.Fatalf("second page: %s", r)
	}
	if r := e.do(t, http.MethodGet, "/api/v1/access/queue?limit=501", qa, nil); r.Code != http.StatusBadRequest {
		t.Errorf("limit 501: %s", r)
	}
	assign := "/api/v1/access/requests/" + ids[1] + "/assign"
	if r := e.do(t, http.MethodPost, assign, qa, map[string]any{"assignee": qa, "reason": "on call"}); r.Code != http.StatusCreated || r.object(t)["assignee"] != qa {
		t.Fatalf("assign: %s", r)
	}
	if r := e.do(t, http.MethodPost, assign, qa, map[string]any{"assignee": physician, "reason": "on call"}); r.Code != http.StatusBadRequest {
		t.Fatalf("assign to the physician: %s", r)
	}
	if r := e.do(t, http.MethodPost, assign, physician, map[string]any{"assignee": qa, "reason": "on call"}); r.Code != http.StatusForbidden {
		t.Fatalf("physician assigns: %s", r)
	}
	step := map[string]any{"step": "decide", "data": map[string]any{"text": "Meets criteria", "approve": true}}
	if r := e.do(t, http.MethodPost, "/api/v1/access/requests/"+ids[1]+"/records", qa, step); r.Code != http.StatusCreated {
		t.Fatalf("decide: %s", r)
	}
	r = e.do(t, http.MethodGet, "/api/v1/access/figures", qa, nil)
	figs := r.object(t)["figures"].([]any)
	if r.Code != http.StatusOK || len(figs) != 1 || figs[0].(map[string]any)["urgency"] != "emergency" || figs[0].(map[string]any)["count"] != float64(1) {
		t.Fatalf("figures: %s", r)
	}
	r = e.do(t, http.MethodGet, "/api/v1/access/figures.csv", qa, nil)
	lines := strings.Split(strings.TrimSpace(string(r.Body)), "\n")
	if r.Code != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") || len(lines) != 2 ||
		lines[0] != "month,urgency,count,median_hours,p90_hours,breached" || !strings.Contains(lines[1], ",emergency,1,") {
		t.Fatalf("figures.csv: %s", r)
	}
	for _, path := range []string{"/api/v1/access/queue", "/api/v1/access/figures", "/api/v1/access/figures.csv"} {
		if r := e.do(t, http.MethodGet, path, physician, nil); r.Code != http.StatusForbidden {
			t.Errorf("physician reads %s: %s", path, r)
		}
	}
}
