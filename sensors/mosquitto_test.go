package sensors_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// mosquittoConf is the configuration of a private Mosquitto for tests and
// benchmarks: what the README recommends for coid ("Cold-chain telemetry")
// except persistence, which a throw-away broker does not need.
// max_queued_messages 0 (no limit) because Mosquitto's default of 1000
// silently drops QoS 1 messages for a subscriber that falls behind (it
// does here, even with the publishers kept a few hundred messages ahead);
// max_inflight_messages 0 (no limit) because the default of 20 unacknowledged
// messages per subscriber caps coid, which acknowledges only after commit,
// at 20 messages per commit.
const mosquittoConf = `persistence false
allow_anonymous true
max_queued_messages 0
max_inflight_messages %d
listener %d 127.0.0.1
`

// startMosquitto runs a private Mosquitto on a free loopback port until the
// test ends and returns its URL. It skips the test when the mosquitto
// binary is not installed.
func startMosquitto(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
		if bin == "" {
			skipUnlessCI(tb, "mosquitto is not installed")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := filepath.Join(tb.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, mosquittoConf, benchEnvInt("COID_BENCH_MOSQ_INFLIGHT", 1000), port), 0o600); err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for deadline := time.Now().Add(60 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return "tcp://" + addr
		}
		if time.Now().After(deadline) {
			tb.Fatalf("mosquitto did not listen on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
