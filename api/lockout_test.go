package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// TestSignaturesNamingOthersNeverLock: any token holder could lock any
// account by signing with its ID and five wrong passwords. Now wrong
// passwords for someone else's ID only make that caller wait (1 minute,
// doubling), the answers are the same whether the ID exists or not, the
// account's holder can still sign, and an administrator's unlock ends the
// wait. Before the fix the victim was locked after five attempts.
func TestSignaturesNamingOthersNeverLock(t *testing.T) {
	clk := &testClock{t: fixedNow}
	e := newEnv(t, withClock(clk.Now))
	coi := e.enroll(t, patientA)
	note := map[string]any{"text": "x"}
	// nurse2 names nurse1; courier names an ID that exists nowhere.
	try := func(caller, id, pw string) response {
		return e.step(t, coi, caller, custody.StepNote, note, sig{id, custody.MeaningAuthored, pw})
	}
	same := func(what string, a, b response) {
		t.Helper()
		ca, ma := a.errorBody(t)
		cb, mb := b.errorBody(t)
		if a.Code != b.Code || ca != cb || ma != mb || a.Header.Get("Retry-After") != b.Header.Get("Retry-After") {
			t.Fatalf("%s: an existing and an unknown ID answered differently:\n%s\n%s", what, a, b)
		}
	}
	for i := 1; i <= custody.MaxFailedSignatures+2; i++ {
		real, ghost := try(nurse2, nurse1, "a-wrong-guess"), try(courier, "nobody.here", "a-wrong-guess")
		same("attempt "+string(rune('0'+i)), real, ghost)
		want := http.StatusUnauthorized
		if i > custody.MaxFailedSignatures {
			want = http.StatusTooManyRequests
		}
		if real.Code != want {
			t.Fatalf("attempt %d: %s, want %d", i, real, want)
		}
	}
	u, err := e.store.User(context.Background(), nurse1)
	if err != nil {
		t.Fatal(err)
	}
	if u.Locked || u.FailedSignatures != 0 {
		t.Fatalf("another token holder's wrong passwords locked or counted against %s: %+v", nurse1, u.Public())
	}
	// Even the right password waits; the answer says how long.
	r := try(nurse2, nurse1, "")
	if r.Code != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "60" {
		t.Fatalf("right password while backing off: %s Retry-After %q", r, r.Header.Get("Retry-After"))
	}
	// The account's holder signs as always.
	e.mustStep(t, coi, nurse1, custody.StepNote, note, sig{nurse1, custody.MeaningAuthored, ""})
	// After the wait, one more wrong password doubles it.
	clk.Advance(time.Minute)
	if r := try(nurse2, nurse1, "a-wrong-guess"); r.Code != http.StatusUnauthorized {
		t.Fatalf("after the wait: %s", r)
	}
	if r := try(nurse2, nurse1, ""); r.Header.Get("Retry-After") != "120" {
		t.Fatalf("second wait: %s Retry-After %q, want 120", r, r.Header.Get("Retry-After"))
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `level=ERROR msg="security alert: repeated wrong passwords" caller=nurse.bea reason="wrong password" user=nurse.ada`) {
		t.Fatalf("no security alert:\n%s", logs)
	}
	if strings.Contains(logs, "a-wrong-guess") || strings.Contains(logs, "nobody.here") {
		t.Fatal("a password or an unknown ID in the log")
	}
	// An administrator's unlock ends every caller's wait for the ID.
	if r := e.do(t, http.MethodPost, "/api/v1/users/"+nurse1+"/unlock", admin, nil); r.Code != http.StatusOK {
		t.Fatalf("unlock: %s", r)
	}
	if r := try(nurse2, nurse1, ""); r.Code != http.StatusCreated {
		t.Fatalf("after the unlock: %s", r)
	}
}

// TestOwnWrongPasswordsLockUntilUnlocked: a user's own wrong passwords
// (made with the user's own token) still lock the account after five, as
// 21 CFR Part 11 11.300(d) asks; the lock raises a security alert, other
// callers are not told of it, and an administrator unlocks it through the
// API while the service runs, which is logged with who did it.
func TestOwnWrongPasswordsLockUntilUnlocked(t *testing.T) {
	e := newEnv(t)
	coi := e.enroll(t, patientA)
	note := map[string]any{"text": "x"}
	for i := 1; i <= custody.MaxFailedSignatures; i++ {
		if r := e.step(t, coi, nurse1, custody.StepNote, note, sig{nurse1, custody.MeaningAuthored, "a-wrong-guess"}); r.Code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %s", i, r)
		}
	}
	if r := e.step(t, coi, nurse1, custody.StepNote, note, sig{nurse1, custody.MeaningAuthored, ""}); r.Code != http.StatusUnauthorized || !strings.Contains(string(r.Body), "locked") {
		t.Fatalf("locked user's own signature: %s", r)
	}
	if !strings.Contains(e.logs.String(), `level=ERROR msg="security alert: account locked" user=nurse.ada failed_signatures=5`) {
		t.Fatalf("no security alert for the lock:\n%s", e.logs.String())
	}
	// Another caller, even with the right password, learns nothing.
	r := e.step(t, coi, nurse2, custody.StepNote, note, sig{nurse1, custody.MeaningAuthored, ""})
	if _, msg := r.errorBody(t); r.Code != http.StatusUnauthorized || msg != "record note on CHA999926000001: signature 1: user ID or password not accepted" {
		t.Fatalf("another caller naming a locked account: %s", r)
	}
	if r := e.do(t, http.MethodPost, "/api/v1/users/"+nurse1+"/unlock", qa, nil); r.Code != http.StatusForbidden {
		t.Fatalf("unlock by QA: %s", r)
	}
	if r := e.do(t, http.MethodPost, "/api/v1/users/"+nurse1+"/unlock", admin, nil); r.Code != http.StatusOK || r.object(t)["locked"] != false {
		t.Fatalf("unlock: %s", r)
	}
	if !strings.Contains(e.logs.String(), `msg="user unlocked by administrator" user=nurse.ada by=admin.fay`) {
		t.Fatal("the unlock is not logged with the administrator")
	}
	e.mustStep(t, coi, nurse1, custody.StepNote, note, sig{nurse1, custody.MeaningAuthored, ""})
}

// TestSignatureThrottlePerCaller: the API had no throttle on signatures.
// A caller gets 10 signatures not accepted per 15 minutes, whatever IDs
// they name; then 429 with Retry-After, without checking any password,
// while other callers go on. Before the fix the eleventh was checked.
func TestSignatureThrottlePerCaller(t *testing.T) {
	clk := &testClock{t: fixedNow}
	e := newEnv(t, withClock(clk.Now))
	coi := e.enroll(t, patientA)
	note := map[string]any{"text": "x"}
	for i := range 10 {
		id := "guess" + string(rune('a'+i))
		if r := e.step(t, coi, nurse2, custody.StepNote, note, sig{id, custody.MeaningAuthored, "a-wrong-guess"}); r.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %s", i+1, r)
		}
	}
	before := e.ledgerRecords(t)
	r := e.step(t, coi, nurse2, custody.StepNote, note, sig{nurse1, custody.MeaningAuthored, ""})
	if code, _ := r.errorBody(t); r.Code != http.StatusTooManyRequests || code != "too_many_requests" || r.Header.Get("Retry-After") != "900" {
		t.Fatalf("eleventh: %s Retry-After %q", r, r.Header.Get("Retry-After"))
	}
	if e.ledgerRecords(t) != before {
		t.Fatal("a throttled request wrote a record")
	}
	e.mustStep(t, coi, nurse1, custody.StepNote, note, sig{nurse1, custody.MeaningAuthored, ""})
	clk.Advance(15 * time.Minute)
	e.mustStep(t, coi, nurse2, custody.StepNote, note, sig{nurse1, custody.MeaningAuthored, ""})
}
