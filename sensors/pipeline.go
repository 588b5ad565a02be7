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

// Sink is where a Pipeline commits what it decodes. custody/boltstore's
// Store is one: it group-commits concurrent batches in one transaction.
type Sink interface {
	// AddReadingsAsync queues readings, and a quarantined payload when q
	// is not nil, and calls done once they are durable (or failed). It
	// must store each reading identity once.
	AddReadingsAsync(readings []custody.Reading, q *custody.QuarantineEntry, done func(custody.IngestResult, error)) error
}

// Message is one MQTT message handed to a Pipeline.
type Message struct {
	Topic   string
	Payload []byte
	// Received is when the message arrived; zero means when the pipeline
	// takes it.
	Received time.Time
	// Ack is called once the message's readings are committed, or once a
	// malformed payload is quarantined. It is not called when storage
	// fails, so the broker redelivers the message. May be nil.
	Ack func()
}

// PipelineConfig configures a Pipeline.
type PipelineConfig struct {
	Sink   Sink
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
	Messages    uint64 `json:"messages"`
	Readings    uint64 `json:"readings"`
	Stored      uint64 `json:"stored"`
	Duplicates  uint64 `json:"duplicates"`
	Rejected    uint64 `json:"rejected"`
	StoreFailed uint64 `json:"store_failed"`
}

// Pipeline takes MQTT messages from a subscriber or broker hook, decodes
// them on a few workers, commits their readings through the Sink (which
// batches many messages per transaction) and acknowledges each message only
// after its commit. Malformed payloads are logged with the reason, kept in
// the Sink's quarantine, and acknowledged so that they are not redelivered
// forever.
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

	messages, readings, stored, dups, rejected, failed atomic.Uint64
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
	p := &Pipeline{cfg: cfg, in: make(chan Message, cfg.Queue), ackWake: make(chan struct{}, 1), ackDone: make(chan struct{})}
	for range cfg.Workers {
		p.workers.Go(p.work)
	}
	go p.acker()
	return p, nil
}

// Submit hands a message to the pipeline. It blocks while the queue is
// full (backpressure: the broker then holds the message) or until ctx ends.
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

// Close stops taking messages, finishes those already taken and waits for
// their commits and acknowledgements.
func (p *Pipeline) Close() {
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
}

// Stats returns the pipeline's counters.
func (p *Pipeline) Stats() PipelineStats {
	return PipelineStats{Messages: p.messages.Load(), Readings: p.readings.Load(), Stored: p.stored.Load(),
		Duplicates: p.dups.Load(), Rejected: p.rejected.Load(), StoreFailed: p.failed.Load()}
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

func (p *Pipeline) work() {
	for m := range p.in {
		p.handle(m)
	}
}

func (p *Pipeline) handle(m Message) {
	p.messages.Add(1)
	received := m.Received
	if received.IsZero() {
		received = p.cfg.Now()
	}
	received = received.UTC()
	shipper, err := ShipperFromTopic(p.cfg.Prefix, m.Topic)
	var rs []custody.Reading
	if err == nil {
		rs, err = Decode(shipper, m.Payload, received)
	}
	if err != nil {
		p.reject(m, received, err)
		return
	}
	p.readings.Add(uint64(len(rs)))
	p.inflight.Add(1)
	err = p.cfg.Sink.AddReadingsAsync(rs, nil, func(res custody.IngestResult, err error) {
		defer p.inflight.Done()
		if err != nil {
			p.failed.Add(1)
			p.cfg.Logger.Error("telemetry not stored; the broker will redeliver it", "topic", m.Topic, "readings", len(rs), "err", err)
			return
		}
		p.stored.Add(uint64(res.Stored))
		p.dups.Add(uint64(res.Duplicates))
		p.ack(m)
		if res.Stored > 0 && p.cfg.OnCommitted != nil {
			p.cfg.OnCommitted(rs, res)
		}
	})
	if err != nil {
		p.inflight.Done()
		p.failed.Add(1)
		p.cfg.Logger.Error("telemetry not stored; the broker will redeliver it", "topic", m.Topic, "err", err)
	}
}

// reject logs and quarantines a payload that cannot be stored as readings.
func (p *Pipeline) reject(m Message, received time.Time, reason error) {
	p.rejected.Add(1)
	// The reason names the element and field; the payload itself is kept
	// in the quarantine, not in the log.
	p.cfg.Logger.Warn("telemetry rejected", "topic", m.Topic, "bytes", len(m.Payload), "reason", reason.Error())
	q := &custody.QuarantineEntry{Topic: m.Topic, Received: received, Reason: reason.Error(), Size: len(m.Payload)}
	q.Payload = append([]byte(nil), m.Payload[:builtinMin(len(m.Payload), custody.MaxQuarantinePayload)]...)
	p.inflight.Add(1)
	err := p.cfg.Sink.AddReadingsAsync(nil, q, func(_ custody.IngestResult, err error) {
		defer p.inflight.Done()
		if err != nil {
			p.failed.Add(1)
			p.cfg.Logger.Error("quarantine not stored; the broker will redeliver the payload", "topic", m.Topic, "err", err)
			return
		}
		p.ack(m)
	})
	if err != nil {
		p.inflight.Done()
		p.failed.Add(1)
		p.cfg.Logger.Error("quarantine not stored; the broker will redeliver the payload", "topic", m.Topic, "err", err)
	}
}

func builtinMin(a, b int) int {
	if a < b {
		return a
	}
	return b
}
