package boltstore_test

import (
	"context"
	"testing"

	"github.com/coid-project/coid/custody/boltstore"
	"github.com/coid-project/coid/custody/boltstore/storegen"
)

// BenchmarkKeptCheckFile measures CheckFile, the whole-file check of coid
// verify, over the kept stores storegen.FromEnv names (COID_BENCH_STORE,
// COID_BENCH_CHAINS), opened read-only; skipped without them. Run it
// with a short -benchtime, for example
//
//	COID_BENCH_STORE=/var/tmp/coid-bench COID_BENCH_CHAINS=10000 go test -run '^$' -bench KeptCheckFile -benchtime 3x ./custody/boltstore
func BenchmarkKeptCheckFile(b *testing.B) {
	root, cfgs, err := storegen.FromEnv()
	if err != nil {
		b.Fatal(err)
	}
	if root == "" {
		b.Skip("no kept stores: set " + storegen.EnvStore)
	}
	for _, cfg := range cfgs {
		b.Run(cfg.Dir(""), func(b *testing.B) {
			st, err := boltstore.Open(cfg.Dir(root), boltstore.Options{ReadOnly: true})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			b.ResetTimer()
			for b.Loop() {
				if err := st.CheckFile(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
