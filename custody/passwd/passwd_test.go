package passwd

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

func TestHashVerify(t *testing.T) {
	for _, h := range []Argon2id{Fast(), {MemoryKiB: 1024, Time: 2, Threads: 2}} {
		enc, err := h.Hash("correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(enc, "$argon2id$v=19$") || strings.Contains(enc, "correct") {
			t.Fatalf("encoded hash %q", enc)
		}
		tests := []struct {
			pw   string
			want bool
		}{{"correct horse battery", true}, {"correct horse batterY", false}, {"", false}}
		for _, tt := range tests {
			// Any Argon2id value verifies: parameters come from the hash.
			ok, err := Default().Verify(enc, tt.pw)
			if err != nil || ok != tt.want {
				t.Errorf("Verify(%q) = %v, %v; want %v", tt.pw, ok, err, tt.want)
			}
		}
		enc2, _ := h.Hash("correct horse battery")
		if enc2 == enc {
			t.Fatal("two hashes of one password are equal: salt not random")
		}
	}
}

func TestVerifyRejectsMalformed(t *testing.T) {
	for _, enc := range []string{"", "plain", "$argon2i$v=19$m=64,t=1,p=1$AAAA$AAAA", "$argon2id$v=18$m=64,t=1,p=1$AAAA$AAAA",
		"$argon2id$v=19$m=0,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=64,t=1,p=1$!!$AAAA", "$argon2id$v=19$m=99999999,t=1,p=1$AAAA$AAAA"} {
		if _, err := Fast().Verify(enc, "x"); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("Verify(%q) err = %v, want ErrInvalid", enc, err)
		}
	}
}

// countingHasher records how many calls run at once.
type countingHasher struct {
	Argon2id
	inFlight, peak atomic.Int32
}

func (c *countingHasher) Verify(encoded, password string) (bool, error) {
	n := c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	time.Sleep(2 * time.Millisecond)
	return c.Argon2id.Verify(encoded, password)
}

// TestLimitedBoundsConcurrentDerivations: however many verify at once,
// no more than the limit derive at the same time, and the answers are
// those of the hasher.
func TestLimitedBoundsConcurrentDerivations(t *testing.T) {
	c := &countingHasher{Argon2id: Fast()}
	h, err := c.Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	l := NewLimited(c, 2)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			ok, err := l.Verify(h, []string{"correct horse", "wrong"}[i%2])
			if err != nil || ok != (i%2 == 0) {
				t.Errorf("verify %d: %v %v", i, ok, err)
			}
		})
	}
	wg.Wait()
	if p := c.peak.Load(); p != 2 {
		t.Fatalf("%d derivations at once, want the limit, 2", p)
	}
}
