package sensors_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/sensors"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func randID(t testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// env is a store, a pipeline and a subscriber connected to a broker.
type env struct {
	store  *boltstore.Store
	pipe   *sensors.Pipeline
	sub    *sensors.Subscriber
	broker *sensors.Broker
	url    string
	prefix string
}

// brokers returns the brokers to test against: always the embedded one,
// and Mosquitto (or any broker) when COID_TEST_MQTT_URL is set.
func brokers() []string {
	out := []string{"embedded"}
	if u := os.Getenv("COID_TEST_MQTT_URL"); u != "" {
		out = append(out, u)
	}
	return out
}

func newEnv(t testing.TB, broker string) *env {
	t.Helper()
	st, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: st, prefix: "coidtest-" + randID(t)}
	e.pipe, err = sensors.NewPipeline(sensors.PipelineConfig{Sink: st, Logger: quiet, Prefix: e.prefix})
	if err != nil {
		t.Fatal(err)
	}
	e.url = broker
	clientID := "coid-test-" + randID(t)
	if broker == "embedded" {
		e.broker, err = sensors.StartBroker(sensors.BrokerConfig{Listen: "127.0.0.1:0", Logger: quiet, Prefix: e.prefix, Pipeline: e.pipe,
			IngestClientID: clientID})
		if err != nil {
			t.Fatal(err)
		}
		e.url = e.broker.URL()
	}
	e.sub, err = sensors.NewSubscriber(sensors.SubscriberConfig{URL: e.url, ClientID: clientID, Prefix: e.prefix,
		Pipeline: e.pipe, Logger: quiet, MaxReconnectInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.sub.Start()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := e.sub.WaitSubscribed(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.close)
	return e
}

func (e *env) close() {
	e.sub.Close()
	if e.broker != nil {
		e.broker.Close()
	}
	e.pipe.Close()
	e.store.Close()
}

func publisher(t testing.TB, url string) mqtt.Client {
	t.Helper()
	c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(url).SetClientID("pub-" + randID(t)).SetCleanSession(true))
	if tok := c.Connect(); !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c
}

func payload(shipper string, seq int, base time.Time) []byte {
	return fmt.Appendf(nil, `{"shipper":%q,"seq":%d,"time":%q,"temp_c":%.1f,"tilt_deg":2,"lid_open":false}`,
		shipper, seq, base.Add(time.Duration(seq)*time.Second).Format(time.RFC3339), -180+float64(seq%10)/10)
}

func waitCount(t testing.TB, st *boltstore.Store, want int, d time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		n, err := st.ReadingsCount(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestIngestThroughBroker publishes readings with duplicates, an offline
// flush that overlaps them, and malformed payloads through a real paho
// publisher, and checks every reading is stored exactly once.
func TestIngestThroughBroker(t *testing.T) {
	for _, b := range brokers() {
		t.Run(b, func(t *testing.T) {
			e := newEnv(t, b)
			pub := publisher(t, e.url)
			base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
			const shippers, per = 4, 250
			var toks []mqtt.Token
			// Mosquitto's default max_queued_messages (1000) drops QoS 1
			// messages for a subscriber that falls further behind, so the
			// publisher keeps the backlog under a few hundred messages.
			sent := 0
			pace := func() {
				sent++
				if sent%200 != 0 {
					return
				}
				deadline := time.Now().Add(60 * time.Second)
				for e.pipe.Stats().Messages+300 < uint64(sent) && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
				}
			}
			for s := 0; s < shippers; s++ {
				id := fmt.Sprintf("SHP-%d", s)
				topic := sensors.TelemetryTopic(e.prefix, id)
				for i := 0; i < per; i++ {
					p := payload(id, i, base)
					toks = append(toks, pub.Publish(topic, 1, false, p))
					pace()
					if i%5 == 0 { // a redelivery
						toks = append(toks, pub.Publish(topic, 1, false, p))
						pace()
					}
				}
				// An offline logger flushing the last 50 again as an array.
				var arr []byte
				arr = append(arr, '[')
				for i := per - 50; i < per; i++ {
					if i > per-50 {
						arr = append(arr, ',')
					}
					arr = append(arr, payload(id, i, base)...)
				}
				arr = append(arr, ']')
				toks = append(toks, pub.Publish(topic, 1, false, arr))
				// Malformed: below absolute zero, and not JSON.
				toks = append(toks, pub.Publish(topic, 1, false, []byte(fmt.Sprintf(`{"shipper":%q,"time":%q,"temp_c":-300}`, id, base.Format(time.RFC3339)))))
				toks = append(toks, pub.Publish(topic, 1, false, []byte("not json")))
			}
			for _, tok := range toks {
				if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
					t.Fatalf("publish: %v", tok.Error())
				}
			}
			want := shippers * per
			if n := waitCount(t, e.store, want, 60*time.Second); n != want {
				t.Fatalf("stored %d readings, want %d", n, want)
			}
			// Let stragglers (forwarded copies) arrive, then check again.
			time.Sleep(200 * time.Millisecond)
			if n := waitCount(t, e.store, want+1, 0); n != want {
				t.Fatalf("stored %d readings after settling, want %d", n, want)
			}
			for s := 0; s < shippers; s++ {
				rs, _, err := e.store.ShipperReadings(context.Background(), fmt.Sprintf("SHP-%d", s), time.Time{}, time.Time{}, 0)
				if err != nil || len(rs) != per {
					t.Fatalf("shipper %d: %d readings, %v", s, len(rs), err)
				}
				for i, r := range rs {
					if !r.HasSeq || r.Seq != uint64(i) {
						t.Fatalf("shipper %d reading %d has seq %d", s, i, r.Seq)
					}
				}
			}
			deadline := time.Now().Add(60 * time.Second)
			for {
				q, err := e.store.QuarantineList(context.Background(), 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				if len(q) >= 2*shippers || time.Now().After(deadline) {
					// The embedded broker forwards nothing it rejected, so
					// each malformed payload is quarantined once or twice.
					if len(q) < 2*shippers {
						t.Fatalf("quarantine has %d entries, want >= %d", len(q), 2*shippers)
					}
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// blockingSink holds every commit until released.
type blockingSink struct {
	inner   custody.ReadingSink
	release chan struct{}
}

func (b *blockingSink) AddReadingsAsync(rs []custody.Reading, q *custody.QuarantineEntry, done func(custody.IngestResult, error)) error {
	go func() {
		<-b.release
		if err := b.inner.AddReadingsAsync(rs, q, done); err != nil {
			done(custody.IngestResult{}, err)
		}
	}()
	return nil
}

// TestEmbeddedBrokerAcksAfterCommit checks that a publisher's PUBACK waits
// for the commit.
func TestEmbeddedBrokerAcksAfterCommit(t *testing.T) {
	st, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sink := &blockingSink{inner: st, release: make(chan struct{})}
	pipe, err := sensors.NewPipeline(sensors.PipelineConfig{Sink: sink, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	br, err := sensors.StartBroker(sensors.BrokerConfig{Listen: "127.0.0.1:0", Logger: quiet, Pipeline: pipe})
	if err != nil {
		t.Fatal(err)
	}
	pub := publisher(t, br.URL())
	tok := pub.Publish(sensors.TelemetryTopic(sensors.DefaultTopicPrefix, "SHP-1"), 1, false, payload("SHP-1", 1, time.Now().Add(-time.Minute)))
	if tok.WaitTimeout(300 * time.Millisecond) {
		t.Fatal("PUBACK before the reading was committed")
	}
	close(sink.release)
	if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
		t.Fatalf("no PUBACK after commit: %v", tok.Error())
	}
	if n, _ := st.ReadingsCount(context.Background()); n != 1 {
		t.Fatalf("%d readings stored", n)
	}
	pub.Disconnect(50)
	br.Close()
	pipe.Close()
}

func TestBrokerAddressInUse(t *testing.T) {
	br, err := sensors.StartBroker(sensors.BrokerConfig{Listen: "127.0.0.1:0", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	_, err = sensors.StartBroker(sensors.BrokerConfig{Listen: br.Addr(), Logger: quiet})
	if err == nil || !errorsIs(err, sensors.ErrAddrInUse) {
		t.Fatalf("second broker on %s: %v", br.Addr(), err)
	}
}

// TestPersistentSession: messages published while coid is down are
// delivered when it comes back (same client ID, CleanSession=false).
func TestPersistentSession(t *testing.T) {
	u := os.Getenv("COID_TEST_MQTT_URL")
	if u == "" {
		skipUnlessCI(t, "COID_TEST_MQTT_URL not set")
	}
	st, err := boltstore.Open(t.TempDir(), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	prefix, id := "coidtest-"+randID(t), "coid-test-"+randID(t)
	start := func() (*sensors.Pipeline, *sensors.Subscriber) {
		pipe, _ := sensors.NewPipeline(sensors.PipelineConfig{Sink: st, Logger: quiet, Prefix: prefix})
		sub, err := sensors.NewSubscriber(sensors.SubscriberConfig{URL: u, ClientID: id, Prefix: prefix, Pipeline: pipe, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		sub.Start()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := sub.WaitSubscribed(ctx); err != nil {
			t.Fatal(err)
		}
		return pipe, sub
	}
	pipe, sub := start()
	sub.Close()
	pipe.Close()
	pub := publisher(t, u)
	base := time.Now().Add(-time.Hour)
	for i := 0; i < 50; i++ {
		if tok := pub.Publish(sensors.TelemetryTopic(prefix, "SHP-P"), 1, false, payload("SHP-P", i, base)); !tok.WaitTimeout(60 * time.Second) {
			t.Fatal("publish timed out")
		}
	}
	pipe, sub = start()
	defer pipe.Close()
	defer sub.Close()
	if n := waitCount(t, st, 50, 60*time.Second); n != 50 {
		t.Fatalf("after restart stored %d of 50", n)
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// skipUnlessCI skips a test whose outside part (a broker, a schema, a
// tool) is missing, except in CI (CI=true), where it must run and so
// fails instead.
func skipUnlessCI(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv("CI") != "" {
		tb.Fatalf("required in CI: %s", why)
	}
	tb.Skip(why)
}
