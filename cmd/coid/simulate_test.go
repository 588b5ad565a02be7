package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// brokerAddr waits for the embedded broker's address in the server's log.
func brokerAddr(t *testing.T, srv *server) string {
	t.Helper()
	re := regexp.MustCompile(`embedded MQTT broker listening.* mqtt_listen=(\S+)`)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := re.FindStringSubmatch(srv.stderr.String()); m != nil {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no broker address in the log:\n%s", srv.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// demoProfiles is a cryogenic profile with grace times of seconds, so that
// a simulated warming becomes an excursion within a test.
const demoProfiles = `[{"name":"cryo-demo","max_c":-150,"grace":"2s","max_tilt_deg":30,"tilt_grace":"2s",
 "lid_must_be_closed":true,"lid_grace":"2s","expected_interval":"1s","silence_intervals":30}]`

// TestSimulateIntoServe runs coid simulate against the embedded broker of a
// real coid serve: every scenario at once, both payload formats. Every
// published reading is stored exactly once, and the warming shipper's leg
// gets a temperature excursion record in the chain.
func TestSimulateIntoServe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	tokens := map[string]string{}
	for _, id := range []string{"coord", "nurse1", "nurse2", "courier1"} {
		tokens[id] = addUser(t, dir, id, roles[id])
	}
	prof := filepath.Join(t.TempDir(), "profiles.json")
	if err := os.WriteFile(prof, []byte(demoProfiles), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, dir, "COID_PROFILES="+prof)
	addr := brokerAddr(t, srv)
	c := &client{t, srv.url + "/api/v1", tokens["coord"]}
	code, m := c.do("POST", "/chains", map[string]any{
		"patient": map[string]any{"name": "Sim Patient", "birth_date": "1970-01-01", "mrn": "MRN-1"},
		"product": "p", "sites": map[string]any{"collection": "a", "manufacturing": "b", "treatment": "c"}})
	if code != 201 {
		t.Fatalf("enroll: %d %v", code, m)
	}
	coi := m["coi"].(string)
	rec := "/chains/" + coi + "/records"
	for _, s := range []struct {
		step string
		data any
		sigs []any
	}{
		{"collect", collectData(), []any{sg("nurse1", "performed"), sg("nurse2", "verified")}},
		{"ship", map[string]any{"shipper": "SHP-SIM-0001", "profile": "cryo-demo"}, []any{sg("nurse1", "handed-over"), sg("courier1", "received")}},
	} {
		if code, m := c.do("POST", rec, map[string]any{"step": s.step, "data": s.data, "signatures": s.sigs}); code != 201 {
			t.Fatalf("%s: %d %v", s.step, code, m)
		}
	}

	// Six shippers, one per scenario (SHP-SIM-0001 warms), JSON and SenML
	// alternating, 10 readings/s each for 6s; the events run from 1s to 4s.
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"simulate", "--mqtt-url", "tcp://" + addr, "--shippers", "6", "--scenario", "mix",
		"--format", "mix", "--rate", "60", "--duration", "6s", "--event-at", "1s", "--event-for", "3s"}, nil, nil, &out, &errb)
	if err != nil {
		t.Fatalf("simulate: %v\n%s\n%s", err, out.String(), errb.String())
	}
	summary := out.String()
	t.Log(summary)
	num := func(re string) int {
		m := regexp.MustCompile(re).FindStringSubmatch(summary)
		if m == nil {
			t.Fatalf("summary lacks %s:\n%s", re, summary)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	published, msgs, dups, flushes, acked := num(`readings: (\d+) published`), num(`messages: (\d+) published`),
		num(`\((\d+) duplicate`), num(`(\d+) offline flushes`), num(`(\d+) acknowledged`)
	if published < 200 || dups == 0 || flushes == 0 || acked != msgs || msgs < published-200 {
		t.Fatalf("summary numbers: readings %d messages %d dups %d flushes %d acked %d", published, msgs, dups, flushes, acked)
	}

	// The embedded broker acknowledged each message after its commit, so
	// everything is stored now: once per reading, under the right shipper.
	total := 0
	for i := 1; i <= 6; i++ {
		id := fmt.Sprintf("SHP-SIM-%04d", i)
		code, m := c.do("GET", "/shippers/"+id+"/readings", nil)
		if code != 200 {
			t.Fatalf("%s readings: %d %v", id, code, m)
		}
		rs := m["readings"].([]any)
		seen := map[float64]bool{}
		for _, r := range rs {
			seq := r.(map[string]any)["seq"].(float64)
			if seen[seq] {
				t.Fatalf("%s: seq %v stored twice", id, seq)
			}
			seen[seq] = true
		}
		if len(rs) == 0 {
			t.Fatalf("%s: no readings stored", id)
		}
		total += len(rs)
	}
	if total != published {
		t.Fatalf("stored %d readings, simulate published %d", total, published)
	}

	// The warming (above -150 C for 3s, grace 2s) is an excursion record.
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, m := c.do("GET", "/chains/"+coi, nil)
		if code != 200 {
			t.Fatalf("chain: %d %v", code, m)
		}
		var kinds []string
		for _, r := range m["records"].([]any) {
			r := r.(map[string]any)
			if r["step"] == string(custody.StepExcursion) {
				kinds = append(kinds, r["data"].(map[string]any)["kind"].(string))
			}
		}
		if len(kinds) > 0 {
			if kinds[0] != string(custody.ExcursionTemperature) || strings.Count(strings.Join(kinds, ","), "temperature") != 1 {
				t.Fatalf("excursion records of kinds %v, want one temperature excursion", kinds)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no excursion record in the chain; server log:\n%s", srv.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, m := c.do("GET", "/excursions?open=true", nil); code != 200 || m["count"] != float64(1) {
		t.Fatalf("open excursions: %d %v", code, m)
	}
	if err := srv.stop(); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"verify", "--data", dir}, nil, nil, &out, &errb); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

func TestSimulateFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--mqtt-url", "http://x"},
		{"--shippers", "0"},
		{"--rate", "0"},
		{"--scenario", "meteor"},
		{"--format", "xml"},
		{"--duration", "-1s"},
		{"--id-prefix", "bad id"},
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), append([]string{"simulate"}, args...), nil, nil, &out, &errb)
		if err == nil || exitCode(err) != 2 {
			t.Errorf("simulate %v: %v (exit %d), want a usage error", args, err, exitCode(err))
		}
	}
	// Nothing listening: a connection error, not a hang.
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"simulate", "--mqtt-url", "tcp://127.0.0.1:1", "--count", "1"}, nil, nil, &out, &errb)
	if err == nil || exitCode(err) != 1 {
		t.Fatalf("simulate against a closed port: %v", err)
	}
}
