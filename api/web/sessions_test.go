package web_test

import (
	"net/http"
	"testing"
	"time"
)

// TestSessionsPerUserBounded: one user signing in again and again used to
// push everyone else's sessions out of the table. Now a user keeps at
// most 5 sessions: a sixth sign-in ends that user's least recently used
// one, and no one else's.
func TestSessionsPerUserBounded(t *testing.T) {
	e := newWebEnv(t, false)
	other := e.login(wNurse2)
	var mine []*browser
	for range 6 {
		e.clock.Advance(time.Second)
		mine = append(mine, e.login(wNurse1))
	}
	if p := mine[0].get("/scan"); p.Code != http.StatusSeeOther {
		t.Fatalf("the oldest of six sessions of one user: %d, want a redirect to sign in", p.Code)
	}
	for i, b := range mine[1:] {
		wantCode(t, b.get("/scan"), http.StatusOK, "session "+string(rune('2'+i)))
	}
	wantCode(t, other.get("/scan"), http.StatusOK, "another user's session")
}
