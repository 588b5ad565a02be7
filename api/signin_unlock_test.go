package api

import (
	"testing"
	"time"
)

// TestSignInForgetUser: a user kept out by wrong sign-ins from two
// addresses may sign in again at once after ForgetUser, which leaves other
// users' counts alone and gives the addresses their attempts back.
func TestSignInForgetUser(t *testing.T) {
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	th := NewSignInThrottle(func() time.Time { return now })
	for _, addr := range []string{"10.0.0.1", "10.0.0.2"} {
		for range signInMaxFailsPerUser {
			if ok, _ := th.Attempt(addr, "nurse1"); !ok {
				t.Fatal("refused before the limit")
			}
		}
	}
	th.Attempt("10.0.0.1", "nurse2")
	th.Attempt("10.0.0.1", "x\x00nurse1") // an ID typed with a NUL is not nurse1
	if ok, _ := th.Attempt("10.0.0.1", "nurse1"); ok {
		t.Fatal("not kept out after the limit")
	}
	if b, n := th.SignInBlocked("nurse1"); !b || n != 2*signInMaxFailsPerUser {
		t.Fatalf("blocked %v with %d failures", b, n)
	}
	if b, n := th.SignInBlocked("nurse2"); b || n != 1 {
		t.Fatalf("nurse2: blocked %v with %d failures", b, n)
	}
	th.ForgetUser("nurse1")
	if b, n := th.SignInBlocked("nurse1"); b || n != 0 {
		t.Fatalf("after ForgetUser: blocked %v with %d failures", b, n)
	}
	if ok, _ := th.Attempt("10.0.0.2", "nurse1"); !ok {
		t.Fatal("still kept out after ForgetUser")
	}
	if _, n := th.SignInBlocked("nurse2"); n != 1 {
		t.Fatalf("ForgetUser changed nurse2's count to %d", n)
	}
	if got := th.t.win.fails["10.0.0.1"].n; got != 2 { // nurse2's and the NUL ID's
		t.Fatalf("address count after ForgetUser: %d", got)
	}
	// Past the window nothing is counted.
	now = now.Add(signInWindow)
	if b, n := th.SignInBlocked("nurse2"); b || n != 0 {
		t.Fatalf("after the window: blocked %v with %d", b, n)
	}
}
