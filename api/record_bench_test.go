package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// BenchmarkPostRecord measures POST /api/v1/chains/{coi}/records over real
// connections with 8 concurrent clients, each walking its own chains
// through the default journey (collection to infusion, nine records a
// chain), then taking the next chain enrolled beforehand (enrollment is
// not timed). It reports the recorded steps per second. The clients share
// the environment's one user of each role, and the API holds a caller to
// 10 signed requests in flight (its failed-signature reservations), so
// there are fewer than 10 clients.
func BenchmarkPostRecord(b *testing.B) {
	const clients, perChain = 8, 9
	e := newEnv(b, forBenchmark())
	ctx := context.Background()
	actor, err := e.svc.User(ctx, coord)
	if err != nil {
		b.Fatal(err)
	}
	chains := make([]custody.COI, b.N/perChain+clients+1)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(chains)); i = next.Add(1) - 1 {
				c, err := e.svc.Enroll(ctx, actor, custody.EnrollRequest{
					Patient: custody.PHI{Name: patientA.Name, BirthDate: patientA.BirthDate, MRN: patientA.MRN},
					Product: "autologous anti-CD19 CAR-T", Sites: custody.Sites{Collection: "St. Elsewhere Apheresis",
						Manufacturing: "CellWorks Plant 2", Treatment: "St. Elsewhere Cell Therapy Ward"}})
				if err != nil {
					b.Error(err)
					return
				}
				chains[i] = c.COI
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	type post struct {
		target, auth string
		body         []byte
	}
	posts := make([][]post, len(chains))
	ts := httptest.NewServer(e.srv.Handler())
	b.Cleanup(ts.Close)
	for i, coi := range chains {
		for _, s := range journey(coi, patientA.MRN) {
			body, err := json.Marshal(stepBody(s.step, s.data, s.sigs...))
			if err != nil {
				b.Fatal(err)
			}
			posts[i] = append(posts[i], post{ts.URL + chainPath(coi, "/records"), "Bearer " + e.tokens[s.actor], body})
		}
		if len(posts[i]) != perChain {
			b.Fatalf("journey has %d steps, want %d", len(posts[i]), perChain)
		}
	}
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	b.Cleanup(tr.CloseIdleConnections)
	var ops, nextChain atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Go(func() {
			c, k := nextChain.Add(1)-1, 0
			for ops.Add(1) <= int64(b.N) {
				if k == perChain {
					c, k = nextChain.Add(1)-1, 0
				}
				if err := postStep(client, posts[c][k].target, posts[c][k].auth, posts[c][k].body); err != nil {
					b.Error(fmt.Errorf("step %d of chain %s: %w", k, chains[c], err))
					return
				}
				k++
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
}

// postStep posts one step and wants 201 Created.
func postStep(client *http.Client, target, auth string, body []byte) error {
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	msg, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusCreated {
		return fmt.Errorf("status %d: %s", res.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}
