package boltstore

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/passwd"
	bolt "go.etcd.io/bbolt"
)

// BenchmarkExpiringQualifications reads, through the service, the
// qualifications expiring within 30 days from registries of 1,000, 10,000
// and 100,000 sites whose qualification expiries spread over the coming
// three years: "scan" is the whole list as GET /qualifications/expiring
// read it before (every site and shipper), "page" the route's first page
// of 100 from the expiry index, "deep" a page from the middle of the
// list. The sites are written straight into the file, with their index
// entries, in one transaction: the durable registry write of each would
// make the set-up, not the read, the benchmark.
func BenchmarkExpiringQualifications(b *testing.B) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("sites=%d", n), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if err := s.update(func(tx *bolt.Tx) error {
				reg := tx.Bucket(registryBucketNames[custody.KindSite])
				for i := range n {
					code := fmt.Sprintf("S%06d", i)
					v := fmt.Appendf(nil, `{"code":%q,"time_zone":"Europe/Paris","accreditation":{"status":"accredited","expiry":%q},"qualification":{"expiry":%q}}`,
						code, now.AddDate(0, 0, 3*365+i%97).Format(custody.DateLayout), now.AddDate(0, 0, i%(3*365)).Format(custody.DateLayout))
					if err := reg.Put([]byte(code), v); err != nil {
						return err
					}
					if err := indexExpiries(tx, custody.KindSite, nil, v); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			svc, err := custody.NewService(custody.Config{Store: s, Hasher: passwd.Fast(), Logger: slog.New(slog.DiscardHandler),
				Now: func() time.Time { return now }, FIN: "A9999"})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			qa := custody.User{ID: "qa1", Role: custody.RoleQA}
			list, err := svc.ExpiringQualifications(ctx, qa, 30)
			if err != nil || len(list) == 0 {
				b.Fatalf("scan: %d, %v", len(list), err)
			}
			within := len(list)
			b.Run("scan", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if list, err := svc.ExpiringQualifications(ctx, qa, 30); err != nil || len(list) != within {
						b.Fatalf("scan: %d, %v", len(list), err)
					}
				}
			})
			_, mid, err := svc.ExpiringQualificationsPage(ctx, qa, 30, "", 100)
			if err != nil {
				b.Fatal(err)
			}
			b.Run("page", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					page, _, err := svc.ExpiringQualificationsPage(ctx, qa, 30, "", 100)
					if err != nil || len(page) != min(100, within) {
						b.Fatalf("page: %d (of %d), %v", len(page), within, err)
					}
				}
			})
			if mid == "" {
				return
			}
			// The cursor of a page in the middle of the list.
			for range within / 200 {
				_, next, err := svc.ExpiringQualificationsPage(ctx, qa, 30, mid, 100)
				if err != nil || next == "" {
					break
				}
				mid = next
			}
			b.Run("deep", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := svc.ExpiringQualificationsPage(ctx, qa, 30, mid, 100); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
