package sensors_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/coid-project/coid/sensors"
)

// raiseFileLimit raises the soft limit of open files to at least n, and
// skips the test when the hard limit does not allow it.
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("cannot read the open-files limit: %v", err)
	}
	if lim.Cur >= n {
		return
	}
	want := lim
	want.Cur = n
	if want.Max < n {
		want.Max = n
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		t.Skipf("this test needs %d open files; the limit is %d (hard %d) and cannot be raised: %v", n, lim.Cur, lim.Max, err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) })
}

// memNow returns the live heap and goroutine stacks after a collection,
// and the resident set.
func memNow() (heap, rss uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap = ms.HeapAlloc + ms.StackInuse
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			rss = pages * uint64(os.Getpagesize())
		}
	}
	return heap, rss
}

// waitConns waits until the broker counts n open connections. The
// deadline only catches a hang.
func waitConns(t *testing.T, b *sensors.Broker, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for b.Connections() != n {
		if time.Now().After(deadline) {
			t.Fatalf("the broker counts %d open connections after 60 s, want %d", b.Connections(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// idleConns is how many idle connections TestBrokerIdleConnectionsCostLittle
// opens (COID_TEST_IDLE_CONNS, default 5000).
func idleConns() int {
	if n, err := strconv.Atoi(os.Getenv("COID_TEST_IDLE_CONNS")); err == nil && n > 0 {
		return n
	}
	return 5000
}

// TestBrokerIdleConnectionsCostLittle: 5,000 connections that never log
// in (most send nothing, some half a CONNECT) cost the broker little
// memory, and it returns near its baseline once they close.
func TestBrokerIdleConnectionsCostLittle(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 5,000 connections")
	}
	n := idleConns()
	raiseFileLimit(t, uint64(2*n+1000))
	b, err := sensors.StartBroker(sensors.BrokerConfig{Listen: "127.0.0.1:0", Logger: quiet, MaxConnections: n + 1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	baseHeap, baseRSS := memNow()
	// Half a CONNECT: the fixed header and the protocol name.
	half := []byte{0x10, 40, 0, 4, 'M', 'Q', 'T', 'T'}
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		c, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if i%5 == 0 {
			if _, err := c.Write(half); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitConns(t, b, n)
	openHeap, openRSS := memNow()
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	waitConns(t, b, 0)
	closedHeap, closedRSS := memNow()
	mib := func(after, before uint64) float64 { return (float64(after) - float64(before)) / (1 << 20) }
	t.Logf("%d idle connections: heap and stacks %+.1f MiB, RSS %+.1f MiB while open; heap and stacks %+.1f MiB, RSS %+.1f MiB after they closed",
		n, mib(openHeap, baseHeap), mib(openRSS, baseRSS), mib(closedHeap, baseHeap), mib(closedRSS, baseRSS))
	if grew := mib(openHeap, baseHeap); grew > 250 {
		t.Errorf("%d idle connections took %.0f MiB of heap and stacks, want < 250", n, grew)
	}
	if grew := mib(openRSS, baseRSS); grew > 250 {
		t.Errorf("%d idle connections took %.0f MiB resident, want < 250", n, grew)
	}
	if grew := mib(closedHeap, baseHeap); grew > 32 {
		t.Errorf("after %d idle connections closed the heap and stacks are %.0f MiB above its baseline, want < 32", n, grew)
	}
}

// fakeClock is the broker's injected clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// capLine is the log line of connections refused at the cap.
const capLine = "maximum of open connections"

// TestBrokerConnectionCap: beyond MaxConnections open connections (logged
// in or not) the broker closes new ones at once, logs it once, then at
// most once a minute with the count; a connection closing makes room.
func TestBrokerConnectionCap(t *testing.T) {
	logs := new(logBuffer)
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	b, err := sensors.StartBroker(sensors.BrokerConfig{Listen: "127.0.0.1:0", MaxConnections: 3, Now: clock.Now,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	open := []net.Conn{dial(), dial()}
	open = append(open, rawConnect(t, b.Addr(), "c-"+randID(t), "u", "p", "", nil)) // one logged in
	waitConns(t, b, 3)
	for i := range 5 {
		expectClosed(t, dial(), fmt.Sprintf("connection %d over the cap", i+1))
	}
	logs.waitFor(t, capLine, "max_connections=3", "refused=1")
	if n := strings.Count(logs.String(), capLine); n != 1 {
		t.Fatalf("%d log lines for 5 refusals within a minute, want 1:\n%s", n, logs)
	}
	clock.advance(time.Minute)
	expectClosed(t, dial(), "connection over the cap a minute later")
	logs.waitFor(t, capLine, "refused=5") // the 4 unlogged and this one
	if n := strings.Count(logs.String(), capLine); n != 2 {
		t.Fatalf("%d log lines, want 2:\n%s", n, logs)
	}
	if b.Connections() != 3 {
		t.Fatalf("%d connections open, want the 3 under the cap", b.Connections())
	}
	open[0].Close()
	waitConns(t, b, 2)
	rawConnect(t, b.Addr(), "c-"+randID(t), "u", "p", "", nil) // room again
	waitConns(t, b, 3)
}

// connectV5 connects with MQTT 5 and keepalive, and returns the CONNACK.
func connectV5(t *testing.T, addr string, keepalive uint16) packets.Packet {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 5,
		Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: keepalive, ClientIdentifier: "c-" + randID(t)}}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // a guard against a hang only
	r := bufio.NewReader(conn)
	first, err := r.ReadByte()
	if err != nil {
		t.Fatal(err)
	}
	n, _, err := packets.DecodeLength(r)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatal(err)
	}
	ack := packets.Packet{ProtocolVersion: 5}
	if err := ack.FixedHeader.Decode(first); err != nil || ack.FixedHeader.Type != packets.Connack {
		t.Fatalf("first packet % x: %v", first, err)
	}
	if err := ack.ConnackDecode(body); err != nil {
		t.Fatal(err)
	}
	return ack
}

// TestBrokerCapsKeepalive: a keep alive of 0 (never closed for silence)
// or over MaxKeepalive is replaced by MaxKeepalive, and an MQTT 5 client
// is told so; a shorter one stands.
func TestBrokerCapsKeepalive(t *testing.T) {
	b, err := sensors.StartBroker(sensors.BrokerConfig{Listen: "127.0.0.1:0", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, tc := range []struct {
		asked    uint16
		imposed  bool
		assigned uint16
	}{
		{0, true, sensors.MaxKeepalive},
		{65535, true, sensors.MaxKeepalive},
		{sensors.MaxKeepalive + 1, true, sensors.MaxKeepalive},
		{sensors.MaxKeepalive, false, 0},
		{60, false, 0},
	} {
		ack := connectV5(t, b.Addr(), tc.asked)
		if ack.ReasonCode != packets.CodeSuccess.Code {
			t.Fatalf("keep alive %d: refused with %#x", tc.asked, ack.ReasonCode)
		}
		if ack.Properties.ServerKeepAliveFlag != tc.imposed || ack.Properties.ServerKeepAlive != tc.assigned {
			t.Errorf("keep alive %d: server keep alive %v %d, want %v %d", tc.asked, ack.Properties.ServerKeepAliveFlag,
				ack.Properties.ServerKeepAlive, tc.imposed, tc.assigned)
		}
	}
}

// TestBrokerClosesConnectionsWithoutConnect: a connection that sends no
// CONNECT, or only part of one, is closed once ConnectTimeout (short
// here) has passed; one whose first packet is not a CONNECT at once.
func TestBrokerClosesConnectionsWithoutConnect(t *testing.T) {
	logs := new(logBuffer)
	b, err := sensors.StartBroker(sensors.BrokerConfig{Listen: "127.0.0.1:0", ConnectTimeout: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, tc := range []struct {
		name string
		sent []byte
	}{
		{"nothing", nil},
		{"a type byte", []byte{0x10}},
		{"a fixed header", []byte{0x10, 40}},
		{"half a CONNECT", []byte{0x10, 40, 0, 4, 'M', 'Q', 'T', 'T'}},
		{"a PUBLISH first", []byte{0x30, 5, 0, 1, 't', 'x', 'y'}},
		{"a fifth length byte", []byte{0x10, 0x80, 0x80, 0x80, 0x80, 0x01}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", b.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.Write(tc.sent); err != nil {
				t.Fatal(err)
			}
			expectClosed(t, conn, "a connection that sent "+tc.name)
		})
	}
	waitConns(t, b, 0)
	logs.waitFor(t, "closed before its CONNECT", "i/o timeout")
	rawConnect(t, b.Addr(), "c-"+randID(t), "u", "p", "", nil) // a prompt CONNECT still logs in
}

// FuzzReadConnect: the listener's CONNECT reader returns a whole CONNECT,
// as mochi's decoder frames it, and consumes not a byte after it; or an
// error, and nothing.
func FuzzReadConnect(f *testing.F) {
	for _, v := range []byte{4, 5} {
		pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: v,
			Connect: packets.ConnectParams{ProtocolName: []byte("MQTT"), Clean: true, Keepalive: 30, ClientIdentifier: "shipper",
				UsernameFlag: true, Username: []byte("gw-1"), PasswordFlag: true, Password: []byte("secret")}}
		var buf bytes.Buffer
		if err := pk.ConnectEncode(&buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
		f.Add(append(buf.Bytes(), 0x30, 2, 0, 0)) // and a PUBLISH after it
		f.Add(buf.Bytes()[:buf.Len()-3])
	}
	f.Add([]byte{})
	f.Add([]byte{0x10, 0})
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{0x10, 0x80, 0x80, 0x04})
	f.Add([]byte{0x10, 0x80, 0x80, 0x80, 0x80, 0x01})
	f.Add([]byte{0x30, 2, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		pkt, err := sensors.ReadConnect(r)
		if err != nil {
			if pkt != nil {
				t.Fatalf("an error (%v) with a packet", err)
			}
			return
		}
		if !bytes.HasPrefix(in, pkt) {
			t.Fatalf("the packet % x is not what was sent", pkt)
		}
		if used := len(in) - r.Len(); used != len(pkt) {
			t.Fatalf("read %d bytes for a packet of %d", used, len(pkt))
		}
		if pkt[0] != packets.Connect<<4 {
			t.Fatalf("first byte %#x is not a CONNECT", pkt[0])
		}
		n, lenBytes, err := packets.DecodeLength(bytes.NewReader(pkt[1:]))
		if err != nil {
			t.Fatalf("mochi cannot read the length: %v", err)
		}
		if 1+lenBytes+n != len(pkt) || lenBytes > 4 {
			t.Fatalf("packet of %d bytes announces %d in %d length bytes", len(pkt), n, lenBytes)
		}
		if n > 64<<10 {
			t.Fatalf("a CONNECT of %d bytes was read", n)
		}
	})
}
