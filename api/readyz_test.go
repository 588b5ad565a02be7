package api_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReadyz: not ready until start-up is done, ready while healthy,
// unavailable when a health check fails, and not ready again from the
// moment shutdown begins, while healthz still answers 200.
func TestReadyz(t *testing.T) {
	var intakeDown atomic.Bool
	health := func(context.Context) error {
		if intakeDown.Load() {
			return errors.New("mqtt intake: not connected")
		}
		return nil
	}
	e := newEnv(t, func(c *envConfig) { c.api.Health = health })
	status := func(path string) (int, any) {
		r := e.do(t, http.MethodGet, path, "", nil)
		return r.Code, r.object(t)["status"]
	}
	steps := []struct {
		name       string
		do         func()
		path       string
		code       int
		wantStatus string
	}{
		{"before start-up is done", func() {}, "/readyz", 503, "not ready"},
		{"started", func() { e.srv.SetReady(true) }, "/readyz", 200, "ready"},
		{"intake down", func() { intakeDown.Store(true) }, "/readyz", 503, "unavailable"},
		{"intake down, healthz", func() {}, "/healthz", 503, "unavailable"},
		{"intake back", func() { intakeDown.Store(false) }, "/readyz", 200, "ready"},
		{"shutting down", func() { e.srv.SetReady(false) }, "/readyz", 503, "not ready"},
		{"shutting down, healthz", func() {}, "/healthz", 200, "ok"},
	}
	for _, s := range steps {
		s.do()
		if code, st := status(s.path); code != s.code || st != s.wantStatus {
			t.Errorf("%s: %s = %d %v, want %d %s", s.name, s.path, code, st, s.code, s.wantStatus)
		}
	}
}

// TestObserveRequestGetsRoutePattern: the observer hears the matched
// route pattern, not the path with its COI, and "" for no route.
func TestObserveRequestGetsRoutePattern(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	e := newEnv(t, func(c *envConfig) {
		c.api.ObserveRequest = func(method, route string, status int, _ time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			seen[method+" "+route] = status
		}
	})
	e.do(t, http.MethodGet, "/api/v1/chains/CHA999926999999", "coord.cora", nil)
	e.do(t, http.MethodGet, "/no/such/path", "", nil)
	mu.Lock()
	defer mu.Unlock()
	if seen["GET /api/v1/chains/:coi"] != http.StatusNotFound || seen["GET "] != http.StatusNotFound {
		t.Fatalf("observed %v", seen)
	}
}
