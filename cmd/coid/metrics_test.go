package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/sensors"
	mqtt "github.com/eclipse/paho.mqtt.golang"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const testScrapeToken = "scrape-token-0123456789abcdef"

// scrape GETs url with token (none when empty) and returns the status and,
// for a 200, the parsed metric families.
func scrape(t *testing.T, url, token string) (int, map[string]*dto.MetricFamily) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scrape does not parse: %v", err)
	}
	return resp.StatusCode, fams
}

// value returns the metric's value (counter, gauge, or a histogram's
// count) of the series in fam whose labels include want; -1 if none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	fam := fams[name]
	if fam == nil {
		return -1
	}
next:
	for _, m := range fam.Metric {
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func writeToken(t *testing.T) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "scrape-token")
	if err := os.WriteFile(f, []byte(testScrapeToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestMetricsScrapedThroughRun serves on port 0 with an external
// Mosquitto, enrols a chain and publishes readings (and one malformed
// message), then scrapes /metrics with its token and checks the counters
// moved and that HTTP latency is labelled by route pattern, never by a
// path holding a COI.
func TestMetricsScrapedThroughRun(t *testing.T) {
	brokerURL := startTestMosquitto(t)
	dir := filepath.Join(t.TempDir(), "data")
	coord := addFastUser(t, dir, "coord", custody.RoleCoordinator)
	prefix := fmt.Sprintf("metrics%d", time.Now().UnixNano())
	srv := startServer(t, dir, "COID_MQTT_URL="+brokerURL, "COID_MQTT_PREFIX="+prefix, "COID_MQTT_CLIENT_ID=coid-"+prefix,
		"COID_METRICS_TOKEN_FILE="+writeToken(t))

	c := &client{t, srv.url + "/api/v1", coord}
	code, m := c.do("POST", "/chains", map[string]any{
		"patient": map[string]any{"name": "Metric Patient", "birth_date": "1970-01-01", "mrn": "MRN-METRICS"},
		"product": "p", "sites": map[string]any{"collection": "a", "manufacturing": "b", "treatment": "c"}})
	if code != 201 {
		t.Fatalf("enroll: %d %v", code, m)
	}
	coi := m["coi"].(string)
	if code, m := c.do("GET", "/chains/"+coi, nil); code != 200 {
		t.Fatalf("get chain: %d %v", code, m)
	}

	for _, tok := range []string{"", "wrong-token-0123456789abcdef"} {
		if code, _ := scrape(t, srv.url+"/metrics", tok); code != http.StatusUnauthorized {
			t.Errorf("scrape with token %q = %d, want 401", tok, code)
		}
	}
	// A user's API token is no scrape token.
	if code, _ := scrape(t, srv.url+"/metrics", coord); code != http.StatusUnauthorized {
		t.Errorf("scrape with an API token = %d, want 401", code)
	}

	const shipper = "SHP-METRICS"
	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID("pub-" + prefix).SetCleanSession(true))
	if tok := pub.Connect(); !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher: %v", tok.Error())
	}
	defer pub.Disconnect(100)
	topic := sensors.TelemetryTopic(prefix, shipper)
	publish := func(b []byte) {
		if tok := pub.Publish(topic, 1, false, b); !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	// Publish until the subscriber has taken some: it may subscribe
	// after the first messages are sent (they are not retained).
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(60 * time.Second) // catches a hang only
	for seq := uint64(1); ; seq++ {
		temp := -185.0
		b, _ := sensors.EncodeJSON([]custody.Reading{{Shipper: shipper, Seq: seq, HasSeq: true,
			DeviceTime: time.Date(2026, 1, 1, 0, 0, int(seq), 0, time.UTC), TempC: &temp}})
		publish(b)
		publish([]byte("not telemetry"))
		_, fams = scrape(t, srv.url+"/metrics", testScrapeToken)
		if value(fams, "coid_telemetry_readings_stored_total", nil) >= 3 &&
			value(fams, "coid_telemetry_messages_quarantined_total", nil) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readings not counted: stored %v, quarantined %v", value(fams, "coid_telemetry_readings_stored_total", nil),
				value(fams, "coid_telemetry_messages_quarantined_total", nil))
		}
		time.Sleep(50 * time.Millisecond)
	}

	for _, w := range []struct {
		name   string
		labels map[string]string
		min    float64
	}{
		{"coid_http_request_duration_seconds", map[string]string{"method": "POST", "route": "/api/v1/chains", "code": "201"}, 1},
		{"coid_http_request_duration_seconds", map[string]string{"method": "GET", "route": "/api/v1/chains/:coi", "code": "200"}, 1},
		{"coid_commit_duration_seconds", map[string]string{"kind": "ledger_append"}, 1},
		{"coid_commit_duration_seconds", map[string]string{"kind": "reading_batch"}, 3},
		{"coid_telemetry_messages_total", nil, 4},
		{"coid_mqtt_connected", nil, 1},
		{"coid_monitor_leader", nil, 1},
		{"coid_mqtt_last_message_age_seconds", nil, 0},
		{"coid_telemetry_queue_depth", nil, 0},
		{"coid_quarantine_entries", nil, 1},
		{"coid_excursions_open", nil, 0},
	} {
		if got := value(fams, w.name, w.labels); got < w.min {
			t.Errorf("%s%v = %v, want at least %v", w.name, w.labels, got, w.min)
		}
	}
	for _, fam := range fams {
		for _, m := range fam.Metric {
			for _, l := range m.Label {
				if strings.Contains(l.GetValue(), coi) {
					t.Errorf("%s has a label holding the COI: %s=%q", fam.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestMetricsOwnListener serves /metrics on a listener of its own (no
// token on loopback); the main listener then has no /metrics at all.
func TestMetricsOwnListener(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	srv := startServer(t, dir, "COID_METRICS_LISTEN=127.0.0.1:0")
	addr := ""
	deadline := time.Now().Add(30 * time.Second) // catches a hang only
	re := regexp.MustCompile(`metrics_listen=(\S+)`)
	for addr == "" {
		if m := re.FindStringSubmatch(srv.stderr.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no metrics listener logged:\n%s", srv.stderr.String())
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	code, fams := scrape(t, "http://"+addr+"/metrics", "")
	if code != 200 || value(fams, "coid_monitor_leader", nil) != 1 {
		t.Fatalf("scrape of the metrics listener = %d, monitor_leader %v", code, value(fams, "coid_monitor_leader", nil))
	}
	if code, _ := scrape(t, srv.url+"/metrics", ""); code != http.StatusNotFound {
		t.Errorf("/metrics on the main listener = %d, want 404", code)
	}
}

func TestMetricsFlagsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	short := filepath.Join(t.TempDir(), "short")
	if err := os.WriteFile(short, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string
		args       []string
	}{
		{"beyond loopback without token", "--metrics-token-file", []string{"--metrics-listen", "0.0.0.0:0"}},
		{"no port", "not an address", []string{"--metrics-listen", "localhost"}},
		{"short token", "at least 16", []string{"--metrics-token-file", short}},
		{"missing token file", "--metrics-token-file", []string{"--metrics-token-file", filepath.Join(dir, "none")}},
		{"log format", "log format", []string{"--log-format", "xml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, exit, err := runCmd(t, nil, append(serveArgs(dir), tc.args...)...)
			if exit != 2 || !strings.Contains(stderr+fmt.Sprint(err), tc.want) {
				t.Fatalf("exit %d, err %v, stderr %s; want a usage error naming %q", exit, err, stderr, tc.want)
			}
			if _, err := os.Stat(ledgerFile(dir)); err == nil {
				t.Fatal("a refused serve created the ledger")
			}
		})
	}
}

// TestJSONLogs: with --log-format json every line is one JSON object with
// time, level and msg, and neither passwords, tokens nor patient
// identifiers appear.
func TestJSONLogs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	coord := addFastUser(t, dir, "coord", custody.RoleCoordinator)
	srv := startServer(t, dir, "COID_LOG_FORMAT=json")
	c := &client{t, srv.url + "/api/v1", coord}
	if code, m := c.do("POST", "/chains", map[string]any{
		"patient": map[string]any{"name": "Jsonlog Patient", "birth_date": "1970-01-01", "mrn": "MRN-JSONLOG"},
		"product": "p", "sites": map[string]any{"collection": "a", "manufacturing": "b", "treatment": "c"}}); code != 201 {
		t.Fatalf("enroll: %d %v", code, m)
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	logs := srv.stderr.String()
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, sc.Text())
		}
		if m["time"] == nil || m["level"] == nil || m["msg"] == nil {
			t.Errorf("log line lacks time, level or msg: %s", sc.Text())
		}
		n++
	}
	if n < 3 || !strings.Contains(logs, `"msg":"http request"`) {
		t.Fatalf("%d log lines, no request logged:\n%s", n, logs)
	}
	for _, secret := range []string{coord, pw("coord"), "Jsonlog", "MRN-JSONLOG", "1970-01-01"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
}

// TestHealthWithMQTTDisconnected: with the broker unreachable, healthz
// and readyz answer 503 (the store is fine; the intake is not).
func TestHealthWithMQTTDisconnected(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	port := freePort(t) // nothing listens there
	srv := startServer(t, dir, fmt.Sprintf("COID_MQTT_URL=tcp://127.0.0.1:%d", port))
	// readyz says "not ready" until serve has finished starting, which
	// may be just after its listener answers: wait for that (bounded
	// only to catch a hang), then the intake's failure must show.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		_, m := (&client{t, srv.url, ""}).do("GET", "/readyz", nil)
		if m["status"] != "not ready" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("serve did not finish starting within a minute")
		}
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		code, m := (&client{t, srv.url, ""}).do("GET", path, nil)
		if code != http.StatusServiceUnavailable || m["status"] != "unavailable" {
			t.Errorf("%s with the broker down = %d %v, want 503 unavailable", path, code, m)
		}
	}
	if !strings.Contains(srv.stderr.String(), "mqtt intake: not connected") {
		t.Errorf("the reason is not logged:\n%s", srv.stderr.String())
	}
}
