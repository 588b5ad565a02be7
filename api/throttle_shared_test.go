package api

import (
	"context"
	"testing"
	"time"

	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
)

// TestSharedSignInThrottle: two instances on one PostgreSQL schema (two
// throttles on one store each, as two coid serve would have) count one
// address's and one user's failed sign-ins together: a user kept out on
// one is kept out on the other, an unlock on either lifts it, and a
// known user still passes a busy address on the other.
func TestSharedSignInThrottle(t *testing.T) {
	url := pgtest.Schema(t)
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	var ths [2]*SignInThrottle
	for i := range ths {
		st, err := pgstore.Open(context.Background(), url, pgstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ths[i] = &SignInThrottle{t: newSignInThrottle(clock, st, nil)}
	}
	a, b := ths[0], ths[1]
	for i := range signInMaxFailsPerUser {
		if ok, _ := ths[i%2].Attempt("10.0.0.1", "nurse1"); !ok {
			t.Fatalf("attempt %d refused before the limit", i+1)
		}
	}
	for i, th := range ths {
		if ok, wait := th.Attempt("10.0.0.1", "nurse1"); ok || wait <= 0 || wait > signInWindow {
			t.Fatalf("instance %d: after the limit: ok %v, wait %v", i, ok, wait)
		}
		if bl, n := th.SignInBlocked("nurse1"); !bl || n != signInMaxFailsPerUser {
			t.Fatalf("instance %d: blocked %v with %d failures", i, bl, n)
		}
	}
	// An ID typed with odd bytes is counted as itself, not as nurse1.
	if ok, _ := b.Attempt("10.0.0.1", "x\x00nurse1|"); !ok {
		t.Fatal("an odd ID was refused")
	}
	if _, n := a.SignInBlocked("x\x00nurse1|"); n != 1 {
		t.Fatalf("the odd ID's failures: %d", n)
	}
	// An unlock on b lets nurse1 in on a.
	b.ForgetUser("nurse1")
	if bl, n := a.SignInBlocked("nurse1"); bl || n != 0 {
		t.Fatalf("after ForgetUser: blocked %v with %d", bl, n)
	}
	if ok, _ := a.Attempt("10.0.0.1", "nurse1"); !ok {
		t.Fatal("still kept out after ForgetUser")
	}
	a.Refunded("10.0.0.1", "nurse1")

	// A busy address: nurse3 signed in from it on a; strangers fill its
	// count on b; nurse3 still passes on b, a stranger does not.
	if ok, _ := a.Attempt("10.0.0.9", "nurse3"); !ok {
		t.Fatal("nurse3 refused")
	}
	a.Succeeded("10.0.0.9", "nurse3")
	for i := range signInMaxFails {
		if ok, _ := b.Attempt("10.0.0.9", "guess"+string(rune('a'+i))); !ok {
			t.Fatalf("stranger %d refused before the address limit", i)
		}
	}
	if ok, _ := a.Attempt("10.0.0.9", "someone"); ok {
		t.Fatal("a busy address let a stranger try")
	}
	if ok, _ := b.Attempt("10.0.0.9", "nurse3"); !ok {
		t.Fatal("a busy address kept out a user who signed in from it")
	}
	// A window later nothing is counted.
	now = now.Add(signInWindow)
	if bl, n := b.SignInBlocked("x\x00nurse1|"); bl || n != 0 {
		t.Fatalf("after the window: blocked %v with %d", bl, n)
	}
	if ok, _ := a.Attempt("10.0.0.9", "someone"); !ok {
		t.Fatal("the address still kept out after its window")
	}
}

// TestSharedSignInThrottleParallel: attempts in parallel on two
// instances cannot pass the limit together.
func TestSharedSignInThrottleParallel(t *testing.T) {
	url := pgtest.Schema(t)
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	var ths [2]*SignInThrottle
	for i := range ths {
		st, err := pgstore.Open(context.Background(), url, pgstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		ths[i] = &SignInThrottle{t: newSignInThrottle(func() time.Time { return now }, st, nil)}
	}
	const tries = 16
	oks := make(chan bool, tries)
	for i := range tries {
		go func() {
			ok, _ := ths[i%2].Attempt("10.0.0.1", "nurse1")
			oks <- ok
		}()
	}
	passed := 0
	for range tries {
		if <-oks {
			passed++
		}
	}
	if passed != signInMaxFailsPerUser {
		t.Fatalf("%d of %d parallel attempts passed, want the limit %d", passed, tries, signInMaxFailsPerUser)
	}
}
