package custody

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// Group commit: many callers' items committed in one transaction by one
// goroutine, each caller answered only once the transaction holding its
// item is durable. A backend plugs its transaction in (BatchTxn); the
// queueing, the batching, the gathering of a batch and the draining at
// close are GroupCommit's.

// Outcome is one item's answer from a committed (or failed) batch.
type Outcome[R any] struct {
	Value R
	Err   error
}

// BatchTxn is one backend transaction being built by a GroupCommit, item
// by item, on its committing goroutine.
type BatchTxn[T, R any] interface {
	// Add puts the batch's next item into the transaction. It may do its
	// work now (while more items are gathered) or leave it to Commit.
	Add(item *T)
	// Commit commits the transaction. out has one entry per item added,
	// in the order added; Commit sets each item's own outcome there (an
	// item it refused alone gets its error, the others go on). A non-nil
	// error fails the whole batch: it is every item's answer, whatever
	// out says.
	Commit(out []Outcome[R]) error
}

// GroupCommitConfig configures a GroupCommit.
type GroupCommitConfig[T, R any] struct {
	// Begin starts the transaction of the next batch; required. It runs
	// on the committing goroutine.
	Begin func() BatchTxn[T, R]
	// Queue is how many items may wait for the committer; Submit blocks
	// while it is full. Zero means 4096.
	Queue int
	// MaxBatch caps the weight of a batch; the item that reaches it is the
	// batch's last. Zero means 4096.
	MaxBatch int
	// Weight is an item's share of MaxBatch and GatherBelow; nil counts 1
	// per item.
	Weight func(*T) int
	// GatherBelow and GatherWait: a batch weighing less than GatherBelow
	// waits up to GatherWait for more items before it commits. Zero
	// GatherWait: it does not wait.
	GatherBelow int
	GatherWait  time.Duration
	// FollowMin and FollowMax: once a commit held at least FollowMin
	// items, the next batch waits for the callers it answered, which
	// usually submit again within microseconds: for as many items as it
	// held plus those queued while it committed, at most a quarter of its
	// commit's duration and FollowMax. Zero FollowMax: it does not wait.
	FollowMin int
	FollowMax time.Duration
	// AfterCommit, if set, runs on the committing goroutine after each
	// batch is answered (a backend's housekeeping between transactions).
	AfterCommit func()
	// Now is the clock that times commits for FollowMax; time.Now if nil.
	Now func() time.Time
}

// GroupCommit commits items of type T, answered with R, in batches: see
// GroupCommitConfig for how a batch is gathered. It is safe for
// concurrent use. Items are added to a transaction in the order they were
// queued, and answered in that order.
type GroupCommit[T, R any] struct {
	cfg  GroupCommitConfig[T, R]
	reqs chan *batchReq[T, R]
	quit chan struct{}
	done chan struct{}

	// mu guards closed: Submit holds it shared while queueing, Close
	// exclusively, so nothing is queued after the final drain.
	mu     sync.RWMutex
	closed bool

	// round is held by the committing goroutine from the start of a
	// batch's commit until its AfterCommit has returned (Settle).
	round sync.Mutex
}

type batchReq[T, R any] struct {
	item T
	done func(R, error)  // asynchronous caller
	resp chan Outcome[R] // synchronous caller
}

// NewGroupCommit starts a GroupCommit's committing goroutine; Close stops
// it.
func NewGroupCommit[T, R any](cfg GroupCommitConfig[T, R]) (*GroupCommit[T, R], error) {
	if cfg.Begin == nil {
		return nil, fmt.Errorf("new group commit: Begin is required: %w", ErrInvalid)
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 4096
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 4096
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	g := &GroupCommit[T, R]{cfg: cfg, reqs: make(chan *batchReq[T, R], cfg.Queue), quit: make(chan struct{}), done: make(chan struct{})}
	go g.run()
	return g, nil
}

// Do queues item and waits until the batch holding it is committed, and
// returns its outcome. It gives up only while waiting for room in the
// queue (ctx's error); once queued the item may commit, so Do waits for
// the outcome even if ctx ends, and never reports failure for a durable
// item. ErrClosed: the GroupCommit is closed.
func (g *GroupCommit[T, R]) Do(ctx context.Context, item T) (R, error) {
	r := &batchReq[T, R]{item: item, resp: make(chan Outcome[R], 1)}
	if err := g.queue(ctx, r); err != nil {
		var zero R
		return zero, err
	}
	o := <-r.resp
	return o.Value, o.Err
}

// Submit queues item and returns at once; done is called from the
// committing goroutine with the item's outcome once its batch is committed
// (or failed), so it must not block for long. Submit blocks only while the
// queue is full (ctx's error if it ends meanwhile); ErrClosed: the
// GroupCommit is closed, and done is not called.
func (g *GroupCommit[T, R]) Submit(ctx context.Context, item T, done func(R, error)) error {
	return g.queue(ctx, &batchReq[T, R]{item: item, done: done})
}

func (g *GroupCommit[T, R]) queue(ctx context.Context, r *batchReq[T, R]) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return ErrClosed
	}
	select {
	case g.reqs <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close commits what was queued, stops the committing goroutine and
// returns once every queued item is answered. Later calls do nothing.
func (g *GroupCommit[T, R]) Close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		<-g.done
		return
	}
	g.closed = true
	g.mu.Unlock()
	close(g.quit)
	<-g.done
}

// Waiting returns how many items are queued, not yet in a batch.
func (g *GroupCommit[T, R]) Waiting() int { return len(g.reqs) }

func (g *GroupCommit[T, R]) weight(r *batchReq[T, R]) int {
	if g.cfg.Weight == nil {
		return 1
	}
	return g.cfg.Weight(&r.item)
}

// batch is the one being built.
type batch[T, R any] struct {
	g      *GroupCommit[T, R]
	txn    BatchTxn[T, R]
	reqs   []*batchReq[T, R]
	weight int
}

func (b *batch[T, R]) add(r *batchReq[T, R]) {
	b.reqs = append(b.reqs, r)
	b.weight += b.g.weight(r)
	b.txn.Add(&r.item)
}

// addQueued adds items already queued, without waiting, until the batch
// weighs limit; it reports whether it added any.
func (b *batch[T, R]) addQueued(limit int) bool {
	added := false
	for b.weight < limit {
		select {
		case r := <-b.g.reqs:
			b.add(r)
			added = true
		default:
			return added
		}
	}
	return added
}

// commit commits the batch and answers its callers. It returns how many
// items were queued, before any caller was answered, while it committed.
func (b *batch[T, R]) commit() (waiting int) {
	out := make([]Outcome[R], len(b.reqs))
	err := b.txn.Commit(out)
	waiting = len(b.g.reqs)
	for i, r := range b.reqs {
		o := out[i]
		if err != nil {
			o = Outcome[R]{Err: err}
		}
		if r.resp != nil {
			r.resp <- o
		} else if r.done != nil {
			r.done(o.Value, o.Err)
		}
	}
	return waiting
}

func (g *GroupCommit[T, R]) begin(first *batchReq[T, R]) *batch[T, R] {
	b := &batch[T, R]{g: g, txn: g.cfg.Begin()}
	b.add(first)
	b.addQueued(g.cfg.MaxBatch)
	return b
}

func (g *GroupCommit[T, R]) run() {
	defer close(g.done)
	var prev int                 // items in the previous commit
	var waiting int              // items queued while it committed
	var lastCommit time.Duration // how long it took
	var gather *time.Timer
	if g.cfg.GatherWait > 0 {
		gather = time.NewTimer(time.Hour)
		gather.Stop()
	}
	for {
		var first *batchReq[T, R]
		select {
		case first = <-g.reqs:
		case <-g.quit:
			g.drain()
			return
		}
		b := g.begin(first)
		if g.cfg.FollowMax > 0 && prev >= g.cfg.FollowMin {
			target := min(prev+waiting, g.cfg.MaxBatch)
			deadline := g.cfg.Now().Add(min(lastCommit/4, g.cfg.FollowMax))
			for b.weight < target && g.cfg.Now().Before(deadline) {
				if !b.addQueued(target) {
					runtime.Gosched()
				}
			}
		}
		if gather != nil && b.weight < g.cfg.GatherBelow {
			gather.Reset(g.cfg.GatherWait)
		wait:
			for b.weight < g.cfg.GatherBelow {
				select {
				case r := <-g.reqs:
					b.add(r)
				case <-gather.C:
					break wait
				case <-g.quit:
					break wait
				}
			}
			gather.Stop()
		}
		g.round.Lock()
		t0 := g.cfg.Now()
		prev = len(b.reqs)
		waiting = b.commit()
		lastCommit = g.cfg.Now().Sub(t0)
		if g.cfg.AfterCommit != nil {
			g.cfg.AfterCommit()
		}
		g.round.Unlock()
	}
}

// Settle waits until the batch being committed, if any, is answered and
// its AfterCommit has returned. A caller that has seen its item's outcome
// and then calls Settle knows that the housekeeping after its batch is
// done, which is what a test of that housekeeping needs to be
// deterministic.
func (g *GroupCommit[T, R]) Settle() {
	g.round.Lock()
	g.round.Unlock() // nothing to do inside: taking the lock is the wait
}

// drain commits what was queued before Close, in batches of MaxBatch.
func (g *GroupCommit[T, R]) drain() {
	for {
		select {
		case r := <-g.reqs:
			b := g.begin(r)
			for b.addQueued(g.cfg.MaxBatch) {
			}
			g.round.Lock()
			b.commit()
			if g.cfg.AfterCommit != nil {
				g.cfg.AfterCommit()
			}
			g.round.Unlock()
		default:
			return
		}
	}
}
