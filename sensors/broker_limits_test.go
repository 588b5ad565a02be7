package sensors_test

import (
	"log/slog"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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

// memNow returns the live heap after a collection, and the resident set.
func memNow() (heap, rss uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap = ms.HeapAlloc
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
	t.Logf("%d idle connections: heap %+.1f MiB, RSS %+.1f MiB while open; heap %+.1f MiB, RSS %+.1f MiB after they closed",
		n, mib(openHeap, baseHeap), mib(openRSS, baseRSS), mib(closedHeap, baseHeap), mib(closedRSS, baseRSS))
	if grew := mib(openHeap, baseHeap); grew > 250 {
		t.Errorf("%d idle connections took %.0f MiB of heap, want < 250", n, grew)
	}
	if grew := mib(openRSS, baseRSS); grew > 250 {
		t.Errorf("%d idle connections took %.0f MiB resident, want < 250", n, grew)
	}
	if grew := mib(closedHeap, baseHeap); grew > 32 {
		t.Errorf("after %d idle connections closed the heap is %.0f MiB above its baseline, want < 32", n, grew)
	}
}

var _ = slog.LevelDebug
