package sensors_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/sensors"
)

// flakySink fails its first attempts (as a full disk would), then stores.
// The outage is counted in calls, not timed, so a slow machine sees the
// same one.
type flakySink struct {
	inner    custody.ReadingSink
	failures int32 // the first calls that fail: counted, not timed
	calls    atomic.Int32
}

var _ custody.ReadingSink = (*flakySink)(nil)

var errDiskFull = errors.New("disk full")

func (f *flakySink) AddReadingsAsync(rs []custody.Reading, q *custody.QuarantineEntry, done func(custody.IngestResult, error)) error {
	if f.calls.Add(1) <= f.failures {
		go done(custody.IngestResult{}, fmt.Errorf("add readings: commit failed, nothing was written: %w", errDiskFull))
		return nil
	}
	return f.inner.AddReadingsAsync(rs, q, done)
}

// TestIngestResumesAfterStoreFailures: after the store failed five times,
// every message is stored and acknowledged without a reconnect, through
// a real paho subscriber and publisher, on the embedded broker and on a
// private Mosquitto with its default in-flight window (20 messages, which
// unacknowledged messages would fill for good: MQTT 3.1.1 resends only on
// reconnect).
func TestIngestResumesAfterStoreFailures(t *testing.T) {
	for _, broker := range []string{"embedded", "mosquitto"} {
		t.Run(broker, func(t *testing.T) {
			st, err := boltstore.Open(t.TempDir(), boltstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			const n = 60
			sink := &flakySink{inner: st, failures: 5}
			var logs logCounter
			prefix, clientID := "coidtest-"+randID(t), "coid-test-"+randID(t)
			pipe, err := sensors.NewPipeline(sensors.PipelineConfig{Sink: sink, Logger: logs.logger(), Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			defer pipe.Close()
			url := ""
			if broker == "embedded" {
				br, err := sensors.StartBroker(sensors.BrokerConfig{Listen: "127.0.0.1:0", Logger: quiet, Prefix: prefix, Pipeline: pipe,
					IngestClientID: clientID})
				if err != nil {
					t.Fatal(err)
				}
				defer br.Close()
				url = br.URL()
			} else {
				t.Setenv("COID_BENCH_MOSQ_INFLIGHT", "20") // Mosquitto's default
				url = startMosquitto(t)
			}
			sub, err := sensors.NewSubscriber(sensors.SubscriberConfig{URL: url, ClientID: clientID, Prefix: prefix, Pipeline: pipe,
				Logger: logs.logger()})
			if err != nil {
				t.Fatal(err)
			}
			sub.Start()
			defer sub.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := sub.WaitSubscribed(ctx); err != nil {
				t.Fatal(err)
			}
			pub := publisher(t, url)
			base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
			topic := sensors.TelemetryTopic(prefix, "SHP-1")
			toks := make([]mqtt.Token, n)
			for i := range n {
				toks[i] = pub.Publish(topic, 1, false, payload("SHP-1", i, base))
			}
			for i, tok := range toks {
				// With the embedded broker a PUBACK means stored.
				if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
					t.Fatalf("message %d: no PUBACK (%v); stats %+v", i, tok.Error(), pipe.Stats())
				}
			}
			if got := waitCount(t, st, n, 60*time.Second); got != n {
				t.Fatalf("stored %d of %d readings after the store failed; stats %+v", got, n, pipe.Stats())
			}
			// The counters are updated after the commit that answered the
			// publisher; give the last ones a moment.
			s := pipe.Stats()
			for deadline := time.Now().Add(60 * time.Second); s.Stored != n && time.Now().Before(deadline); s = pipe.Stats() {
				time.Sleep(10 * time.Millisecond)
			}
			if s.StoreFailed == 0 || s.Retries != s.StoreFailed || s.Abandoned != 0 || s.Retrying != 0 || s.Stored != n {
				t.Fatalf("stats %+v", s)
			}
			// The outage is logged when it starts and when it ends, not
			// once per failure (retries that fail after one that worked
			// start another); nothing reconnected.
			if e, w := logs.count("telemetry not stored"), logs.count("works again"); e < 1 || e > 5 || w < 1 {
				t.Fatalf("%d outage logs, %d recovery logs, want 1-5 and >= 1:\n%s", e, w, logs.String())
			}
			if logs.count("connection lost") != 0 {
				t.Fatalf("the subscriber reconnected:\n%s", logs.String())
			}
			t.Logf("stats %+v", s)
		})
	}
}
