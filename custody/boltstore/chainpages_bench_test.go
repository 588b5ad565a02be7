package boltstore_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/boltstore/storegen"
	"github.com/coid-project/coid/custody/passwd"
	"github.com/coid-project/coid/custody/phitext"
	"github.com/coid-project/coid/custody/storetest"
)

// BenchmarkChainsForPage reads, through the service, two 50-chain pages
// of GET /api/v1/chains from a quarter of the way into stores of 1,000, 10,000 and
// 100,000 chains: one of every chain as an administrator, one of the
// collected chains (a tenth of them) as a nurse whose scope the summary's
// sites decide. A page's cost should not follow the store's size.
//
// With COID_BENCH_STORE set it reads the kept stores of storegen instead
// (COID_BENCH_CHAINS), whose chains are all infused: the nurse's page is
// then one of infused chains.
func BenchmarkChainsForPage(b *testing.B) {
	if root, cfgs, err := storegen.FromEnv(); err != nil || root != "" {
		if err != nil {
			b.Fatal(err)
		}
		for _, cfg := range cfgs {
			b.Run(fmt.Sprintf("kept-chains=%d", cfg.Chains), func(b *testing.B) {
				dir, _, err := storegen.Ensure(context.Background(), root, cfg)
				if err != nil {
					b.Fatal(err)
				}
				s, err := boltstore.Open(dir, boltstore.Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				now := cfg.End().Add(time.Hour)
				svc, err := storegen.NewService(s, func() time.Time { return now }, nil)
				if err != nil {
					b.Fatal(err)
				}
				quarter, err := s.ChainsAfter(context.Background(), "", "", cfg.Chains/4)
				if err != nil || len(quarter) == 0 {
					b.Fatalf("chains: %d, %v", len(quarter), err)
				}
				chainsForPages(b, svc, quarter[len(quarter)-1].COI, custody.StateInfused)
			})
		}
		return
	}
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("chains=%d", n), func(b *testing.B) {
			s, err := boltstore.Open(b.TempDir(), boltstore.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			var wg sync.WaitGroup
			for w := range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := w; i < n; i += 64 {
						d := storetest.Draft(storetest.COI(i+1), i, true, 0)
						d.Sites = custody.Sites{Collection: "S001", Manufacturing: "MFG-1", Treatment: "S002"}
						d.OpenIssues.Kept = true
						if i%10 == 0 {
							d.State = custody.StateCollected
						}
						if _, err := s.Append(ctx, d); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
			svc, err := custody.NewService(custody.Config{Store: s, Hasher: passwd.Fast(), Logger: slog.New(slog.DiscardHandler),
				Now: func() time.Time { return now }, FIN: "A9999", Folder: phitext.Folder{}})
			if err != nil {
				b.Fatal(err)
			}
			chainsForPages(b, svc, storetest.COI(n/4), custody.StateCollected)
		})
	}
}

// chainsForPages reads, b.N times, the 50-chain page after mid of every
// chain as an administrator, and the one of the chains in state as a
// nurse.
func chainsForPages(b *testing.B, svc *custody.Service, mid custody.COI, state custody.State) {
	ctx := context.Background()
	admin := custody.User{ID: "admin", Role: custody.RoleAdmin}
	nurse := custody.User{ID: "nurse1", Role: custody.RoleNurse}
	b.ReportAllocs()
	for b.Loop() {
		p, err := svc.ChainsFor(ctx, admin, "", mid, 50)
		if err != nil || len(p.Chains) != 50 || p.Next == "" {
			b.Fatalf("page: %d, %q, %v", len(p.Chains), p.Next, err)
		}
		p, err = svc.ChainsFor(ctx, nurse, state, mid, 50)
		if err != nil || len(p.Chains) != 50 || p.Next == "" {
			b.Fatalf("%s page: %d, %q, %v", state, len(p.Chains), p.Next, err)
		}
	}
}
