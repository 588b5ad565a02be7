// Package storetest is the conformance suite for custody's store
// contract: custody.Store (ledger, chains, PHI, users, registries) and
// custody.TelemetryStore (readings and the quarantine).
//
// A backend passes when Run, given a Backend that opens a fresh, empty
// store, succeeds with Backend.Lacks empty. A backend still being built
// names the parts it does not implement in Backend.Lacks: their tests are
// reported as skipped, each naming the part, so the gap stays visible.
// What a backend must pass:
//
//   - Appends under concurrency: many goroutines appending to many chains
//     at once; every acknowledged record is stored exactly once, at its own
//     log position, linked to the log's and its chain's previous record,
//     and the whole log verifies (custody.VerifyLog, custody.VerifyChain).
//   - The optimistic chain check: a draft whose ExpectRecords is stale is
//     refused with custody.ErrRetry and writes nothing; the enroll of an
//     existing chain is refused with custody.ErrConflict, an append to an
//     unknown chain with custody.ErrNotFound, both writing nothing.
//   - Reads: Record, Records, Chain, Chains (all and by state), PHI and
//     NextCOISequence (never the same number twice, per facility and year).
//   - Users and tokens: create (a taken ID is ErrConflict), look up by ID
//     and by token, add a token, disable, lock and unlock through
//     UpdateUser, list without password hashes (all, or a page in ID
//     order after a cursor); unknown ones ErrNotFound.
//   - Accounts and the audit trail (custody.AccountStore): a user's change
//     and its audit entry are stored together or not at all; audit entries
//     are numbered, filtered and limited; tokens are listed with their
//     times, touched, and revoked by ID at once, all or nothing.
//   - Telemetry: the same reading delivered twice, even concurrently or
//     twice in one batch, through AddReadings or the asynchronous sink
//     (AddReadingsAsync), is stored once and each caller answered once; a
//     different reading under a stored identity, or two different ones
//     under one identity in a batch, are refused with
//     custody.ErrReadingConflict and nothing of their batch is stored,
//     not even its quarantined payload.
//   - Reading log (custody.ReadingLog): the new readings of each committed
//     batch are listed once after a cursor, in watermark order, in pages
//     of whole batches; duplicates and refused batches are not listed, and
//     a batch committed between pages is listed after the others.
//   - Quarantine: entries are kept and listed newest first, limited on
//     request and paged by ID.
//   - Registries: an entry is created once per registry and code
//     (custody.ErrConflict, even under concurrency), updated only with its
//     audit entry in the same write, listed in code order with paging;
//     every change leaves one audit entry, numbered from 1, sealed and
//     linked to the one before (custody.SealAuditEntry).
//   - One audit trail: the registries' and the accounts' changes share one
//     sequence and one hash chain, listed with one filter (kind, code,
//     actor, period, after, limit, newest).
//   - Scheduling: a site's capacity is stored with its audit entry; an
//     append's claims are taken with its record, in one transaction, only
//     while the site's capacity that day exceeds the claims held
//     (custody.ErrSlotTaken otherwise, nothing written), even under
//     concurrency (64 bookings of 10 slots: exactly 10 succeed); a
//     release frees only a claim the chain holds; SiteSlots reads a range
//     of days per site.
//   - Chain summaries keep the site names of the enroll draft and the
//     open issue counts of the latest draft (custody.IssueCounts).
//   - Chain summaries page in COI order (ChainsAfter), all or one state;
//     pages read while chains are enrolled or change state between them
//     list no chain twice and miss none after the cursor.
//   - The excursion index (ExcursionChains): the chains holding an
//     excursion record, and those whose summary counts open excursions,
//     paged greatest COI first; kept with each append, so pages read while
//     records are appended list no chain twice and miss none.
//   - Crash consistency, when the backend can simulate a crash
//     (Backend.Crash): every record and reading acknowledged before the
//     crash is in the store reopened after it, the log and every chain
//     verify there, and appends continue after its head.
//
// After every subtest the whole log must verify. Every subtest is
// deterministic: fixed times, no sleeps, concurrency checked by counts.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// Store is the contract a backend implements: the ledger, chains, PHI and
// users, and the telemetry readings with the quarantine.
type Store interface {
	custody.Store
	custody.TelemetryStore
}

// Backend is how Run reaches the backend under test.
type Backend struct {
	// Open returns a new, empty store for each call and releases it when
	// the test ends (t.Cleanup); required.
	Open func(t *testing.T) Store
	// Crash, if set, simulates a crash of s while writes are in flight:
	// it returns a store opened on what the backend would find after the
	// process died at that moment, leaving s running (and releases the
	// new store when the test ends). Nil: the crash test is skipped.
	Crash func(t *testing.T, s Store) Store
	// Lacks names the parts of the contract the backend does not
	// implement yet: their tests are skipped, each saying so by name, so
	// a partial backend is never mistaken for a conforming one. A
	// complete backend leaves it empty.
	Lacks []Part
}

// Part is a part of the store contract, as Backend.Lacks names it. The
// ledger (appends, reads, chain summaries, PHI, COI numbers, Backup) is
// not one: every backend implements it, and every subtest verifies it.
type Part string

// The parts of the contract a backend may not implement yet.
const (
	PartUsers     Part = "users and tokens"
	PartAccounts  Part = "accounts (audited user changes and token management)"
	PartAudit     Part = "the audit trail"
	PartTelemetry Part = "telemetry readings and the quarantine"
	PartRegistry  Part = "registries"
	PartSchedule  Part = "scheduling"
	PartQuota     Part = "quotas and the waiting list"
	// PartReadingLog is the log of stored reading batches in watermark
	// order (ReadingsSince) that the incremental monitor reads.
	PartReadingLog Part = "the reading log (readings stored since a cursor)"
	// PartProgress is each chain's plan and milestone times kept in its
	// summary, which the scheduling dashboard adds up.
	PartProgress Part = "chain plan and milestone progress in summaries"
	// PartAccessIndex is the access index (custody.AccessIndex): each
	// request's triage row kept with its records.
	PartAccessIndex Part = "the access index of expanded-access requests"
	// PartFollowUpIndex is the follow-up index (custody.FollowUpIndex):
	// each infused chain's entry kept with its records.
	PartFollowUpIndex Part = "the follow-up index of infused chains"
	// PartExpiryIndex is the index of the registries' expiry dates
	// (custody.QualificationExpiryIndex) kept with the registry writes.
	PartExpiryIndex Part = "the index of registry expiry dates"
	// PartCrash is the crash test: also lacking when Backend.Crash is
	// nil.
	PartCrash Part = "crash consistency"
)

// t0 is the suite's fixed clock: record and reading times derive from it.
var t0 = time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)

// Run runs the conformance suite against b.
func Run(t *testing.T, b Backend) {
	tests := []struct {
		name  string
		needs []Part // beside the ledger
		fn    func(t *testing.T, s Store)
	}{
		{"ConcurrentAppends", nil, testConcurrentAppends},
		{"StaleDraftRefused", nil, testStaleDraft},
		{"EnrollOfExistingChainRefused", nil, testEnrollExisting},
		{"UnknownChainRefused", nil, testUnknownChain},
		{"Reads", nil, testReads},
		{"COISequence", nil, testCOISequence},
		{"ChainsPaged", nil, testChainsPaged},
		{"ChainStateCounts", nil, testChainStateCounts},
		{"ChainSiteIndex", nil, testChainSiteIndex},
		{"TerminalIssueIndex", nil, testTerminalIssueIndex},
		{"UsersAndTokens", []Part{PartUsers}, testUsers},
		{"UsersPaged", []Part{PartUsers}, testUsersPaged},
		{"AccountsAndAudit", []Part{PartUsers, PartAccounts, PartAudit}, testAccounts},
		{"OneAuditTrail", []Part{PartUsers, PartAccounts, PartAudit, PartRegistry}, testOneAuditTrail},
		{"ReadingsOnce", []Part{PartTelemetry}, testReadingsOnce},
		{"ReadingConflict", []Part{PartTelemetry}, testReadingConflict},
		{"ReadingSinkOnce", []Part{PartTelemetry}, testReadingSinkOnce},
		{"ReadingLog", []Part{PartTelemetry, PartReadingLog}, testReadingLog},
		{"ReadingsPaged", []Part{PartTelemetry}, testReadingsPaged},
		{"Quarantine", []Part{PartTelemetry}, testQuarantine},
		{"Registry", []Part{PartRegistry, PartAudit}, testRegistry},
		{"SiteMappings", []Part{PartRegistry, PartAudit}, testSiteMappings},
		{"ChainSitesKept", nil, testChainSites},
		{"Schedule", []Part{PartSchedule, PartAudit}, testSchedule},
		{"ConcurrentBooking", []Part{PartSchedule, PartAudit}, testConcurrentBooking},
		{"ChainOpenIssuesKept", nil, testChainOpenIssues},
		{"ExcursionIndex", nil, testExcursionIndex},
		{"ChainProgressKept", []Part{PartProgress}, testChainProgress},
		{"Quota", []Part{PartQuota, PartSchedule, PartAudit}, testQuota},
		{"QuotasPaged", []Part{PartQuota, PartAudit}, testQuotasPaged},
		{"ConcurrentQuota", []Part{PartQuota, PartSchedule, PartAudit}, testConcurrentQuota},
		{"Waitlist", []Part{PartQuota, PartAudit}, testWaitlist},
		{"OfferHoldsSlot", []Part{PartQuota, PartSchedule, PartAudit}, testOfferHold},
		{"ConcurrentOfferHold", []Part{PartQuota, PartSchedule, PartAudit}, testConcurrentOfferHold},
		{"AccessIndex", []Part{PartAccessIndex}, testAccessIndex},
		{"FollowUpIndex", []Part{PartFollowUpIndex}, testFollowUpIndex},
		{"ExpiryIndex", []Part{PartRegistry, PartAudit, PartExpiryIndex}, testExpiryIndex},
		{"CrashConsistency", []Part{PartCrash, PartTelemetry}, func(t *testing.T, s Store) { testCrash(t, b, s) }},
	}
	lacks := map[Part]bool{}
	for _, p := range b.Lacks {
		lacks[p] = true
	}
	if b.Crash == nil {
		lacks[PartCrash] = true
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range tt.needs {
				if lacks[p] {
					t.Skipf("NOT IMPLEMENTED by this backend: %s (Backend.Lacks)", p)
				}
			}
			s := b.Open(t)
			tt.fn(t, s)
			verifyAll(t, s)
		})
	}
}

// COI returns the suite's n-th chain identifier.
func COI(n int) custody.COI {
	c, err := custody.NewCOI("A9999", 2026, uint64(n))
	if err != nil {
		panic(err)
	}
	return c
}

// Draft returns a draft of a realistic record, number i of the test, for
// chain coi: the enroll record when newChain, else a note; expect is how
// many records of the chain the caller has seen.
func Draft(coi custody.COI, i int, newChain bool, expect uint64) custody.Draft {
	step := custody.StepNote
	if newChain {
		step = custody.StepEnroll
	}
	now := t0.Add(time.Duration(i) * time.Second)
	data := fmt.Appendf(nil, `{"shipper":"SHP-%04d","text":"handoff %d checked against the manifest"}`, i%10000, i)
	d := custody.Draft{
		Record: custody.Record{V: custody.EncodingVersion, Chain: coi, Step: step, Time: now, Site: "CellWorks NJ",
			SubmittedBy: "nurse1", Data: data, Signatures: []custody.Signature{
				{User: "nurse1", Name: "Ana Nurse", Role: custody.RoleNurse, Meaning: custody.MeaningPerformed, Time: custody.FormatTime(now), Method: "password"},
				{User: "nurse2", Name: "Ben Nurse", Role: custody.RoleNurse, Meaning: custody.MeaningVerified, Time: custody.FormatTime(now), Method: "password"},
			}},
		NewChain: newChain, ExpectRecords: expect, State: custody.StateEnrolled, Product: "CAR-T",
	}
	return d
}

// verifyAll verifies the whole log and every chain.
func verifyAll(t *testing.T, s Store) custody.Report {
	t.Helper()
	ctx := context.Background()
	rep, err := custody.VerifyLog(ctx, s)
	if err != nil {
		t.Fatalf("VerifyLog: %v", err)
	}
	if !rep.OK {
		t.Fatalf("VerifyLog: %+v", rep)
	}
	chains, err := s.Chains(ctx, "")
	if err != nil {
		t.Fatalf("Chains: %v", err)
	}
	for _, ci := range chains {
		crep, err := custody.VerifyChain(ctx, s, ci)
		if err != nil || !crep.OK || crep.Records != ci.Records {
			t.Fatalf("VerifyChain %s: %+v %v", ci.COI, crep, err)
		}
	}
	return rep
}

// mustAppend appends d and fails the test on an error.
func mustAppend(t *testing.T, s Store, d custody.Draft) custody.Record {
	t.Helper()
	r, err := s.Append(context.Background(), d)
	if err != nil {
		t.Fatalf("append %s %s: %v", d.Record.Chain, d.Record.Step, err)
	}
	return r
}

// head returns the store's head position, failing the test on an error.
func head(t *testing.T, s Store) (uint64, custody.Hash) {
	t.Helper()
	seq, h, err := s.Head(context.Background())
	if err != nil {
		t.Fatalf("Head: %v", err)
	}
	return seq, h
}

func testConcurrentAppends(t *testing.T, s Store) {
	ctx := context.Background()
	const writers, each = 32, 12
	var wg sync.WaitGroup
	got := make([][]custody.Record, writers+1)
	for w := 1; w <= writers; w++ {
		wg.Go(func() {
			for k := range each {
				r, err := s.Append(ctx, Draft(COI(w), w*1000+k, k == 0, uint64(k)))
				if err != nil {
					t.Errorf("writer %d append %d: %v", w, k, err)
					return
				}
				got[w] = append(got[w], r)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	seen := map[uint64]bool{}
	for w := 1; w <= writers; w++ {
		recs, err := s.Records(ctx, COI(w))
		if err != nil || len(recs) != each {
			t.Fatalf("chain %d: %d records, %v", w, len(recs), err)
		}
		var prev custody.Hash
		for k, r := range recs {
			if seen[r.Seq] {
				t.Fatalf("log position %d stored twice", r.Seq)
			}
			seen[r.Seq] = true
			if r.Chain != COI(w) || r.ChainSeq != uint64(k+1) || r.ChainPrev != prev || r.Hash != got[w][k].Hash || r.Seq != got[w][k].Seq {
				t.Fatalf("chain %d record %d: stored %+v, acknowledged %+v", w, k, r, got[w][k])
			}
			if r.Hash != r.ComputeHash() {
				t.Fatalf("chain %d record %d: hash does not match its content", w, k)
			}
			prev = r.Hash
		}
	}
	// Every position 1..N holds exactly one acknowledged record, linked to
	// the one before it.
	n := uint64(writers * each)
	var prev custody.Hash
	for seq := uint64(1); seq <= n; seq++ {
		if !seen[seq] {
			t.Fatalf("log position %d holds no acknowledged record", seq)
		}
		r, err := s.Record(ctx, seq)
		if err != nil || r.Seq != seq || r.Prev != prev {
			t.Fatalf("record %d: %+v %v", seq, r, err)
		}
		prev = r.Hash
	}
	if hs, hh := head(t, s); hs != n || hh != prev {
		t.Fatalf("head %d %s, want %d %s", hs, hh, n, prev)
	}
	if rep := verifyAll(t, s); rep.Records != n {
		t.Fatalf("verified %d records, want %d", rep.Records, n)
	}
	// Racing appends to one chain, all drafted against the same head:
	// exactly one wins, the rest are told to retry.
	const racers = 16
	var mu sync.Mutex
	wins, retries := 0, 0
	for i := range racers {
		wg.Go(func() {
			_, err := s.Append(ctx, Draft(COI(1), 50000+i, false, each))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, custody.ErrRetry):
				retries++
			default:
				t.Errorf("racer %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || retries != racers-1 {
		t.Fatalf("%d racers won, %d told to retry; want 1 and %d", wins, retries, racers-1)
	}
	if ci, err := s.Chain(ctx, COI(1)); err != nil || ci.Records != each+1 {
		t.Fatalf("chain after race: %+v %v", ci, err)
	}
}

// refused checks that d is refused with want and that nothing changed.
func refused(t *testing.T, s Store, d custody.Draft, want error) {
	t.Helper()
	ctx := context.Background()
	hs, hh := head(t, s)
	before, _ := s.Chain(ctx, d.Record.Chain)
	_, err := s.Append(ctx, d)
	if !errors.Is(err, want) {
		t.Fatalf("append: %v, want %v", err, want)
	}
	if hs2, hh2 := head(t, s); hs2 != hs || hh2 != hh {
		t.Fatalf("refused append moved the head from %d to %d", hs, hs2)
	}
	after, _ := s.Chain(ctx, d.Record.Chain)
	if after != before {
		t.Fatalf("refused append changed the chain summary: %+v, was %+v", after, before)
	}
	if _, err := s.Record(ctx, hs+1); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("record past the head after a refused append: %v, want ErrNotFound", err)
	}
}

func testStaleDraft(t *testing.T, s Store) {
	for k := range 3 {
		mustAppend(t, s, Draft(COI(1), k, k == 0, uint64(k)))
	}
	refused(t, s, Draft(COI(1), 10, false, 2), custody.ErrRetry) // one behind
	refused(t, s, Draft(COI(1), 11, false, 0), custody.ErrRetry) // far behind
	refused(t, s, Draft(COI(1), 12, false, 4), custody.ErrRetry) // ahead
	r := mustAppend(t, s, Draft(COI(1), 13, false, 3))
	if r.ChainSeq != 4 || r.Seq != 4 {
		t.Fatalf("fresh draft after refusals: chain_seq %d seq %d, want 4 4", r.ChainSeq, r.Seq)
	}
}

func testEnrollExisting(t *testing.T, s Store) {
	ctx := context.Background()
	d := Draft(COI(1), 0, true, 0)
	d.PHI = &custody.PHI{Name: "Test Patient", BirthDate: "1970-01-01", MRN: "MRN-1", Salt: bytes.Repeat([]byte{7}, 32)}
	mustAppend(t, s, d)
	mustAppend(t, s, Draft(COI(1), 1, false, 1))
	again := Draft(COI(1), 2, true, 0)
	again.PHI = &custody.PHI{Name: "Other Patient", BirthDate: "1980-01-01", MRN: "MRN-2", Salt: bytes.Repeat([]byte{8}, 32)}
	refused(t, s, again, custody.ErrConflict)
	refused(t, s, Draft(COI(1), 3, true, 2), custody.ErrConflict)
	phi, err := s.PHI(ctx, COI(1))
	if err != nil || phi.MRN != "MRN-1" || phi.Name != "Test Patient" {
		t.Fatalf("PHI after a refused enroll: %+v %v", phi, err)
	}
}

func testUnknownChain(t *testing.T, s Store) {
	ctx := context.Background()
	refused(t, s, Draft(COI(9), 0, false, 0), custody.ErrNotFound)
	mustAppend(t, s, Draft(COI(1), 1, true, 0))
	refused(t, s, Draft(COI(9), 2, false, 0), custody.ErrNotFound)
	if _, err := s.Chain(ctx, COI(9)); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("Chain of unknown: %v", err)
	}
	if _, err := s.Records(ctx, COI(9)); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("Records of unknown: %v", err)
	}
	if _, err := s.PHI(ctx, COI(9)); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("PHI of unknown: %v", err)
	}
}

func testReads(t *testing.T, s Store) {
	ctx := context.Background()
	if cs, err := s.Chains(ctx, ""); err != nil || len(cs) != 0 {
		t.Fatalf("empty store lists %d chains, %v", len(cs), err)
	}
	if hs, hh := head(t, s); hs != 0 || hh != (custody.Hash{}) {
		t.Fatalf("empty store head %d %s", hs, hh)
	}
	// Three chains, interleaved; chain 2 is collected (the journey's
	// next state, as verification replays it).
	i := 0
	last := map[int]custody.Record{}
	for k := range 4 {
		for c := 1; c <= 3; c++ {
			i++
			d := Draft(COI(c), i, k == 0, uint64(k))
			if c == 2 && k == 3 {
				d.Record.Step, d.State = custody.StepCollect, custody.StateCollected
			}
			last[c] = mustAppend(t, s, d)
		}
	}
	all, err := s.Chains(ctx, "")
	if err != nil || len(all) != 3 {
		t.Fatalf("Chains: %d %v", len(all), err)
	}
	for _, ci := range all {
		c := 0
		for n := 1; n <= 3; n++ {
			if ci.COI == COI(n) {
				c = n
			}
		}
		if c == 0 || ci.Records != 4 || ci.HeadSeq != last[c].Seq || ci.HeadHash != last[c].Hash || ci.Product != "CAR-T" {
			t.Fatalf("summary %+v, last record %d %s", ci, last[c].Seq, last[c].Hash)
		}
		one, err := s.Chain(ctx, ci.COI)
		if err != nil || one != ci {
			t.Fatalf("Chain %s = %+v %v, listed %+v", ci.COI, one, err, ci)
		}
	}
	if cs, err := s.Chains(ctx, custody.StateCollected); err != nil || len(cs) != 1 || cs[0].COI != COI(2) {
		t.Fatalf("Chains(collected): %+v %v", cs, err)
	}
	if cs, err := s.Chains(ctx, custody.StateEnrolled); err != nil || len(cs) != 2 {
		t.Fatalf("Chains(enrolled): %+v %v", cs, err)
	}
	r, err := s.Record(ctx, last[3].Seq)
	if err != nil || r.Hash != last[3].Hash || r.Chain != COI(3) {
		t.Fatalf("Record %d: %+v %v", last[3].Seq, r, err)
	}
	if _, err := s.Record(ctx, uint64(i+1)); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("Record past the head: %v", err)
	}
	if _, err := s.PHI(ctx, COI(1)); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("PHI of a chain enrolled without: %v", err)
	}
	var b bytes.Buffer
	if n, err := s.Backup(ctx, &b); err != nil || n != int64(b.Len()) || n == 0 {
		t.Fatalf("Backup: %d bytes (%d written), %v", n, b.Len(), err)
	}
}

func testCOISequence(t *testing.T, s Store) {
	ctx := context.Background()
	const callers, each = 8, 10
	var mu sync.Mutex
	seen := map[uint64]int{}
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range each {
				n, err := s.NextCOISequence(ctx, "A9999", 2026)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				seen[n]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != callers*each {
		t.Fatalf("%d distinct numbers of %d reserved", len(seen), callers*each)
	}
	// Reserving under another facility or year never hands out a number
	// already reserved for this one. (Whether facilities count apart is
	// not checked: the contract only forbids repeats.)
	if _, err := s.NextCOISequence(ctx, "B1234", 2026); err != nil {
		t.Fatal(err)
	}
	next, err := s.NextCOISequence(ctx, "A9999", 2026)
	if err != nil || seen[next] != 0 {
		t.Fatalf("next A9999 number %d (taken %d times), %v", next, seen[next], err)
	}
	if _, err := s.NextCOISequence(ctx, "A9999", 2027); err != nil {
		t.Fatal(err)
	}
}

func testUsers(t *testing.T, s Store) {
	ctx := context.Background()
	tok := func(n byte) custody.Hash { return custody.TokenHash(fmt.Sprintf("coid_token_%d", n)) }
	u := custody.User{ID: "nurse1", Name: "Ana Nurse", Role: custody.RoleNurse, PasswordHash: "$argon2id$stub", Created: t0}
	if err := s.CreateUser(ctx, u, tok(1)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, custody.User{ID: "nurse1", Name: "Impostor", Role: custody.RoleAdmin, Created: t0}, tok(2)); !errors.Is(err, custody.ErrConflict) {
		t.Fatalf("taken ID: %v, want ErrConflict", err)
	}
	if _, err := s.UserByToken(ctx, tok(2)); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("token of a refused user: %v, want ErrNotFound", err)
	}
	got, err := s.User(ctx, "nurse1")
	if err != nil || got.Name != "Ana Nurse" || got.Role != custody.RoleNurse || got.PasswordHash != u.PasswordHash || !got.Created.Equal(t0) {
		t.Fatalf("User: %+v %v", got, err)
	}
	if got, err := s.UserByToken(ctx, tok(1)); err != nil || got.ID != "nurse1" {
		t.Fatalf("UserByToken: %+v %v", got, err)
	}
	if err := s.AddToken(ctx, "nurse1", tok(3)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.UserByToken(ctx, tok(3)); err != nil || got.ID != "nurse1" {
		t.Fatalf("second token: %+v %v", got, err)
	}
	if err := s.AddToken(ctx, "nobody", tok(4)); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("token for unknown user: %v", err)
	}
	if _, err := s.UserByToken(ctx, tok(4)); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("refused token stored: %v", err)
	}
	if _, err := s.User(ctx, "nobody"); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	// Lock, unlock, disable through UpdateUser; a failing fn changes nothing.
	upd := func(fn func(*custody.User) error) custody.User {
		t.Helper()
		x, err := s.UpdateUser(ctx, "nurse1", fn)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	if x := upd(func(x *custody.User) error {
		x.FailedSignatures, x.Locked = custody.MaxFailedSignatures, true
		return nil
	}); !x.Locked {
		t.Fatalf("lock: %+v", x)
	}
	boom := errors.New("refused")
	if _, err := s.UpdateUser(ctx, "nurse1", func(x *custody.User) error { x.Locked = false; return boom }); !errors.Is(err, boom) {
		t.Fatalf("failing update: %v", err)
	}
	if got, _ := s.User(ctx, "nurse1"); !got.Locked || got.FailedSignatures != custody.MaxFailedSignatures {
		t.Fatalf("failing update changed the user: %+v", got)
	}
	upd(func(x *custody.User) error { x.FailedSignatures, x.Locked = 0, false; return nil })
	if x := upd(func(x *custody.User) error { x.ID = "renamed"; x.Disabled = true; return nil }); x.ID != "nurse1" {
		t.Fatalf("UpdateUser returned the user as %q", x.ID)
	}
	got, err = s.User(ctx, "nurse1")
	if err != nil || got.ID != "nurse1" || got.Locked || got.FailedSignatures != 0 || !got.Disabled {
		t.Fatalf("after unlock and disable: %+v %v", got, err)
	}
	if _, err := s.User(ctx, "renamed"); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("UpdateUser renamed the user: %v", err)
	}
	if got, err := s.UserByToken(ctx, tok(1)); err != nil || !got.Disabled {
		t.Fatalf("disabled user by token: %+v %v", got, err)
	}
	if _, err := s.UpdateUser(ctx, "nobody", func(*custody.User) error { return nil }); !errors.Is(err, custody.ErrNotFound) {
		t.Fatalf("update unknown: %v", err)
	}
	if err := s.CreateUser(ctx, custody.User{ID: "admin", Name: "Ada Admin", Role: custody.RoleAdmin, PasswordHash: "$argon2id$x", Created: t0}, tok(5)); err != nil {
		t.Fatal(err)
	}
	list, err := s.Users(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("Users: %+v %v", list, err)
	}
	for _, x := range list {
		if x.PasswordHash != "" {
			t.Fatalf("Users lists %s with its password hash", x.ID)
		}
	}
}

// reading returns reading i of shipper, numbered, at a fixed time.
func reading(shipper string, i int) custody.Reading {
	temp := -180 + float64(i%7)*0.25
	return custody.Reading{Shipper: shipper, Seq: uint64(i), HasSeq: true, DeviceTime: t0.Add(time.Duration(i) * time.Minute),
		ReceivedTime: t0.Add(time.Hour), TempC: &temp}
}

// changedCopy returns r with another temperature: the same identity,
// different content.
func changedCopy(r custody.Reading) custody.Reading {
	hot := 8.0
	r.TempC = &hot
	return r
}

func testReadingsOnce(t *testing.T, s Store) {
	rs := s
	ctx := context.Background()
	var want []custody.Reading
	for i := range 20 {
		want = append(want, reading("SHP-A", i), reading("SHP-B", i))
	}
	// 10 callers each deliver all readings, one repeated within its batch.
	const callers = 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored, dups := 0, 0
	for c := range callers {
		wg.Go(func() {
			batch := append([]custody.Reading{want[c]}, want...)
			res, err := rs.AddReadings(ctx, batch)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			stored, dups = stored+res.Stored, dups+res.Duplicates
			mu.Unlock()
		})
	}
	wg.Wait()
	if stored != len(want) || dups != callers*(len(want)+1)-len(want) {
		t.Fatalf("stored %d (want %d), duplicates %d (want %d)", stored, len(want), dups, callers*(len(want)+1)-len(want))
	}
	if n, err := rs.ReadingsCount(ctx); err != nil || n != len(want) {
		t.Fatalf("count %d, want %d (%v)", n, len(want), err)
	}
	again, err := rs.AddReadings(ctx, want[:5])
	if err != nil || again.Stored != 0 || again.Duplicates != 5 {
		t.Fatalf("redelivery: %+v %v", again, err)
	}
	got, wm, err := rs.ShipperReadings(ctx, "SHP-A", time.Time{}, time.Time{}, 0)
	if err != nil || len(got) != 20 || wm != again.Watermark {
		t.Fatalf("ShipperReadings: %d readings, watermark %d (want %d), %v", len(got), wm, again.Watermark, err)
	}
	for i, r := range got {
		if string(r.AppendCanonical(nil)) != string(reading("SHP-A", i).AppendCanonical(nil)) {
			t.Fatalf("reading %d: %s", i, r.AppendCanonical(nil))
		}
	}
}

func testReadingConflict(t *testing.T, s Store) {
	rs := s
	ctx := context.Background()
	first, err := rs.AddReadings(ctx, []custody.Reading{reading("SHP-A", 1), reading("SHP-A", 2)})
	if err != nil || first.Stored != 2 {
		t.Fatalf("%+v %v", first, err)
	}
	changed := changedCopy(reading("SHP-A", 2))
	// A batch with a conflicting reading is refused whole: its new
	// reading is not stored either.
	if _, err := rs.AddReadings(ctx, []custody.Reading{reading("SHP-A", 3), changed}); !errors.Is(err, custody.ErrReadingConflict) {
		t.Fatalf("conflicting reading: %v, want ErrReadingConflict", err)
	}
	if n, err := rs.ReadingsCount(ctx); err != nil || n != 2 {
		t.Fatalf("count after a refused batch %d, want 2 (%v)", n, err)
	}
	// So is a batch holding two different readings under one identity.
	if _, err := rs.AddReadings(ctx, []custody.Reading{reading("SHP-A", 4), reading("SHP-A", 5), changedCopy(reading("SHP-A", 5))}); !errors.Is(err, custody.ErrReadingConflict) {
		t.Fatalf("conflict within a batch: %v, want ErrReadingConflict", err)
	}
	if n, err := rs.ReadingsCount(ctx); err != nil || n != 2 {
		t.Fatalf("count after a refused batch %d, want 2 (%v)", n, err)
	}
	got, wm, err := rs.ShipperReadings(ctx, "SHP-A", time.Time{}, time.Time{}, 0)
	if err != nil || len(got) != 2 || wm != first.Watermark || *got[1].TempC != *reading("SHP-A", 2).TempC {
		t.Fatalf("after refusal: %d readings, watermark %d (was %d), %v", len(got), wm, first.Watermark, err)
	}
}

func testQuarantine(t *testing.T, s Store) {
	q := s
	ctx := context.Background()
	if list, err := q.QuarantineList(ctx, 0, 0); err != nil || len(list) != 0 {
		t.Fatalf("empty quarantine: %d entries, %v", len(list), err)
	}
	const n = 5
	for i := range n {
		p := fmt.Appendf(nil, `{"shipper":"SHP-1","seq":%d,"temp_c":"bad"}`, i)
		if err := q.Quarantine(ctx, custody.QuarantineEntry{Topic: "shippers/SHP-1/telemetry", Received: t0.Add(time.Duration(i) * time.Second),
			Reason: fmt.Sprint("bad temp ", i), Size: len(p), Payload: p}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := q.QuarantineList(ctx, 0, 0)
	if err != nil || len(list) != n {
		t.Fatalf("%d entries, %v", len(list), err)
	}
	for k, e := range list {
		i := n - 1 - k // newest first
		p := fmt.Appendf(nil, `{"shipper":"SHP-1","seq":%d,"temp_c":"bad"}`, i)
		if e.Reason != fmt.Sprint("bad temp ", i) || !bytes.Equal(e.Payload, p) || e.Size != len(p) ||
			!e.Received.Equal(t0.Add(time.Duration(i)*time.Second)) || e.Topic != "shippers/SHP-1/telemetry" {
			t.Fatalf("entry %d: %+v", k, e)
		}
		if k > 0 && e.ID >= list[k-1].ID {
			t.Fatalf("entries not newest first: id %d after %d", e.ID, list[k-1].ID)
		}
	}
	if top, err := q.QuarantineList(ctx, 0, 2); err != nil || len(top) != 2 || top[0].ID != list[0].ID {
		t.Fatalf("limit 2: %+v %v", top, err)
	}
	// Paged with a cursor: the entries below it, newest first; an entry
	// stored between pages is newer than the cursor, so later pages do
	// not list it.
	var paged []uint64
	for before := uint64(0); ; {
		page, err := q.QuarantineList(ctx, before, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			paged = append(paged, e.ID)
		}
		if len(page) < 2 {
			break
		}
		before = page[len(page)-1].ID
		if len(paged) == 2 {
			if err := q.Quarantine(ctx, custody.QuarantineEntry{Topic: "shippers/SHP-1/telemetry", Received: t0.Add(time.Hour),
				Reason: "bad between pages", Size: 1, Payload: []byte("x")}); err != nil {
				t.Fatal(err)
			}
		}
		if len(paged) > 2*n {
			t.Fatalf("paging does not end: %v", paged)
		}
	}
	for k, e := range list {
		if k >= len(paged) || paged[k] != e.ID {
			t.Fatalf("paged quarantine %v, want the IDs of %d entries newest first", paged, n)
		}
	}
	if len(paged) != n {
		t.Fatalf("paged quarantine %v lists %d entries, want %d", paged, len(paged), n)
	}
	if below, err := q.QuarantineList(ctx, list[n-1].ID, 0); err != nil || len(below) != 0 {
		t.Fatalf("below the oldest: %d entries, %v", len(below), err)
	}
	// A backend that counts its quarantine (the operators' gauge) counts
	// every entry, the one stored between pages too.
	if c, ok := s.(interface {
		QuarantineCount(ctx context.Context) (int, error)
	}); ok {
		if got, err := c.QuarantineCount(ctx); err != nil || got != n+1 {
			t.Fatalf("QuarantineCount = %d, %v; want %d", got, err, n+1)
		}
	}
}

// testChainSites: the site names an enroll draft carries are kept in the
// chain's summary, through later appends, for Chain and Chains alike.
func testChainSites(t *testing.T, s Store) {
	ctx := context.Background()
	sites := custody.Sites{Collection: "COL-1", Manufacturing: "MFG-1", Treatment: "TRT-1"}
	coi := COI(1)
	d := Draft(coi, 1, true, 0)
	d.Sites = sites
	if _, err := s.Append(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, Draft(coi, 2, false, 1)); err != nil {
		t.Fatal(err)
	}
	ci, err := s.Chain(ctx, coi)
	if err != nil || ci.Sites != sites {
		t.Fatalf("Chain: sites %+v, %v; want %+v", ci.Sites, err, sites)
	}
	list, err := s.Chains(ctx, "")
	if err != nil || len(list) != 1 || list[0].Sites != sites {
		t.Fatalf("Chains: %+v, %v; want one chain with sites %+v", list, err, sites)
	}
}
