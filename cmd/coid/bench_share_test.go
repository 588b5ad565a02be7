package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/sensors"
	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// BenchmarkSharedIngestProcesses measures durable ingest through a private
// Mosquitto (QoS 1, acknowledged after commit) by coid serve processes, in
// the same run: one on bbolt, then two on one PostgreSQL schema splitting
// the stream through a shared subscription (--mqtt-share-group, each its
// own client ID, both with one --checkpoint-key), and reports both rates
// and their ratio. Each iteration publishes COID_BENCH_MSGS single-reading
// messages (default 40000) from COID_BENCH_PUBS publishers (default 4);
// the rate is from the first publish until the processes' metrics count
// them all stored. Run with -benchtime 1x. COID_BENCH_COID_BIN names
// another coid binary to run (an older build, for a before and after);
// the key file is given to the instances in the environment, which an
// older build ignores.
func BenchmarkSharedIngestProcesses(b *testing.B) {
	if os.Getenv("COID_TEST_MQTT_URL") == "" {
		b.Skip("COID_TEST_MQTT_URL not set: the benchmark runs its own Mosquitto")
	}
	bin := os.Getenv("COID_BENCH_COID_BIN")
	if bin == "" {
		bin = filepath.Join(b.TempDir(), "coid")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
	}
	broker := startTestMosquitto(b)
	n, pubs := envBenchInt("COID_BENCH_MSGS", 40000), envBenchInt("COID_BENCH_PUBS", 4)
	keyFile := filepath.Join(b.TempDir(), "log.key")
	if _, _, _, err := runCmd(b, nil, "key", "create", "--out", keyFile); err != nil {
		b.Fatal(err)
	}
	var bolt, pg float64
	for range b.N {
		bolt += processRun(b, bin, broker, "", keyFile, pubs, n)
		pg += processRun(b, bin, broker, pgtest.Schema(b), keyFile, pubs, n) // empty: the readings' keys repeat
	}
	bolt, pg = bolt/float64(b.N), pg/float64(b.N)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(bolt, "bolt1-msgs/s")
	b.ReportMetric(pg, "pg2-msgs/s")
	b.ReportMetric(pg/bolt, "pg2/bolt1")
}

func envBenchInt(key string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(key)); err == nil && n > 0 {
		return n
	}
	return def
}

// processRun starts coid serve on bbolt (store empty) or two on the
// PostgreSQL store, publishes n messages and returns messages per second
// until all are stored; it fails unless exactly n are, by every instance
// it started.
func processRun(tb *testing.B, bin, broker, store, keyFile string, pubs, n int) float64 {
	tb.Helper()
	prefix := fmt.Sprintf("bench%d", time.Now().UnixNano())
	count := 1
	if store != "" {
		count = 2
	}
	if store == "" {
		tb.Setenv("COID_CHECKPOINT_KEY_FILE", "") // bbolt: the key in --data
	} else {
		tb.Setenv("COID_CHECKPOINT_KEY_FILE", keyFile)
	}
	var procs []*coidProc
	var scrape []string
	for i := range count {
		mport := freePort(tb)
		args := []string{"serve", "--data", filepath.Join(tb.TempDir(), "data"), "--http", fmt.Sprintf("127.0.0.1:%d", freePort(tb)),
			"--mqtt-url", broker, "--mqtt-prefix", prefix, "--mqtt-client-id", fmt.Sprintf("coid-%s-%d", prefix, i),
			"--metrics-listen", fmt.Sprintf("127.0.0.1:%d", mport), "--log-level", "warn"}
		if store == "" {
			args = append(args, "--init")
		} else {
			args = append(args, "--store", store, "--mqtt-share-group", "coid")
		}
		p := startCoid(tb, bin, args...)
		defer p.signal(tb, syscall.SIGTERM)
		procs = append(procs, p)
		scrape = append(scrape, fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
	}
	// Subscribed: healthz answers 200 once the subscriber is connected;
	// the subscription follows within moments.
	for _, p := range procs {
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if resp, err := http.Get(p.url + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				tb.Fatalf("coid never connected to the broker:\n%s", p.stderr.String())
			}
		}
	}
	time.Sleep(500 * time.Millisecond) // not measured: the subscriptions settle
	stored := func() []float64 {
		out := make([]float64, len(scrape))
		for i, u := range scrape {
			out[i] = scrapeCounter(tb, u, "coid_telemetry_readings_stored_total")
		}
		return out
	}
	sum := func(xs []float64) (s float64) {
		for _, x := range xs {
			s += x
		}
		return s
	}
	start := time.Now()
	publishBench(tb, broker, prefix, pubs, n)
	for deadline := time.Now().Add(300 * time.Second); sum(stored()) < float64(n); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("stored %v of %d readings", stored(), n)
		}
	}
	rate := float64(n) / time.Since(start).Seconds()
	got := stored()
	if sum(got) != float64(n) {
		tb.Fatalf("stored %v readings, want %d in all", got, n)
	}
	for i, g := range got {
		if g == 0 {
			tb.Fatalf("instance %d stored none of the stream: %v", i, got)
		}
	}
	return rate
}

// publishBench publishes n single-reading messages at QoS 1 from pubs
// publishers, each its own shipper, and waits for every PUBACK.
func publishBench(tb testing.TB, broker, prefix string, pubs, n int) {
	tb.Helper()
	base := time.Now().Add(-time.Duration(n)*time.Second - time.Hour) // the last reading is not in the future
	var wg sync.WaitGroup
	errs := make(chan error, pubs)
	for p := range pubs {
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("%s-pub%d", prefix, p)).SetCleanSession(true))
		if tok := c.Connect(); !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
			tb.Fatalf("publisher: %v", tok.Error())
		}
		defer c.Disconnect(50)
		wg.Go(func() {
			shipper := fmt.Sprintf("SHP-B%d", p)
			topic := sensors.TelemetryTopic(prefix, shipper)
			toks := make([]mqtt.Token, 0, n/pubs+1)
			for i := p; i < n; i += pubs {
				body := fmt.Appendf(nil, `{"shipper":%q,"seq":%d,"time":%q,"temp_c":%.1f}`,
					shipper, i, base.Add(time.Duration(i)*time.Second).Format(time.RFC3339), -180+float64(i%10)/10)
				toks = append(toks, c.Publish(topic, 1, false, body))
			}
			for _, t := range toks {
				if !t.WaitTimeout(120*time.Second) || t.Error() != nil {
					errs <- fmt.Errorf("publish: no PUBACK: %v", t.Error())
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
}
