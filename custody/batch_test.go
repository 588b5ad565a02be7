package custody_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// committer is a fake backend for GroupCommit: it records each batch's
// items in the order added, answers item v with v*10, refuses the items
// refuse says, fails the batches fail says, and, while gate is set, holds
// each commit until the test releases it.
type committer struct {
	mu       sync.Mutex
	batches  [][]int
	refuse   func(v int) bool
	fail     func(batch []int) bool
	gate     chan struct{} // each commit takes a value from it; nil: none
	started  chan int      // told the batch's first item when a commit starts
	onCommit func()        // called as each commit ends, if set
}

type fakeTxn struct {
	c     *committer
	items []int
}

func (t *fakeTxn) Add(v *int) { t.items = append(t.items, *v) }

func (t *fakeTxn) Commit(out []custody.Outcome[int]) error {
	if t.c.started != nil {
		t.c.started <- t.items[0]
	}
	if t.c.gate != nil {
		<-t.c.gate
	}
	t.c.mu.Lock()
	t.c.batches = append(t.c.batches, slices.Clone(t.items))
	t.c.mu.Unlock()
	if t.c.onCommit != nil {
		t.c.onCommit()
	}
	if t.c.fail != nil && t.c.fail(t.items) {
		return fmt.Errorf("batch %v: %w", t.items, errBatch)
	}
	for i, v := range t.items {
		out[i].Value = v * 10
		if t.c.refuse != nil && t.c.refuse(v) {
			out[i].Err = fmt.Errorf("item %d: %w", v, errItem)
		}
	}
	return nil
}

var (
	errBatch = errors.New("batch failed")
	errItem  = errors.New("item refused")
)

func (c *committer) got() [][]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.batches)
}

func newGroupCommit(t *testing.T, c *committer, cfg custody.GroupCommitConfig[int, int]) *custody.GroupCommit[int, int] {
	t.Helper()
	cfg.Begin = func() custody.BatchTxn[int, int] { return &fakeTxn{c: c} }
	g, err := custody.NewGroupCommit(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

// answers collects Submit's asynchronous answers in the order given.
type answers struct {
	mu  sync.Mutex
	got []string
	wg  sync.WaitGroup
}

func (a *answers) done(v int) func(int, error) {
	a.wg.Add(1)
	return func(r int, err error) {
		a.mu.Lock()
		a.got = append(a.got, fmt.Sprintf("%d:%d:%v", v, r, err))
		a.mu.Unlock()
		a.wg.Done()
	}
}

// waitFor fails the test if ch does not deliver within a generous bound
// (only to catch a hang).
func waitFor[V any](t *testing.T, ch <-chan V) V {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

// TestGroupCommitOrder: items queued while a commit runs make the next
// batch, added and answered in the order they were queued.
func TestGroupCommitOrder(t *testing.T) {
	c := &committer{gate: make(chan struct{}), started: make(chan int, 10)}
	g := newGroupCommit(t, c, custody.GroupCommitConfig[int, int]{})
	var a answers
	ctx := context.Background()
	if err := g.Submit(ctx, 0, a.done(0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.started) // batch [0] is committing: the rest queue
	for v := 1; v <= 5; v++ {
		if err := g.Submit(ctx, v, a.done(v)); err != nil {
			t.Fatal(err)
		}
	}
	c.gate <- struct{}{}
	waitFor(t, c.started)
	c.gate <- struct{}{}
	a.wg.Wait()
	if got, want := c.got(), [][]int{{0}, {1, 2, 3, 4, 5}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("batches %v, want %v", got, want)
	}
	want := []string{"0:0:<nil>", "1:10:<nil>", "2:20:<nil>", "3:30:<nil>", "4:40:<nil>", "5:50:<nil>"}
	if !slices.Equal(a.got, want) {
		t.Fatalf("answers %v, want %v", a.got, want)
	}
}

// TestGroupCommitErrors: an item refused fails alone, its batch's other
// items commit; a failed commit fails every item of its batch, those the
// backend refused too, and no other batch.
func TestGroupCommitErrors(t *testing.T) {
	c := &committer{gate: make(chan struct{}), started: make(chan int, 10),
		refuse: func(v int) bool { return v%2 == 1 },
		fail:   func(b []int) bool { return b[0] == 10 }}
	g := newGroupCommit(t, c, custody.GroupCommitConfig[int, int]{})
	var a answers
	ctx := context.Background()
	submit := func(vs ...int) {
		for _, v := range vs {
			if err := g.Submit(ctx, v, a.done(v)); err != nil {
				t.Fatal(err)
			}
		}
	}
	submit(0)
	waitFor(t, c.started)
	submit(1, 2, 3)
	c.gate <- struct{}{} // commits [0]
	waitFor(t, c.started)
	submit(10, 11, 12)
	c.gate <- struct{}{} // commits [1 2 3]
	waitFor(t, c.started)
	c.gate <- struct{}{} // fails [10 11 12]
	a.wg.Wait()
	if got, want := c.got(), [][]int{{0}, {1, 2, 3}, {10, 11, 12}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("batches %v, want %v", got, want)
	}
	want := []string{"0:0:<nil>", "1:10:item 1: item refused", "2:20:<nil>", "3:30:item 3: item refused",
		"10:0:batch [10 11 12]: batch failed", "11:0:batch [10 11 12]: batch failed", "12:0:batch [10 11 12]: batch failed"}
	if !slices.Equal(a.got, want) {
		t.Fatalf("answers\n%q\nwant\n%q", a.got, want)
	}
	// Do returns the same outcomes.
	c.gate = nil
	c.started = nil
	if v, err := g.Do(ctx, 4); v != 40 || err != nil {
		t.Fatalf("Do(4) = %d, %v", v, err)
	}
	if _, err := g.Do(ctx, 5); !errors.Is(err, errItem) {
		t.Fatalf("Do(5): %v", err)
	}
}

// TestGroupCommitContext: a caller gives up only while waiting for room in
// the queue; once queued it waits for the outcome even if its context
// ends, so it never reports failure for a committed item.
func TestGroupCommitContext(t *testing.T) {
	c := &committer{gate: make(chan struct{}), started: make(chan int, 10)}
	g := newGroupCommit(t, c, custody.GroupCommitConfig[int, int]{Queue: 1})
	ctx := context.Background()
	var a answers
	if err := g.Submit(ctx, 0, a.done(0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.started) // [0] committing

	// Queued, then its context ends: Do still answers the outcome.
	qctx, cancel := context.WithCancel(ctx)
	type res struct {
		v   int
		err error
	}
	queued := make(chan res, 1)
	go func() {
		v, err := g.Do(qctx, 1)
		queued <- res{v, err}
	}()
	for g.Waiting() != 1 {
		time.Sleep(time.Millisecond) // until Do has queued item 1
	}
	cancel()

	// The queue is full: a caller whose context ends gives up, not queued.
	fctx, fcancel := context.WithCancel(ctx)
	full := make(chan error, 1)
	go func() {
		_, err := g.Do(fctx, 2)
		full <- err
	}()
	fcancel()
	if err := waitFor(t, full); !errors.Is(err, context.Canceled) {
		t.Fatalf("Do on a full queue with its context ended: %v", err)
	}
	if err := g.Submit(fctx, 3, func(int, error) { t.Error("item 3 answered") }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Submit on a full queue with its context ended: %v", err)
	}

	c.gate <- struct{}{} // [0]
	waitFor(t, c.started)
	c.gate <- struct{}{} // [1]
	if r := waitFor(t, queued); r.v != 10 || r.err != nil {
		t.Fatalf("Do of a queued item after its context ended = %d, %v, want 10, nil", r.v, r.err)
	}
	a.wg.Wait()
	if got, want := c.got(), [][]int{{0}, {1}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("batches %v, want %v (2 and 3 were never queued)", got, want)
	}
}

// TestGroupCommitCloseDrains: Close commits everything queued before it,
// answers every caller, and then refuses new items with ErrClosed.
func TestGroupCommitCloseDrains(t *testing.T) {
	c := &committer{gate: make(chan struct{}), started: make(chan int, 10)}
	g := newGroupCommit(t, c, custody.GroupCommitConfig[int, int]{MaxBatch: 2})
	ctx := context.Background()
	var a answers
	if err := g.Submit(ctx, 0, a.done(0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.started)
	for v := 1; v <= 5; v++ {
		if err := g.Submit(ctx, v, a.done(v)); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan struct{})
	go func() {
		g.Close()
		close(closed)
	}()
	for range 3 { // [0], then what was queued, two at a time
		c.gate <- struct{}{}
		waitFor(t, c.started)
	}
	c.gate <- struct{}{}
	waitFor(t, closed)
	a.wg.Wait()
	if got, want := c.got(), [][]int{{0}, {1, 2}, {3, 4}, {5}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("batches %v, want %v", got, want)
	}
	if len(a.got) != 6 {
		t.Fatalf("answers %v", a.got)
	}
	if err := g.Submit(ctx, 9, func(int, error) { t.Error("answered after Close") }); !errors.Is(err, custody.ErrClosed) {
		t.Fatalf("Submit after Close: %v", err)
	}
	if _, err := g.Do(ctx, 9); !errors.Is(err, custody.ErrClosed) {
		t.Fatalf("Do after Close: %v", err)
	}
	g.Close() // again: nothing
}

// TestGroupCommitWeightAndGather: a batch is capped by the weight of its
// items, and one lighter than GatherBelow waits for more (here for as long
// as it takes) before it commits.
func TestGroupCommitWeightAndGather(t *testing.T) {
	c := &committer{}
	g := newGroupCommit(t, c, custody.GroupCommitConfig[int, int]{MaxBatch: 5, Weight: func(v *int) int { return *v },
		GatherBelow: 4, GatherWait: time.Hour})
	ctx := context.Background()
	var a answers
	for _, v := range []int{1, 1, 1, 1} { // weighs 4 only with the fourth
		if err := g.Submit(ctx, v, a.done(v)); err != nil {
			t.Fatal(err)
		}
	}
	a.wg.Wait()
	for _, v := range []int{3, 3} { // [3 3] weighs 6 > 5 but 3 alone is below 4: they gather
		if err := g.Submit(ctx, v, a.done(v)); err != nil {
			t.Fatal(err)
		}
	}
	a.wg.Wait()
	if got, want := c.got(), [][]int{{1, 1, 1, 1}, {3, 3}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("batches %v, want %v", got, want)
	}
	// Close ends a gather: the light batch commits at once.
	if err := g.Submit(ctx, 1, a.done(1)); err != nil {
		t.Fatal(err)
	}
	g.Close()
	a.wg.Wait()
	if got := c.got(); len(got) != 3 || !slices.Equal(got[2], []int{1}) {
		t.Fatalf("batches %v", got)
	}
}

// TestGroupCommitMaxBatch: items already queued fill a batch up to
// MaxBatch; the rest make the next.
func TestGroupCommitMaxBatch(t *testing.T) {
	c := &committer{gate: make(chan struct{}), started: make(chan int, 10)}
	g := newGroupCommit(t, c, custody.GroupCommitConfig[int, int]{MaxBatch: 3})
	ctx := context.Background()
	var a answers
	if err := g.Submit(ctx, 0, a.done(0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.started)
	for v := 1; v <= 7; v++ {
		if err := g.Submit(ctx, v, a.done(v)); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		c.gate <- struct{}{}
		waitFor(t, c.started)
	}
	c.gate <- struct{}{}
	a.wg.Wait()
	if got, want := c.got(), [][]int{{0}, {1, 2, 3}, {4, 5, 6}, {7}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("batches %v, want %v", got, want)
	}
}

// TestGroupCommitNeedsBegin: a GroupCommit without a transaction to plug
// in is refused.
func TestGroupCommitNeedsBegin(t *testing.T) {
	if _, err := custody.NewGroupCommit(custody.GroupCommitConfig[int, int]{}); !errors.Is(err, custody.ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
}

// TestGroupCommitFollow: after a commit of at least FollowMin items, the
// next batch waits for as many items as it held plus those queued while it
// committed (the callers it answered come back), within a quarter of the
// commit's duration. The clock here moves only while a commit runs, so the
// wait ends only when the items come.
func TestGroupCommitFollow(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	c := &committer{gate: make(chan struct{}), started: make(chan int, 10)}
	g := newGroupCommit(t, c, custody.GroupCommitConfig[int, int]{FollowMin: 1, FollowMax: time.Hour, Now: clock})
	c.onCommit = func() {
		mu.Lock()
		now = now.Add(time.Hour) // each commit takes an hour
		mu.Unlock()
	}
	ctx := context.Background()
	var a answers
	zero := make(chan struct{})
	done0 := a.done(0)
	if err := g.Submit(ctx, 0, func(v int, err error) { done0(v, err); close(zero) }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.started)
	for v := 1; v <= 3; v++ { // queued while [0] commits
		if err := g.Submit(ctx, v, a.done(v)); err != nil {
			t.Fatal(err)
		}
	}
	c.gate <- struct{}{}
	waitFor(t, zero)
	// The next batch holds 1, 2, 3 and waits for a fourth: 1 (the last
	// batch) + 3 (queued meanwhile).
	if err := g.Submit(ctx, 4, a.done(4)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, c.started)
	c.gate <- struct{}{}
	a.wg.Wait()
	if got, want := c.got(), [][]int{{0}, {1, 2, 3, 4}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("batches %v, want %v", got, want)
	}
}

// TestGroupCommitSettle: a caller that has its outcome and calls Settle
// returns only once the housekeeping after its batch (AfterCommit) is
// done, even though the outcome is answered before that housekeeping runs.
func TestGroupCommitSettle(t *testing.T) {
	release := make(chan struct{})
	var housekept sync.WaitGroup
	var mu sync.Mutex
	done := false
	housekept.Add(1)
	c := &committer{}
	g := newGroupCommit(t, c, custody.GroupCommitConfig[int, int]{AfterCommit: func() {
		<-release
		mu.Lock()
		done = true
		mu.Unlock()
	}})
	if v, err := g.Do(context.Background(), 7); err != nil || v != 70 {
		t.Fatalf("Do = %d, %v", v, err)
	}
	// The outcome is known while AfterCommit still waits for release.
	go func() { close(release); housekept.Done() }()
	g.Settle()
	mu.Lock()
	got := done
	mu.Unlock()
	if !got {
		t.Fatal("Settle returned before the batch's AfterCommit finished")
	}
	housekept.Wait()
	g.Settle() // idle: returns at once
}
