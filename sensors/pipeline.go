package sensors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coid-project/coid/custody"
)

// Message is one MQTT message handed to a Pipeline.
type Message struct {
	// Topic is the topic the message was published to.
	Topic string
	// Payload is the message's body; the pipeline keeps it until the
	// message is acknowledged or given up, and never changes it.
	Payload []byte
	// Received is when the message arrived; zero means when the pipeline
	// takes it.
	Received time.Time
	// Ack is called once the message's readings are committed, or once a
	// payload refused is quarantined. While storing fails the pipeline
	// retries; a message it gives up at Close is never acknowledged, so
	// the broker redelivers it. May be nil.
	Ack func()
}

// PipelineConfig configures a Pipeline.
type PipelineConfig struct {
	// Sink stores the readings and the quarantine; required.
	// custody/boltstore's Store is one: it group-commits concurrent
	// batches in one transaction.
	Sink custody.ReadingSink
	// Logger hears of payloads refused and of storage failures; required.
	Logger *slog.Logger
	// Prefix is the telemetry topic prefix; DefaultTopicPrefix if empty.
	Prefix string
	// Now is the clock for receive times; time.Now if nil.
	Now func() time.Time
	// Queue bounds the messages waiting to be decoded (default 8192).
	// Submit blocks while it is full.
	Queue int
	// Workers decode in parallel (default GOMAXPROCS).
	Workers int
	// OnCommitted, if set, is called after each batch of new readings is
	// durable (from the committing goroutine: it must not block).
	OnCommitted func(readings []custody.Reading, res custody.IngestResult)
}

// PipelineStats counts what a Pipeline did.
type PipelineStats struct {
	// Messages is the number of messages taken.
	Messages uint64 `json:"messages"`
	// Readings is the number of readings decoded from them.
	Readings uint64 `json:"readings"`
	// Stored is the number of readings stored for the first time.
	Stored uint64 `json:"stored"`
	// Duplicates is the number of readings already stored, identical.
	Duplicates uint64 `json:"duplicates"`
	// Rejected is the number of messages refused and quarantined.
	Rejected uint64 `json:"rejected"`
	// Conflicts is the number of those refused because a reading's
	// identity was already stored with different content.
	Conflicts uint64 `json:"conflicts"`
	// StoreFailed is the number of attempts to store that failed.
	StoreFailed uint64 `json:"store_failed"`
	// Retries is the number of attempts repeated after a failure.
	Retries uint64 `json:"retries"`
	// Retrying is the number of messages waiting to be tried again.
	Retrying uint64 `json:"retrying"`
	// Abandoned is the number of messages given up unstored, at Close or
	// because the store was closed; the broker redelivers them.
	Abandoned uint64 `json:"abandoned"`
}

// Pipeline takes MQTT messages from a subscriber or broker hook, decodes
// them on a few workers, commits their readings through the Sink (which
// batches many messages per transaction) and acknowledges each message only
// after its commit. Malformed payloads, and messages whose readings
// conflict with readings already stored under the same identity
// (custody.ErrReadingConflict), are logged with the reason, kept whole in
// the Sink's quarantine, and acknowledged so that they are not redelivered
// forever.
//
// When storing fails, the message stays unacknowledged and is tried again
// after a back-off (50 ms doubling to 2 s) until it is stored, and the
// workers take no new messages meanwhile: the queue fills, Submit blocks,
// and the broker keeps what follows (backpressure). Nothing is lost and
// nothing stalls: under MQTT 3.1.1 a broker resends unacknowledged
// messages only on a reconnect, so a message merely left unacknowledged
// would hold one of the broker's in-flight slots until then, and with
// all of them held it sends nothing more. The outage is logged when it
// starts, every 30 s while it lasts, and when it ends. Only Close gives
// up the messages still waiting (the broker redelivers them to the
// persistent session, or the publisher sends them again).
type Pipeline struct {
	cfg      PipelineConfig
	in       chan Message
	inflight sync.WaitGroup
	workers  sync.WaitGroup

	// Acknowledgements wait in ackQ for the acker goroutine, which runs
	// them in batches (a whole group commit's at a time).
	ackMu    sync.Mutex
	ackQ     []func()
	ackSpare []func()
	ackWake  chan struct{}
	ackStop  bool
	ackDone  chan struct{}

	mu     sync.RWMutex
	closed bool

	// stopping is closed when Close begins: waiting retries give up and
	// workers no longer wait for the store.
	stopping chan struct{}
	// failing is set while the store fails (the last attempt failed);
	// workers wait on healthCond until it is cleared.
	failing        atomic.Bool
	healthMu       sync.Mutex
	healthCond     *sync.Cond
	outageStart    time.Time
	outageFailures uint64
	lastFailureLog time.Time
	retrying       atomic.Int64

	messages, readings, stored, dups, rejected, conflicts, failed, retries, abandoned atomic.Uint64
}

// ErrPipelineClosed is returned by Submit after Close; the message was not
// taken and must not be acknowledged.
var ErrPipelineClosed = errors.New("telemetry pipeline closed")

// NewPipeline starts a pipeline's workers.
func NewPipeline(cfg PipelineConfig) (*Pipeline, error) {
	if cfg.Sink == nil || cfg.Logger == nil {
		return nil, fmt.Errorf("new pipeline: sink and logger are required: %w", custody.ErrInvalid)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultTopicPrefix
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 8192
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	p := &Pipeline{cfg: cfg, in: make(chan Message, cfg.Queue), ackWake: make(chan struct{}, 1), ackDone: make(chan struct{}),
		stopping: make(chan struct{})}
	p.healthCond = sync.NewCond(&p.healthMu)
	for range cfg.Workers {
		p.workers.Go(p.work)
	}
	go p.acker()
	return p, nil
}

// Submit hands a message to the pipeline. It blocks while the queue is
// full (backpressure: the broker then holds the message), as it soon is
// while the store fails, or until ctx ends.
func (p *Pipeline) Submit(ctx context.Context, m Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrPipelineClosed
	}
	select {
	case p.in <- m:
		return nil
	default:
	}
	select {
	case p.in <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Queued returns how many messages wait in the queue for a worker.
func (p *Pipeline) Queued() int { return len(p.in) }

// Close stops taking messages, finishes those already taken and waits for
// their commits and acknowledgements. It does not wait for a failing
// store: messages waiting for a retry are given up at once, those still
// queued are tried once, and what is not stored stays unacknowledged (the
// broker redelivers it); the log says how many.
func (p *Pipeline) Close() {
	p.healthMu.Lock()
	if !p.isStopping() {
		close(p.stopping)
		p.healthCond.Broadcast()
	}
	p.healthMu.Unlock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.in)
	p.mu.Unlock()
	p.workers.Wait()
	p.inflight.Wait()
	p.ackMu.Lock()
	p.ackStop = true
	p.ackMu.Unlock()
	p.wakeAcker()
	<-p.ackDone
	if n := p.abandoned.Load(); n > 0 {
		p.cfg.Logger.Warn("telemetry pipeline stopped with messages not stored; the broker will redeliver them", "messages", n)
	}
}

// Stats returns the pipeline's counters.
func (p *Pipeline) Stats() PipelineStats {
	return PipelineStats{Messages: p.messages.Load(), Readings: p.readings.Load(), Stored: p.stored.Load(),
		Duplicates: p.dups.Load(), Rejected: p.rejected.Load(), Conflicts: p.conflicts.Load(), StoreFailed: p.failed.Load(),
		Retries: p.retries.Load(), Retrying: uint64(max(p.retrying.Load(), 0)), Abandoned: p.abandoned.Load()}
}

// acker runs acknowledgements off the committing goroutine, so a slow
// client connection never stalls the store's writer. It takes all that
// are waiting at once: one wake-up per group commit, not per message.
func (p *Pipeline) acker() {
	defer close(p.ackDone)
	for {
		p.ackMu.Lock()
		for len(p.ackQ) == 0 && !p.ackStop {
			p.ackMu.Unlock()
			<-p.ackWake
			p.ackMu.Lock()
		}
		fs, stop := p.ackQ, p.ackStop
		p.ackQ, p.ackSpare = p.ackSpare[:0], nil
		p.ackMu.Unlock()
		for i, f := range fs {
			f()
			fs[i] = nil
		}
		p.ackMu.Lock()
		if cap(fs) <= 1<<16 {
			p.ackSpare = fs[:0]
		}
		p.ackMu.Unlock()
		if stop && len(fs) == 0 {
			return
		}
	}
}

func (p *Pipeline) wakeAcker() {
	select {
	case p.ackWake <- struct{}{}:
	default:
	}
}

// ack queues m's acknowledgement for the acker; it never blocks.
func (p *Pipeline) ack(m Message) {
	if m.Ack == nil {
		return
	}
	p.ackMu.Lock()
	p.ackQ = append(p.ackQ, m.Ack)
	first := len(p.ackQ) == 1
	p.ackMu.Unlock()
	if first {
		p.wakeAcker()
	}
}

// Retries of a message whose commit failed wait retryFirst, then twice as
// long after each failure, at most retryMax; a storage outage is logged at
// once, then at most every failureLogEvery.
const (
	retryFirst      = 50 * time.Millisecond
	retryMax        = 2 * time.Second
	failureLogEvery = 30 * time.Second
)

// job is a message the pipeline has taken, from its decoding until it is
// acknowledged or given up: its readings, or the quarantine entry of a
// payload refused. It holds one count of Pipeline.inflight.
type job struct {
	p        *Pipeline
	m        Message
	received time.Time
	rs       []custody.Reading
	q        *custody.QuarantineEntry
	attempts int
}

func (p *Pipeline) work() {
	for m := range p.in {
		p.handle(m)
	}
}

func (p *Pipeline) handle(m Message) {
	// While the store fails, take nothing new: the queue fills, Submit
	// blocks, and the broker keeps the messages (backpressure).
	p.waitStore()
	p.messages.Add(1)
	received := m.Received
	if received.IsZero() {
		received = p.cfg.Now()
	}
	j := &job{p: p, m: m, received: received.UTC()}
	shipper, err := ShipperFromTopic(p.cfg.Prefix, m.Topic)
	if err == nil {
		var skipped []Skipped
		j.rs, skipped, err = DecodeDetail(shipper, m.Payload, j.received)
		if err == nil && len(skipped) > 0 {
			// Records coid does not use (RFC 8428 lets a receiver skip
			// them); the readings beside them are stored.
			p.cfg.Logger.Info("telemetry records skipped", "topic", m.Topic, "skipped", len(skipped), "first", skipped[0].String())
		}
	}
	p.inflight.Add(1)
	if err != nil {
		p.reject(j, err)
	} else {
		p.readings.Add(uint64(len(j.rs)))
	}
	p.submit(j)
}

// submit hands j to the Sink; done gets the outcome.
func (p *Pipeline) submit(j *job) {
	j.attempts++
	if err := p.cfg.Sink.AddReadingsAsync(j.rs, j.q, j.done); err != nil {
		j.done(custody.IngestResult{}, err)
	}
}

// done is the outcome of one attempt to store j. It runs on the Sink's
// committing goroutine, so it never blocks: a retry or a quarantine is
// submitted from a goroutine of its own.
func (j *job) done(res custody.IngestResult, err error) {
	p := j.p
	switch {
	case err == nil:
		p.storeWorks()
		if j.q == nil {
			p.stored.Add(uint64(res.Stored))
			p.dups.Add(uint64(res.Duplicates))
		}
		p.ack(j.m)
		if j.q == nil && res.Stored > 0 && p.cfg.OnCommitted != nil {
			p.cfg.OnCommitted(j.rs, res)
		}
		p.inflight.Done()
	case j.q == nil && errors.Is(err, custody.ErrReadingConflict):
		// Refused for what it says, not for a failure: keep it for
		// review instead, and acknowledge it once it is kept.
		go func() {
			p.reject(j, err)
			p.submit(j)
		}()
	default:
		p.failed.Add(1)
		if p.isStopping() || errors.Is(err, custody.ErrClosed) {
			p.abandon(j, err)
			return
		}
		p.storeFails(j, err)
		p.retrying.Add(1)
		go p.retry(j)
	}
}

// retry submits j again after its back-off, unless the pipeline stops
// first.
func (p *Pipeline) retry(j *job) {
	d := retryMax
	if j.attempts < 10 {
		d = min(retryFirst<<(j.attempts-1), retryMax)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		p.retrying.Add(-1)
		p.retries.Add(1)
		p.submit(j)
	case <-p.stopping:
		p.retrying.Add(-1)
		p.abandon(j, ErrPipelineClosed)
	}
}

// abandon gives j up unacknowledged: the broker delivers it again (to the
// persistent session, or the publisher sends it again).
func (p *Pipeline) abandon(j *job, err error) {
	if p.abandoned.Add(1) == 1 {
		// The first only: Close reports how many.
		p.cfg.Logger.Warn("telemetry not stored and given up; the broker will redeliver it", "topic", j.m.Topic, "err", err)
	}
	p.inflight.Done()
}

func (p *Pipeline) isStopping() bool {
	select {
	case <-p.stopping:
		return true
	default:
		return false
	}
}

// storeFails records a failed attempt: intake pauses until an attempt
// succeeds. The first failure of an outage is logged, then at most one
// every failureLogEvery.
func (p *Pipeline) storeFails(j *job, err error) {
	p.healthMu.Lock()
	defer p.healthMu.Unlock()
	now := time.Now()
	if !p.failing.Load() {
		p.failing.Store(true)
		p.outageStart, p.outageFailures = now, 0
	}
	p.outageFailures++
	if now.Sub(p.lastFailureLog) >= failureLogEvery {
		p.lastFailureLog = now
		p.cfg.Logger.Error("telemetry not stored: intake paused, messages kept unacknowledged and retried until the store works",
			"topic", j.m.Topic, "failures", p.outageFailures, "failing_since", p.outageStart, "retrying", p.retrying.Load()+1, "err", err)
	}
}

// storeWorks records a successful commit, which ends an outage.
func (p *Pipeline) storeWorks() {
	if !p.failing.Load() {
		return
	}
	p.healthMu.Lock()
	defer p.healthMu.Unlock()
	if !p.failing.Load() {
		return
	}
	p.failing.Store(false)
	p.lastFailureLog = time.Time{}
	p.healthCond.Broadcast()
	p.cfg.Logger.Warn("telemetry store works again: intake resumed", "failures", p.outageFailures,
		"outage", time.Since(p.outageStart).Round(time.Millisecond), "retrying", p.retrying.Load())
}

// waitStore waits while the store fails, until an attempt succeeds or the
// pipeline stops.
func (p *Pipeline) waitStore() {
	if !p.failing.Load() {
		return
	}
	p.healthMu.Lock()
	for p.failing.Load() && !p.isStopping() {
		p.healthCond.Wait()
	}
	p.healthMu.Unlock()
}

// reject logs why j's message cannot be stored as readings and turns j
// into the quarantine of its payload.
func (p *Pipeline) reject(j *job, reason error) {
	p.rejected.Add(1)
	// The reason names the element and field, or the reading that
	// conflicts; the payload itself is kept in the quarantine, not in the
	// log.
	if errors.Is(reason, custody.ErrReadingConflict) {
		p.conflicts.Add(1)
		p.cfg.Logger.Error("telemetry conflicts with readings already stored: nothing of it stored, payload quarantined for review",
			"topic", j.m.Topic, "bytes", len(j.m.Payload), "readings", len(j.rs), "reason", reason.Error())
	} else {
		p.cfg.Logger.Warn("telemetry rejected", "topic", j.m.Topic, "bytes", len(j.m.Payload), "reason", reason.Error())
	}
	// The whole payload: it is at most MaxPayloadBytes unless it was
	// refused for its size alone.
	payload := j.m.Payload[:min(len(j.m.Payload), MaxPayloadBytes)]
	j.q = &custody.QuarantineEntry{Topic: j.m.Topic, Received: j.received, Reason: reason.Error(), Size: len(j.m.Payload), Payload: payload}
	j.rs, j.attempts = nil, 0
}
