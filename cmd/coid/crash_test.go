package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/sensors"
)

// crashMosquittoConf configures the private Mosquitto of the crash test.
// The broker on COID_TEST_MQTT_URL keeps Mosquitto's defaults, and its
// max_queued_messages of 1000 silently drops QoS 1 messages queued for a
// disconnected persistent session: exactly what a killed coid has, for
// seconds, while shippers keep publishing. Messages the broker dropped were
// acknowledged to the publisher, so the test could not tell a loss in coid
// from one in the broker. So the test runs its own Mosquitto configured as
// the README asks for production (no queue limit, a large in-flight
// window) but without persistence, which only matters when the broker
// itself restarts.
const crashMosquittoConf = `persistence false
allow_anonymous true
max_queued_messages 0
max_inflight_messages 1000
listener %d 127.0.0.1
`

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startTestMosquitto(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto"
		if _, err := os.Stat(bin); err != nil {
			skipUnlessCI(t, "mosquitto is not installed")
		}
	}
	port := freePort(t)
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, crashMosquittoConf, port), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "tcp://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not start on %s", addr)
		}
	}
}

// coidProc is a coid binary running serve.
type coidProc struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncBuffer
}

func startCoid(t testing.TB, bin string, args ...string) *coidProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &coidProc{cmd: cmd, stderr: &syncBuffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- line
		_, _ = r.WriteTo(io_discard{})
	}()
	select {
	case line := <-lines:
		_, addr, ok := strings.Cut(strings.TrimSpace(line), "serving HTTP on ")
		if !ok {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("coid did not start: %q\n%s", line, p.stderr.String())
		}
		p.url = addr
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("coid did not start in 15s:\n%s", p.stderr.String())
	}
	return p
}

type io_discard struct{}

func (io_discard) Write(p []byte) (int, error) { return len(p), nil }

func (p *coidProc) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	_ = p.cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
		t.Fatalf("coid did not stop on %v", sig)
	}
}

// TestCrashRecovery ingests from an external Mosquitto with the real coid
// binary, kills it with SIGKILL several times while a shipper publishes,
// restarts it each time, and checks afterwards that every reading the
// broker acknowledged to the shipper is stored exactly once and that the
// ledger, with the chain carrying that shipper, verifies.
func TestCrashRecovery(t *testing.T) {
	if os.Getenv("COID_TEST_MQTT_URL") == "" {
		skipUnlessCI(t, "COID_TEST_MQTT_URL not set (CI sets it; the test runs its own Mosquitto)")
	}
	if testing.Short() {
		t.Skip("builds and runs the coid binary")
	}
	brokerURL := startTestMosquitto(t)
	bin := filepath.Join(t.TempDir(), "coid")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := filepath.Join(t.TempDir(), "data")
	tokens := map[string]string{}
	for _, id := range []string{"coord", "nurse1", "nurse2", "courier1"} {
		tokens[id] = addUser(t, dir, id, roles[id])
	}
	prefix := fmt.Sprintf("crash%d", time.Now().UnixNano())
	clientID := "coid-crash-" + prefix
	args := []string{"serve", "--data", dir, "--http", "127.0.0.1:0", "--mqtt-url", brokerURL,
		"--mqtt-client-id", clientID, "--mqtt-prefix", prefix, "--log-level", "warn"}
	proc := startCoid(t, bin, args...)
	t.Cleanup(func() { _ = proc.cmd.Process.Kill() })

	// A chain whose open leg is carried by the shipper.
	const shipper = "SHP-CRASH"
	c := &client{t, proc.url + "/api/v1", tokens["coord"]}
	shippedChain(t, c, shipper, "Crash Patient", "MRN-2")

	// The shipper publishes unique seqs at QoS 1, about 3000 a second, and
	// remembers which ones the broker acknowledged.
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID("crash-pub-" + prefix).SetCleanSession(true))
	if tok := pub.Connect(); !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher: %v", tok.Error())
	}
	defer pub.Disconnect(100)
	topic := sensors.TelemetryTopic(prefix, shipper)
	stop := make(chan struct{})
	var (
		mu    sync.Mutex
		acked = map[uint64]bool{}
		toks  = map[uint64]mqtt.Token{}
		sent  uint64
	)
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		start := time.Now()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for seq := uint64(1); ; {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for range 30 {
				// Device times 100µs apart: after the ship step, never
				// ahead of the clock.
				dt := start.Add(time.Duration(seq) * 100 * time.Microsecond).UTC()
				temp := -185.0
				r := custody.Reading{Shipper: shipper, Seq: seq, HasSeq: true, DeviceTime: dt, TempC: &temp}
				b, _ := sensors.EncodeJSON([]custody.Reading{r})
				tok := pub.Publish(topic, 1, false, b)
				mu.Lock()
				toks[seq] = tok
				sent = seq
				mu.Unlock()
				seq++
			}
		}
	}()

	// SIGKILL coid four times mid-stream, restarting it each time.
	for i := range 4 {
		time.Sleep(time.Duration(700+300*i) * time.Millisecond)
		proc.signal(t, syscall.SIGKILL)
		time.Sleep(300 * time.Millisecond) // shippers keep publishing while coid is down
		proc = startCoid(t, bin, args...)
	}
	time.Sleep(time.Second)
	close(stop)
	<-pubDone
	mu.Lock()
	for seq, tok := range toks {
		if tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
			acked[seq] = true
		}
	}
	total := sent
	mu.Unlock()
	if len(acked) < 5000 {
		t.Fatalf("only %d of %d readings were acknowledged by the broker", len(acked), total)
	}

	// Let the last coid drain the broker's queue for its session.
	c = &client{t, proc.url + "/api/v1", tokens["coord"]}
	deadline := time.Now().Add(60 * time.Second)
	for {
		n := shipperReadingCount(t, c, shipper)
		if n >= len(acked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after draining, %d readings of %d acknowledged are stored", n, len(acked))
		}
		time.Sleep(200 * time.Millisecond)
	}
	proc.signal(t, syscall.SIGTERM)

	// Offline: every acknowledged reading stored exactly once, nothing else.
	st, err := boltstore.Open(dir, boltstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	rs, _, err := st.ShipperReadings(context.Background(), shipper, time.Time{}, time.Time{}, 0)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]int{}
	for _, r := range rs {
		seen[r.Seq]++
		if seen[r.Seq] > 1 {
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
	t.Logf("%d published, %d acknowledged by the broker, %d stored, 4 SIGKILLs", total, len(acked), len(rs))

	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"verify", "--data", dir}, nil, nil, &out, &errb); err != nil {
		t.Fatalf("coid verify: %v\n%s%s", err, out.String(), errb.String())
	}
}

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

// shipperReadingCount counts the readings the service holds for shipper,
// following the readings list's pages.
func shipperReadingCount(t *testing.T, c *client, shipper string) int {
	t.Helper()
	n, path := 0, "/shippers/"+shipper+"/readings?limit=50000"
	for {
		code, m := c.do("GET", path, nil)
		if code != 200 {
			t.Fatalf("shipper readings: %d %v", code, m)
		}
		n += int(m["count"].(float64))
		next, _ := m["next"].(string)
		if next == "" {
			return n
		}
		path = "/shippers/" + shipper + "/readings?limit=50000&after=" + url.QueryEscape(next)
	}
}

// shippedChain enrols a chain for the patient name and mrn, collects it
// and ships it with shipper, through c: a chain whose open leg the
// shipper's readings belong to.
func shippedChain(t *testing.T, c *client, shipper, name, mrn string) {
	t.Helper()
	code, m := c.do("POST", "/chains", map[string]any{
		"patient": map[string]any{"name": name, "birth_date": "1970-01-01", "mrn": mrn},
		"product": "p", "sites": map[string]any{"collection": "a", "manufacturing": "b", "treatment": "c"}})
	if code != 201 {
		t.Fatalf("enroll: %d %v", code, m)
	}
	coi := m["coi"].(string)
	for _, s := range []struct {
		step string
		data any
		sigs []any
	}{
		{"collect", collectData(), []any{sg("nurse1", "performed"), sg("nurse2", "verified")}},
		{"ship", map[string]any{"shipper": shipper, "profile": "cryogenic"}, []any{sg("nurse1", "handed-over"), sg("courier1", "received")}},
	} {
		if code, m := c.do("POST", "/chains/"+coi+"/records", map[string]any{"step": s.step, "data": s.data, "signatures": s.sigs}); code != 201 {
			t.Fatalf("%s: %d %v", s.step, code, m)
		}
	}
}
