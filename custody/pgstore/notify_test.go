package pgstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/coid-project/coid/custody/pgstore/pgtest"
)

// TestBroadcast: what one store broadcasts, another on the same schema
// hears; a store on another schema does not.
func TestBroadcast(t *testing.T) {
	url := pgtest.Schema(t)
	a, b, c := open(t, url), open(t, url), open(t, pgtest.Schema(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	heard := func(s interface {
		Listen(context.Context, string, func([]byte)) error
	}) chan string {
		out := make(chan string, 1000)
		go s.Listen(ctx, "alerts", func(p []byte) { out <- string(p) })
		return out
	}
	onB, onC := heard(b), heard(c)
	// a sends until b, listening by then, hears.
	deadline := time.After(hangBound)
	for sent := false; !sent; {
		if err := a.Broadcast(ctx, "alerts", []byte("from a")); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-onB:
			if p != "from a" {
				t.Fatalf("b heard %q", p)
			}
			sent = true
		case <-time.After(50 * time.Millisecond): // not asserted: a's next send
		case <-deadline:
			t.Fatal("hang: b never heard a")
		}
	}
	// c, on another schema, hears its own message and none of a's before
	// it (notifications arrive in the order they were sent).
	for {
		if err := c.Broadcast(ctx, "alerts", []byte("from c")); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-onC:
			if p != "from c" {
				t.Fatalf("c, on another schema, heard %q", p)
			}
			return
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("hang: c never heard itself")
		}
	}
}
