package web

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// TestSessionTableFullRefuses: when every session place holds a live
// session, a new sign-in is refused (503 at the sign-in page) and no one
// else's session ends; expired sessions make room. Before, the least
// recently used session of anyone was evicted.
func TestSessionTableFullRefuses(t *testing.T) {
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	st := newSessionStore(func() time.Time { return now }, nil, nil)
	first, _, err := st.create(custody.User{ID: "u0"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < webMaxSessions; i++ {
		if _, _, err := st.create(custody.User{ID: fmt.Sprint("u", i)}); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
	}
	if _, _, err := st.create(custody.User{ID: "late"}); !errors.Is(err, errSessionsFull) {
		t.Fatalf("sign-in into a full table: %v", err)
	}
	if s, _ := st.get(first); s == nil || len(st.m) != webMaxSessions {
		t.Fatalf("a full table evicted a session (%d left)", len(st.m))
	}
	now = now.Add(webIdleTimeout + time.Second)
	if _, _, err := st.create(custody.User{ID: "late"}); err != nil || len(st.m) != 1 {
		t.Fatalf("after every session expired: %v, %d sessions", err, len(st.m))
	}
}
