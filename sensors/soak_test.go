package sensors_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/coid-project/coid/sensors"
)

// rssBytes returns this process's anonymous resident memory (RssAnon:
// heap, stacks, buffers). The file-backed part (RssFile) is mostly bbolt's
// memory map of the data file, which grows with the readings stored, as the
// file does; it is reported separately, not judged.
func rssBytes(tb testing.TB) uint64 { return procStatus(tb, "RssAnon:") }

func procStatus(tb testing.TB, key string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Skip("no /proc/self/status")
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), key); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	tb.Skip("no " + key)
	return 0
}

// BenchmarkSoakMemory ingests without pause through the embedded broker
// (4 paho publishers, QoS 1, at most 2000 unacknowledged messages each)
// for COID_SOAK_DURATION (a Go duration, default 20s; the figure
// is 10m) and checks that the resident size stays flat (anonymous memory:
// see rssBytes), sampled every second: the largest RSS after the warm-up
// is within 20% of the largest in the warm-up's second half (peak to
// peak: where a sample falls in the GC cycle moves it by several MB), and
// the median RSS of the last tenth of the soak is within 20% of that of
// the first tenth after the warm-up (the trend). The checks fail the
// benchmark only with COID_SOAK_STRICT set. Run with -benchtime 1x.
//
// The warm-up is the first minute (the first quarter of shorter runs):
// the time it takes the publishers' windows (8000 messages in flight), the
// pipeline's and store's queues, the broker's client buffers and the Go
// heap's pacing to reach their working size. Growth after it is what
// would grow without end.
//
// COID_SOAK_RATE=n paces the publishers to n messages a second in all
// (default: as fast as the broker acknowledges).
//
// COID_SOAK_DEBUG=x logs, every 5 s, RSS and the Go runtime's memory
// figures to stderr; when x is a directory, after a forced GC, and heap
// profiles are written into it (compare two with go tool pprof -base).
func BenchmarkSoakMemory(b *testing.B) {
	d := 20 * time.Second
	if v := os.Getenv("COID_SOAK_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			b.Fatalf("COID_SOAK_DURATION: %v", err)
		}
	}
	rate := float64(benchEnvInt("COID_SOAK_RATE", 0))
	if dir := os.Getenv("COID_SOAK_DEBUG"); dir != "" {
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			runtime.MemProfileRate = 32 << 10
		}
	}
	for range b.N {
		e := newEnv(b, "embedded")
		const pubs = 4
		var sent atomic.Uint64
		stop := make(chan struct{})
		var wg sync.WaitGroup
		base := time.Now().Add(-time.Hour)
		for p := range pubs {
			c := publisher(b, e.url)
			wg.Go(func() {
				id := fmt.Sprintf("SHP-S%d", p)
				topic := sensors.TelemetryTopic(e.prefix, id)
				var toks []mqtt.Token
				t0 := time.Now()
				for i := 0; ; i++ {
					if rate > 0 {
						// Paced: message i is due at i/(rate/pubs) s.
						if wait := time.Until(t0.Add(time.Duration(float64(i) * float64(pubs) / rate * float64(time.Second)))); wait > 0 {
							time.Sleep(wait)
						}
					}
					select {
					case <-stop:
						for _, t := range toks {
							t.WaitTimeout(10 * time.Second)
						}
						return
					default:
					}
					// Device times 10µs apart stay in the past for hours.
					pl := fmt.Appendf(nil, `{"shipper":%q,"seq":%d,"time":%q,"temp_c":-180.5,"tilt_deg":2,"lid_open":false}`,
						id, i, base.Add(time.Duration(i)*10*time.Microsecond).UTC().Format(time.RFC3339Nano))
					toks = append(toks, c.Publish(topic, 1, false, pl))
					sent.Add(1)
					if len(toks) >= 2000 {
						toks[0].WaitTimeout(10 * time.Second)
						toks = toks[1:]
					}
				}
			})
		}
		start := time.Now()
		warmFor := min(d/4, time.Minute)
		warm := start.Add(warmFor)
		var rssWarm, rssMax uint64
		var after []uint64 // one sample a second after the warm-up
		for i := 0; time.Since(start) < d; i++ {
			time.Sleep(time.Second)
			r := rssBytes(b)
			if dbg := os.Getenv("COID_SOAK_DEBUG"); dbg != "" && i%5 == 0 {
				soakDebug(b, dbg, fmt.Sprintf("%03d", int(time.Since(start).Seconds())), r, e.pipe.Stats().Stored)
			}
			if now := time.Now(); now.Before(warm) {
				if now.After(warm.Add(-warmFor / 2)) {
					rssWarm = max(rssWarm, r)
				}
				continue
			}
			rssMax = max(rssMax, r)
			after = append(after, r)
		}
		close(stop)
		wg.Wait()
		elapsed := time.Since(start)
		rssEnd := rssBytes(b)
		growth := float64(rssMax) / float64(rssWarm)
		// The trend, which the maxima's noise (where each sample falls in
		// the GC cycle) hides: the median of the first and of the last
		// tenth (at least 10 s) of the samples after the warm-up.
		n := max(10, len(after)/10)
		first, last := median(after[:min(n, len(after))]), median(after[max(0, len(after)-n):])
		b.ReportMetric(float64(first)/(1<<20), "rss-first-MB")
		b.ReportMetric(float64(last)/(1<<20), "rss-last-MB")
		b.ReportMetric(float64(last)/float64(first), "rss-trend")
		b.ReportMetric(0, "ns/op")
		b.ReportMetric(float64(rssWarm)/(1<<20), "rss-warm-MB")
		b.ReportMetric(float64(rssMax)/(1<<20), "rss-max-MB")
		b.ReportMetric(float64(rssEnd)/(1<<20), "rss-end-MB")
		b.ReportMetric(growth, "rss-growth")
		b.ReportMetric(float64(procStatus(b, "RssFile:"))/(1<<20), "rss-file-MB")
		b.ReportMetric(float64(sent.Load())/elapsed.Seconds(), "msgs/s")
		b.ReportMetric(float64(e.store.Reopens()), "reopens")
		st := e.pipe.Stats()
		b.Logf("%s: %d messages, %d stored, rss %.1f MB after warm-up, max %.1f MB", d, sent.Load(), st.Stored,
			float64(rssWarm)/(1<<20), float64(rssMax)/(1<<20))
		// Judged only when COID_SOAK_STRICT is set: a 20 s run (make
		// bench) is too short for its warm-up to settle.
		if os.Getenv("COID_SOAK_STRICT") != "" {
			if growth > 1.2 {
				b.Errorf("resident size peaked %.0f%% above its peak at the end of the warm-up (%.1f MB -> %.1f MB)", (growth-1)*100,
					float64(rssWarm)/(1<<20), float64(rssMax)/(1<<20))
			}
			if trend := float64(last) / float64(first); trend > 1.2 {
				b.Errorf("resident size grew %.0f%% between the first and the last tenth of the soak (%.1f MB -> %.1f MB)",
					(trend-1)*100, float64(first)/(1<<20), float64(last)/(1<<20))
			}
		}
		e.close()
	}
}

// median returns the median of v (which it sorts).
func median(v []uint64) uint64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// soakDebug logs the Go runtime's view of memory and, when dir is a
// directory, writes a heap profile named after tag into it (compare two
// with go tool pprof -base).
func soakDebug(b *testing.B, dir, tag string, rss, stored uint64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heapAlloc := ms.HeapAlloc
	st, err := os.Stat(dir)
	profile := err == nil && st.IsDir()
	if profile {
		// The live heap, and an up-to-date profile.
		runtime.GC()
		runtime.ReadMemStats(&ms)
	}
	fmt.Fprintf(os.Stderr, "soak: t=%ss heap-alloc-after-gc=%.1fMB stored=%d rss-anon=%.1fMB heap-alloc=%.1fMB heap-inuse=%.1fMB heap-idle-unreleased=%.1fMB stacks=%.1fMB other-sys=%.1fMB goroutines=%d gc=%d\n",
		tag, float64(ms.HeapAlloc)/(1<<20), stored, float64(rss)/(1<<20), float64(heapAlloc)/(1<<20), float64(ms.HeapInuse)/(1<<20),
		float64(ms.HeapIdle-ms.HeapReleased)/(1<<20), float64(ms.StackInuse)/(1<<20),
		float64(ms.Sys-ms.HeapSys-ms.StackSys)/(1<<20), runtime.NumGoroutine(), ms.NumGC)
	if profile {
		f, err := os.Create(filepath.Join(dir, "heap-"+tag+".pprof"))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			b.Fatal(err)
		}
	}
}
