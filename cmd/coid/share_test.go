package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/pgstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/sensors"
)

// tryPost posts body to url with token, and returns the status and the
// decoded answer; a connection error (the instance killed) is status 0.
func tryPost(url, token string, body any) (int, map[string]any) {
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(j))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	cl := http.Client{Timeout: 60 * time.Second} // only a hang
	resp, err := cl.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

// scrapeCounter returns the value of the unlabelled metric name scraped
// from url.
func scrapeCounter(t testing.TB, url, name string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", name, line, err)
			}
			return f
		}
	}
	t.Fatalf("%s not in the metrics of %s:\n%s", name, url, raw)
	return 0
}

// TestSharedIntakeCrash runs two coid serve processes on one PostgreSQL
// schema, splitting the telemetry of an external Mosquitto through a
// shared subscription (--mqtt-share-group), while journey records are
// posted to both in turn. The first instance, which starts as the
// excursion monitor's leader, is SIGKILLed and restarted four times
// mid-stream. Afterwards every journey record an instance acknowledged
// (201) is in the ledger once, every reading the broker acknowledged to the
// shipper is stored once, coid verify passes, and the monitor was handed
// over to the second instance.
func TestSharedIntakeCrash(t *testing.T) {
	if os.Getenv("COID_TEST_MQTT_URL") == "" {
		skipUnlessCI(t, "COID_TEST_MQTT_URL not set (CI sets it; the test runs its own Mosquitto)")
	}
	if testing.Short() {
		t.Skip("builds and runs the coid binary")
	}
	store := pgtest.Schema(t)
	brokerURL := startTestMosquitto(t)
	bin := filepath.Join(t.TempDir(), "coid")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	env := []string{"COID_STORE=" + store}
	dir := filepath.Join(t.TempDir(), "data")
	tokens := map[string]string{}
	for _, id := range []string{"coord", "nurse1", "nurse2", "courier1"} {
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"user", "add", "--data", dir, "--id", id, "--name", "Printed " + id, "--role", string(roles[id])},
			env, strings.NewReader(pw(id)+"\n"), &out, &errb)
		if err != nil {
			t.Fatalf("user add %s: %v\n%s", id, err, errb.String())
		}
		tokens[id] = strings.TrimSpace(out.String())
	}
	prefix := fmt.Sprintf("share%d", time.Now().UnixNano())
	args := func(name string, port int) []string {
		return []string{"serve", "--store", store, "--data", dir, "--http", fmt.Sprintf("127.0.0.1:%d", port),
			"--mqtt-url", brokerURL, "--mqtt-share-group", "coid", "--mqtt-client-id", "coid-" + name + "-" + prefix,
			"--mqtt-prefix", prefix, "--log-level", "info"}
	}
	argsA, argsB := args("a", freePort(t)), args("b", freePort(t))
	metricsB := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	argsB = append(argsB, "--metrics-listen", metricsB)
	a := startCoid(t, bin, argsA...) // the first up leads the monitor
	t.Cleanup(func() { _ = a.cmd.Process.Kill() })
	b := startCoid(t, bin, argsB...)
	t.Cleanup(func() { _ = b.cmd.Process.Kill() })
	urls := [2]string{a.url + "/api/v1", b.url + "/api/v1"} // fixed ports: the same after a restart

	// A chain whose open leg is carried by the shipper.
	const shipper = "SHP-SHARE"
	c := &client{t, urls[1], tokens["coord"]}
	shippedChain(t, c, shipper, "Share Patient", "MRN-3")

	// The shipper publishes unique seqs at QoS 1, about 1000 a second.
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID("share-pub-" + prefix).SetCleanSession(true))
	if tok := pub.Connect(); !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher: %v", tok.Error())
	}
	defer pub.Disconnect(100)
	topic := sensors.TelemetryTopic(prefix, shipper)
	stop := make(chan struct{})
	var (
		mu   sync.Mutex
		toks = map[uint64]mqtt.Token{}
		sent uint64
		// enrolled: chains whose enrolment an instance acknowledged;
		// collected: those whose collect record it acknowledged too.
		enrolled, collected []custody.COI
	)
	var wg sync.WaitGroup
	wg.Go(func() {
		start := time.Now()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for seq := uint64(1); ; {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for range 10 {
				dt := start.Add(time.Duration(seq) * 100 * time.Microsecond).UTC()
				temp := -185.0
				b, _ := sensors.EncodeJSON([]custody.Reading{{Shipper: shipper, Seq: seq, HasSeq: true, DeviceTime: dt, TempC: &temp}})
				tok := pub.Publish(topic, 1, false, b)
				mu.Lock()
				toks[seq], sent = tok, seq
				mu.Unlock()
				seq++
			}
		}
	})
	// Journey records: each chain enrolled on one instance and collected
	// on the other.
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			code, m := tryPost(urls[i%2]+"/chains", tokens["coord"], map[string]any{
				"patient": map[string]any{"name": "Patient", "birth_date": "1970-01-01", "mrn": fmt.Sprintf("MRN-S%d", i)},
				"product": "p", "sites": map[string]any{"collection": "a", "manufacturing": "b", "treatment": "c"}})
			if code != 201 {
				time.Sleep(20 * time.Millisecond) // the instance is down
				continue
			}
			id := custody.COI(m["coi"].(string))
			mu.Lock()
			enrolled = append(enrolled, id)
			mu.Unlock()
			code, _ = tryPost(urls[(i+1)%2]+"/chains/"+string(id)+"/records", tokens["nurse1"], map[string]any{
				"step": "collect", "data": collectData(), "signatures": []any{sg("nurse1", "performed"), sg("nurse2", "verified")}})
			if code == 201 {
				mu.Lock()
				collected = append(collected, id)
				mu.Unlock()
			}
		}
	})

	// The first instance leads the monitor (it took the lock before the
	// second started), the second waits.
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(a.stderr.String(), "this instance leads"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("hang: the first instance never led the monitor:\n%s", a.stderr.String())
		}
	}
	if strings.Contains(b.stderr.String(), "this instance leads") {
		t.Fatal("the second instance leads the monitor too")
	}

	// SIGKILL the first instance four times mid-stream, restarting it. The
	// first time it leads the monitor, and stays down until the second
	// instance has taken the lead (its poll and settle take seconds); the
	// later kills hit an instance that no longer leads.
	for i := range 4 {
		time.Sleep(time.Duration(700+300*i) * time.Millisecond)
		a.signal(t, syscall.SIGKILL)
		time.Sleep(300 * time.Millisecond) // the shipper keeps publishing meanwhile
		for deadline := time.Now().Add(60 * time.Second); i == 0 && !strings.Contains(b.stderr.String(), "this instance leads"); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("hang: the second instance never took the monitor's lead:\n%s", b.stderr.String())
			}
		}
		a = startCoid(t, bin, argsA...)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	acked := map[uint64]bool{}
	mu.Lock()
	for seq, tok := range toks {
		if tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
			acked[seq] = true
		}
	}
	total := sent
	mu.Unlock()
	if len(acked) < 1000 || len(collected) < 1 {
		t.Fatalf("only %d of %d readings acknowledged by the broker, %d chains collected: too few to test", len(acked), total, len(collected))
	}

	// Both drain their sessions: every acknowledged reading is stored.
	c = &client{t, urls[1], tokens["coord"]}
	for deadline := time.Now().Add(120 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if n := shipperReadingCount(t, c, shipper); n >= len(acked) {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("hang: after draining, %d readings of %d acknowledged are stored", n, len(acked))
		}
	}
	// The second instance, never killed, took part of the stream and not
	// all of it: the broker split it (without the shared subscription
	// each instance would receive every message).
	if n := scrapeCounter(t, "http://"+metricsB+"/metrics", "coid_telemetry_messages_total"); n < 1 || n >= float64(len(acked)) {
		t.Fatalf("the second instance took %v messages of %d: the stream was not shared", n, len(acked))
	} else {
		t.Logf("the second instance took %v of the %d messages", n, len(acked))
	}
	a.signal(t, syscall.SIGTERM)
	b.signal(t, syscall.SIGTERM)

	// Offline: every acknowledged reading stored exactly once, nothing
	// else; every acknowledged journey record in the ledger once.
	ctx := context.Background()
	st, err := pgstore.Open(ctx, store, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rs, _, err := st.ShipperReadings(ctx, shipper, time.Time{}, time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]int{}
	for _, r := range rs {
		if seen[r.Seq]++; seen[r.Seq] > 1 {
			t.Fatalf("seq %d stored twice", r.Seq)
		}
		if r.Seq < 1 || r.Seq > total {
			t.Fatalf("seq %d was never published", r.Seq)
		}
	}
	for seq := range acked {
		if seen[seq] != 1 {
			t.Fatalf("seq %d acknowledged by the broker but stored %d times", seq, seen[seq])
		}
	}
	steps := func(id custody.COI) map[custody.Step]int {
		recs, err := st.Records(ctx, id)
		if err != nil {
			t.Fatalf("chain %s: %v", id, err)
		}
		n := map[custody.Step]int{}
		for _, r := range recs {
			n[r.Step]++
		}
		return n
	}
	for _, id := range enrolled {
		if n := steps(id); n["enroll"] != 1 || n["collect"] > 1 {
			t.Fatalf("chain %s has steps %v: want one enrolment, at most one collection", id, n)
		}
	}
	for _, id := range collected {
		if n := steps(id); n["collect"] != 1 {
			t.Fatalf("chain %s: its acknowledged collection stored %d times", id, n["collect"])
		}
	}
	t.Logf("%d published, %d acknowledged by the broker, %d stored; %d chains enrolled, %d collected; 4 SIGKILLs",
		total, len(acked), len(rs), len(enrolled), len(collected))

	var out, errb bytes.Buffer
	if err := run(ctx, []string{"verify", "--data", dir}, env, nil, &out, &errb); err != nil {
		t.Fatalf("coid verify: %v\n%s%s", err, out.String(), errb.String())
	}
}
