package sensors_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/sensors"
)

// logCounter keeps what a logger wrote, for tests to count lines.
type logCounter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logCounter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logCounter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logCounter) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// count returns how many lines contain s.
func (l *logCounter) count(s string) int {
	n := 0
	for line := range strings.Lines(l.String()) {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// switchSink fails every attempt while down, as a store whose disk is
// full or gone would, and stores otherwise.
type switchSink struct {
	inner    custody.ReadingSink
	down     atomic.Bool
	err      error
	attempts atomic.Int64
}

var _ custody.ReadingSink = (*switchSink)(nil)

func (s *switchSink) AddReadingsAsync(rs []custody.Reading, q *custody.QuarantineEntry, done func(custody.IngestResult, error)) error {
	s.attempts.Add(1)
	if s.down.Load() {
		go done(custody.IngestResult{}, s.err)
		return nil
	}
	return s.inner.AddReadingsAsync(rs, q, done)
}

func openStore(t *testing.T) *boltstore.Store {
	t.Helper()
	st, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// waitFor polls cond for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// TestPipelineHoldsMessagesWhileStoreFails: while the store fails, nothing
// is acknowledged, the pipeline takes no more than it holds (Submit
// blocks: backpressure) and logs the outage once; once the store works,
// every message is stored and acknowledged once.
func TestPipelineHoldsMessagesWhileStoreFails(t *testing.T) {
	st := openStore(t)
	sink := &switchSink{inner: st, err: errors.New("add readings: commit failed, nothing was written: input/output error")}
	sink.down.Store(true)
	var logs logCounter
	pipe, err := sensors.NewPipeline(sensors.PipelineConfig{Sink: sink, Logger: logs.logger(), Workers: 2, Queue: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer pipe.Close()
	const n = 50
	base := time.Now().Add(-time.Hour)
	acks := make([]atomic.Int32, n)
	var submitted atomic.Int32
	go func() {
		for i := range n {
			m := sensors.Message{Topic: sensors.TelemetryTopic(sensors.DefaultTopicPrefix, "SHP-1"), Payload: payload("SHP-1", i, base),
				Ack: func() { acks[i].Add(1) }}
			if err := pipe.Submit(context.Background(), m); err != nil {
				t.Error(err)
				return
			}
			submitted.Add(1)
		}
	}()
	// Let it retry a few times.
	if !waitFor(60*time.Second, func() bool { return pipe.Stats().Retries >= 6 }) {
		t.Fatalf("no retries: %+v", pipe.Stats())
	}
	// While it retries six more times, it takes nothing more (counted
	// retries, not a pause on the wall clock).
	s, sub := pipe.Stats(), submitted.Load()
	if !waitFor(60*time.Second, func() bool { return pipe.Stats().Retries >= s.Retries+6 }) {
		t.Fatalf("retries stopped: %+v", pipe.Stats())
	}
	if s2 := pipe.Stats(); s2.Messages != s.Messages || submitted.Load() != sub || sub >= n {
		t.Fatalf("the pipeline kept taking messages from a failing store: %d then %d taken, %d then %d submitted",
			s.Messages, s2.Messages, sub, submitted.Load())
	}
	for i := range acks {
		if acks[i].Load() != 0 {
			t.Fatalf("message %d acknowledged while nothing is stored", i)
		}
	}
	if c := logs.count("telemetry not stored"); c != 1 {
		t.Fatalf("%d outage log lines for %d failures:\n%s", c, s.StoreFailed, logs.String())
	}
	sink.down.Store(false)
	if !waitFor(60*time.Second, func() bool { return pipe.Stats().Stored == n }) {
		t.Fatalf("after the store recovered: %+v", pipe.Stats())
	}
	if !waitFor(60*time.Second, func() bool {
		for i := range acks {
			if acks[i].Load() == 0 {
				return false
			}
		}
		return true
	}) {
		t.Fatal("not every message acknowledged")
	}
	for i := range acks {
		if a := acks[i].Load(); a != 1 {
			t.Fatalf("message %d acknowledged %d times", i, a)
		}
	}
	if n, _ := st.ReadingsCount(context.Background()); n != 50 {
		t.Fatalf("%d readings stored", n)
	}
	if logs.count("works again") != 1 {
		t.Fatalf("recovery not logged:\n%s", logs.String())
	}
}

// TestPipelineCloseGivesUpWhileStoreFails: Close does not wait for a store
// that keeps failing; what it held stays unacknowledged for the broker to
// redeliver, and it says how much.
func TestPipelineCloseGivesUpWhileStoreFails(t *testing.T) {
	sink := &switchSink{inner: openStore(t), err: errors.New("input/output error")}
	sink.down.Store(true)
	var logs logCounter
	pipe, err := sensors.NewPipeline(sensors.PipelineConfig{Sink: sink, Logger: logs.logger(), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	var acked atomic.Int32
	base := time.Now().Add(-time.Hour)
	for i := range 10 {
		if err := pipe.Submit(context.Background(), sensors.Message{Topic: sensors.TelemetryTopic(sensors.DefaultTopicPrefix, "SHP-1"),
			Payload: payload("SHP-1", i, base), Ack: func() { acked.Add(1) }}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(60*time.Second, func() bool { return pipe.Stats().StoreFailed > 0 })
	// Close gives up the retries rather than waiting them out; the bound
	// only catches a hang.
	closed := make(chan struct{})
	go func() { pipe.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(60 * time.Second):
		t.Fatal("Close hangs while the store fails")
	}
	if s := pipe.Stats(); acked.Load() != 0 || s.Abandoned != 10 || s.Retrying != 0 {
		t.Fatalf("acked %d, stats %+v", acked.Load(), s)
	}
	if !strings.Contains(logs.String(), "messages=10") {
		t.Fatalf("Close did not report what it gave up:\n%s", logs.String())
	}
	if err := pipe.Submit(context.Background(), sensors.Message{}); !errors.Is(err, sensors.ErrPipelineClosed) {
		t.Fatalf("Submit after Close: %v", err)
	}
}

// TestPipelineClosedStoreGivesUp: a closed store is not retried.
func TestPipelineClosedStoreGivesUp(t *testing.T) {
	st, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	pipe, err := sensors.NewPipeline(sensors.PipelineConfig{Sink: st, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer pipe.Close()
	for i := range 3 {
		if err := pipe.Submit(context.Background(), sensors.Message{Topic: sensors.TelemetryTopic(sensors.DefaultTopicPrefix, "SHP-1"),
			Payload: payload("SHP-1", i, time.Now().Add(-time.Hour))}); err != nil {
			t.Fatal(err)
		}
	}
	if !waitFor(60*time.Second, func() bool { return pipe.Stats().Abandoned == 3 }) {
		t.Fatalf("stats %+v", pipe.Stats())
	}
	if s := pipe.Stats(); s.Retries != 0 {
		t.Fatalf("a closed store was retried: %+v", s)
	}
}

// flush returns an offline logger's flush: an array of readings seq from
// .. to-1 of shipper, with temperature temp.
func flush(shipper string, from, to int, base time.Time, temp float64) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := from; i < to; i++ {
		if i > from {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"shipper":%q,"seq":%d,"time":%q,"temp_c":%.1f}`, shipper, i, base.Add(time.Duration(i)*time.Second).Format(time.RFC3339), temp)
	}
	b.WriteByte(']')
	return b.Bytes()
}

// submitWait submits m and waits for its acknowledgement.
func submitWait(t *testing.T, pipe *sensors.Pipeline, topic string, p []byte) {
	t.Helper()
	acked := make(chan struct{})
	if err := pipe.Submit(context.Background(), sensors.Message{Topic: topic, Payload: p, Ack: func() { close(acked) }}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-acked:
	case <-time.After(60 * time.Second):
		t.Fatalf("not acknowledged; stats %+v", pipe.Stats())
	}
}

// TestPipelineQuarantinesConflicts: a logger that restarted its seq sends
// readings under identities already stored with other values. Its message
// is not taken for a duplicate: nothing of it is stored, it is
// acknowledged, logged at error level and quarantined whole with a reason
// naming the shipper, the identity and the values. A true redelivery stays
// a silent duplicate.
func TestPipelineQuarantinesConflicts(t *testing.T) {
	st := openStore(t)
	var logs logCounter
	pipe, err := sensors.NewPipeline(sensors.PipelineConfig{Sink: st, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer pipe.Close()
	topic := sensors.TelemetryTopic(sensors.DefaultTopicPrefix, "SHP-1")
	base := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	first := flush("SHP-1", 1, 3, base, -180)
	submitWait(t, pipe, topic, first)
	submitWait(t, pipe, topic, first) // a redelivery
	// After a reboot: seq 1 again, an hour later and warm, with 3000 more.
	rebooted := flush("SHP-1", 1, 3001, base.Add(time.Hour), -20)
	submitWait(t, pipe, topic, rebooted)
	if s := pipe.Stats(); s.Stored != 2 || s.Duplicates != 2 || s.Conflicts != 1 || s.Rejected != 1 {
		t.Fatalf("stats %+v", s)
	}
	if n, _ := st.ReadingsCount(context.Background()); n != 2 {
		t.Fatalf("%d readings stored, want the first 2 only", n)
	}
	q, err := st.QuarantineList(context.Background(), 0, 0)
	if err != nil || len(q) != 1 {
		t.Fatalf("quarantine: %d entries, %v", len(q), err)
	}
	if !bytes.Equal(q[0].Payload, rebooted) || q[0].Size != len(rebooted) || q[0].Topic != topic {
		t.Fatalf("quarantined %d of %d bytes", len(q[0].Payload), len(rebooted))
	}
	for _, want := range []string{"shipper SHP-1 seq 1 is already stored with different content", "temp_c -180 -> -20",
		"2 of the message's 3000 readings conflict"} {
		if !strings.Contains(q[0].Reason, want) {
			t.Errorf("reason %q does not say %q", q[0].Reason, want)
		}
	}
	if c := logs.count("level=ERROR msg=\"telemetry conflicts"); c != 1 {
		t.Fatalf("%d error lines:\n%s", c, logs.String())
	}
}

// TestPipelineQuarantinesWholePayload: a large flush refused for one bad
// element is kept whole, so it can be recovered.
func TestPipelineQuarantinesWholePayload(t *testing.T) {
	st := openStore(t)
	pipe, err := sensors.NewPipeline(sensors.PipelineConfig{Sink: st, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer pipe.Close()
	topic := sensors.TelemetryTopic(sensors.DefaultTopicPrefix, "SHP-1")
	base := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Second)
	p := flush("SHP-1", 0, 5000, base, -180)
	p = bytes.Replace(p, []byte(`"temp_c":-180.0}]`), []byte(`"temp_c":-300.0}]`), 1) // the last is below absolute zero
	if len(p) < 256<<10 {
		t.Fatalf("payload of %d bytes only", len(p))
	}
	submitWait(t, pipe, topic, p)
	q, err := st.QuarantineList(context.Background(), 0, 0)
	if err != nil || len(q) != 1 {
		t.Fatalf("quarantine: %d entries, %v", len(q), err)
	}
	if !bytes.Equal(q[0].Payload, p) || q[0].Size != len(p) {
		t.Fatalf("quarantined %d of %d bytes", len(q[0].Payload), len(p))
	}
	if n, _ := st.ReadingsCount(context.Background()); n != 0 {
		t.Fatalf("%d readings stored", n)
	}
}

// TestPipelineSenMLSkipsUnusedRecords: a SenML record coid does not use
// (here a string value) no longer loses the readings beside it: they are
// stored, the skip is logged and nothing is quarantined; a pack with a
// must-understand label coid does not know is quarantined, nothing stored.
func TestPipelineSenMLSkipsUnusedRecords(t *testing.T) {
	st := openStore(t)
	var logs logCounter
	pipe, err := sensors.NewPipeline(sensors.PipelineConfig{Sink: st, Logger: logs.logger()})
	if err != nil {
		t.Fatal(err)
	}
	defer pipe.Close()
	topic := sensors.TelemetryTopic(sensors.DefaultTopicPrefix, "SHP-1")
	bt := time.Now().UTC().Add(-3 * time.Hour).Unix()
	pack := fmt.Sprintf(`[{"bn":"SHP-1/","bt":%d,"n":"temp","u":"Cel","v":-180},{"n":"door","vs":"closed"},{"n":"temp","u":"Cel","v":-181,"t":60},{"n":"ln2","u":"/","v":0.71,"t":60}]`, bt)
	submitWait(t, pipe, topic, []byte(pack))
	if n, _ := st.ReadingsCount(context.Background()); n != 2 {
		t.Fatalf("%d readings stored, want 2", n)
	}
	if c := logs.count(`msg="telemetry records skipped"`); c != 1 || logs.count(`SHP-1/door`) != 1 {
		t.Fatalf("skip not logged once:\n%s", logs.String())
	}
	refused := fmt.Sprintf(`[{"bn":"SHP-1/","bt":%d,"n":"temp","u":"Cel","v":-170,"t":120,"crit_":1}]`, bt)
	submitWait(t, pipe, topic, []byte(refused))
	if n, _ := st.ReadingsCount(context.Background()); n != 2 {
		t.Fatalf("%d readings stored after a refused pack, want 2", n)
	}
	q, err := st.QuarantineList(context.Background(), 0, 0)
	if err != nil || len(q) != 1 || !strings.Contains(q[0].Reason, `label "crit_" must be understood`) {
		t.Fatalf("quarantine: %+v, %v", q, err)
	}
}
