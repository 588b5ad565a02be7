package pgstore_test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"

	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/pgstore/pgtest"
	"github.com/coid-project/coid/custody/storetest"
	"github.com/jackc/pgx/v5"
)

// BenchmarkAppend64 measures durable appends with 64 writers on PostgreSQL
// (synchronous_commit and fsync as the server has them, on by default) and
// on bbolt in the same run, so the two figures compare on one machine
// under one load.
//
// Each reports the benchmark process's CPU a record (cpu-µs/record: the
// writers building their drafts and the store's client side) and, for
// PostgreSQL on this machine, the CPU of the store's server backends a
// record (server-cpu-µs/record, read from /proc; not reported when the
// server's processes cannot be read), which a loaded machine's wall time
// hides.
//
// COID_BENCH_CHAINS=N first enrolls N other chains in each store, not
// timed, to measure the append on a store of that many chains (at most
// 499,999).
func BenchmarkAppend64(b *testing.B) {
	b.Run("postgres", func(b *testing.B) {
		app := "coidbench_" + strings.ToLower(rand.Text()[:12])
		s := open(b, pgtest.Schema(b)+"&application_name="+app)
		enrollOthers(b, s)
		before, okBefore := backendCPU(b, app)
		cpu := processCPU()
		storetest.BenchAppend(b, s, 64)
		b.ReportMetric(float64(processCPU()-cpu)/float64(time.Microsecond)/float64(b.N), "cpu-µs/record")
		if after, ok := backendCPU(b, app); ok && okBefore {
			b.ReportMetric(float64(after-before)/float64(time.Microsecond)/float64(b.N), "server-cpu-µs/record")
		}
	})
	b.Run("bbolt", func(b *testing.B) {
		s, err := boltstore.Open(b.TempDir(), boltstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		enrollOthers(b, s)
		cpu := processCPU()
		storetest.BenchAppend(b, s, 64)
		b.ReportMetric(float64(processCPU()-cpu)/float64(time.Microsecond)/float64(b.N), "cpu-µs/record")
	})
}

// enrollOthers enrolls COID_BENCH_CHAINS chains (none if unset) in l with
// 64 writers, numbered from 500,000 so that they are not the benchmark's
// chains.
func enrollOthers(b *testing.B, l custody.Ledger) {
	n, err := strconv.Atoi(cmp.Or(os.Getenv("COID_BENCH_CHAINS"), "0"))
	if err != nil || n < 0 || n > 499_999 {
		b.Fatalf("COID_BENCH_CHAINS=%q: want a count from 0 to 499999", os.Getenv("COID_BENCH_CHAINS"))
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for i := range next {
				if _, err := l.Append(context.Background(), storetest.Draft(storetest.COI(500_000+i), i, true, 0)); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendCPU sums the CPU time (user and system) of the server processes
// serving connections named app, read from /proc/PID/stat in clock ticks
// of 10 ms (Linux's USER_HZ); ok is false when a process cannot be read
// (a server on another machine or another user's processes).
func backendCPU(b *testing.B, app string) (cpu time.Duration, ok bool) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgtest.ServerURL())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, _ := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1`, app)
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		b.Fatal(err)
	}
	for _, pid := range pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, false
		}
		// The fields after the command's closing parenthesis: utime and
		// stime are the 12th and 13th of them.
		i := bytes.LastIndexByte(raw, ')')
		f := strings.Fields(string(raw[i+1:]))
		if i < 0 || len(f) < 13 {
			return 0, false
		}
		for _, v := range f[11:13] {
			t, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, false
			}
			cpu += time.Duration(t) * 10 * time.Millisecond
		}
	}
	return cpu, len(pids) > 0
}

// BenchmarkAccessRows measures what the triage queue reads of the store
// over n open requests: the access index's rows ("index"), and, for
// comparison, what the service read before the index was kept
// ("fold": the submitted chains' summaries, then each request's records,
// folded into its row; the service's own fold of each request is on top
// of that).
func BenchmarkAccessRows(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		ctx := context.Background()
		s := open(b, pgtest.Schema(b))
		ids := make(chan int)
		var wg sync.WaitGroup
		for range 32 {
			wg.Go(func() {
				for i := range ids {
					rec := triageRecord(custody.COI(fmt.Sprintf("EAA9999260%05d", i)), custody.StepAccessSubmit, i%60, submitData)
					w, err := custody.AccessRowOf([]custody.Record{rec})
					if err != nil {
						b.Error(err)
						return
					}
					if _, err := s.Append(ctx, custody.Draft{Record: rec, NewChain: true, State: custody.AccessSubmitted, Product: "CART-19",
						Sites: custody.Sites{Treatment: "PAR-1", Manufacturing: "MFG-1"}, Access: &w}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		for i := range n {
			ids <- i
		}
		close(ids)
		wg.Wait()
		b.Run(fmt.Sprintf("index/%d", n), func(b *testing.B) {
			for b.Loop() {
				rows, err := s.AccessRows(ctx, custody.AccessSubmitted, custody.AccessInfoRequested)
				if err != nil || len(rows) != n {
					b.Fatalf("%d rows, %v", len(rows), err)
				}
			}
		})
		b.Run(fmt.Sprintf("fold/%d", n), func(b *testing.B) {
			for b.Loop() {
				infos, err := s.Chains(ctx, custody.AccessSubmitted)
				if err != nil || len(infos) != n {
					b.Fatalf("%d chains, %v", len(infos), err)
				}
				for _, ci := range infos {
					recs, err := s.Records(ctx, ci.COI)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := custody.AccessRowOf(recs); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
