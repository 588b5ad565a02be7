package sensors_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/sensors"
)

// sharedRun measures durable ingest by two instances on one PostgreSQL
// schema splitting the stream through a shared subscription: each has its
// own store connection pool, pipeline and subscriber (its own client ID,
// group "coid"), as two coid serve processes would. It returns messages
// per second from the first publish until both have committed all n, and
// fails unless exactly n readings are stored.
func sharedRun(tb testing.TB, url, schema string, pubs, n int) float64 {
	tb.Helper()
	ctx := context.Background()
	prefix := "coidshare-" + randID(tb)
	var pipes [2]*sensors.Pipeline
	var first *pgstore.Store
	for i := range pipes {
		st, err := pgstore.Open(ctx, schema, pgstore.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		defer st.Close()
		if first == nil {
			first = st
		}
		pipes[i], err = sensors.NewPipeline(sensors.PipelineConfig{Sink: st, Logger: quiet, Prefix: prefix})
		if err != nil {
			tb.Fatal(err)
		}
		defer pipes[i].Close()
		sub, err := sensors.NewSubscriber(sensors.SubscriberConfig{URL: url, ClientID: fmt.Sprintf("coid-%s-%d", prefix, i),
			Prefix: prefix, ShareGroup: "coid", Pipeline: pipes[i], Logger: quiet, MaxReconnectInterval: time.Second})
		if err != nil {
			tb.Fatal(err)
		}
		sub.Start()
		defer sub.Close()
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		err = sub.WaitSubscribed(wctx)
		cancel()
		if err != nil {
			tb.Fatal(err)
		}
	}
	stored := func() uint64 { return pipes[0].Stats().Stored + pipes[1].Stats().Stored }
	taken := func() uint64 { return pipes[0].Stats().Messages + pipes[1].Stats().Messages }
	start := time.Now()
	publishAll(tb, url, prefix, pubs, n, 0, taken)
	for deadline := time.Now().Add(120 * time.Second); stored() < uint64(n) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	rate := float64(n) / time.Since(start).Seconds()
	if a, b := pipes[0].Stats().Stored, pipes[1].Stats().Stored; a+b != uint64(n) || a == 0 || b == 0 {
		tb.Fatalf("shared: instances stored %d and %d readings, want %d in all from both", a, b, n)
	}
	if got, err := first.ReadingsCount(ctx); err != nil || got != n {
		tb.Fatalf("shared: %d readings in the store (%v), want %d", got, err, n)
	}
	return rate
}

// BenchmarkSharedIngest measures, in the same run and through the same
// private Mosquitto (configured as coid needs it, see mosquittoConf),
// durable ingest at QoS 1 (acknowledged after commit) by one instance on
// bbolt and by two instances on one PostgreSQL sharing the subscription
// ($share), and reports both and their ratio. Each iteration moves
// COID_BENCH_MSGS messages (default 40000) from COID_BENCH_PUBS
// publishers (default 4) through each; run with -benchtime 1x or 3x.
func BenchmarkSharedIngest(b *testing.B) {
	if os.Getenv("COID_TEST_MQTT_URL") == "" {
		b.Skip("COID_TEST_MQTT_URL not set: the benchmark runs its own Mosquitto")
	}
	url := startMosquitto(b)
	n := benchEnvInt("COID_BENCH_MSGS", 40000)
	pubs := benchEnvInt("COID_BENCH_PUBS", 4)
	var bolt, pg float64
	for range b.N {
		bolt += durableRun(b, url, pubs, n, 0)
		// An empty schema each time: the readings' keys repeat.
		pg += sharedRun(b, url, pgtest.Schema(b), pubs, n)
	}
	bolt, pg = bolt/float64(b.N), pg/float64(b.N)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(bolt, "bolt1-msgs/s")
	b.ReportMetric(pg, "pg2-msgs/s")
	b.ReportMetric(pg/bolt, "pg2/bolt1")
}
