package custody_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/passwd"
)

// fenceStore refuses appends under a fence older than its epoch, as a
// store with Leadership does, and counts the fenced drafts it saw.
type fenceStore struct {
	custody.Store
	mu     sync.Mutex
	epoch  int64
	fenced []custody.Fence
}

func (f *fenceStore) Append(ctx context.Context, d custody.Draft) (custody.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d.Fence != nil {
		f.fenced = append(f.fenced, *d.Fence)
		if d.Fence.Epoch < f.epoch {
			return custody.Record{}, custody.ErrFenced
		}
	}
	return f.Store.Append(ctx, d)
}

// TestSystemRecordsCarryTheFence: the records a led job appends (an
// excursion here) carry the fence of the context they are appended under,
// and a refusal reaches the caller as ErrFenced, nothing recorded; records
// appended under no leadership carry none.
func TestSystemRecordsCarryTheFence(t *testing.T) {
	e := newEnv(t)
	fs := &fenceStore{Store: e.store, epoch: 2}
	svc, err := custody.NewService(custody.Config{Store: fs, Hasher: passwd.Fast(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: e.clock, FIN: "A9999", Profiles: slices.Sorted(maps.Keys(custody.BuiltinProfiles())),
		Telemetry: custody.TelemetryConfig{Readings: e.store}})
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	coi := e.enroll()
	e.advance(coi, custody.StateToManufacturing)
	c, err := e.svc.Chain(e.ctx, coi)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs.fenced) != 0 {
		t.Fatalf("records appended under no leadership carried fences: %v", fs.fenced)
	}
	leg := c.Legs[0]
	e.setNow(leg.ShippedAt.Add(45 * time.Minute))
	start := leg.ShippedAt.Add(10 * time.Minute)
	x := custody.Excursion{ID: custody.ExcursionID(custody.ExcursionTemperature, start), Kind: custody.ExcursionTemperature,
		Start: start, End: start.Add(8 * time.Minute), Duration: 8 * time.Minute, Breach: 8 * time.Minute}
	old := custody.WithFence(e.ctx, custody.Fence{Job: "excursion-monitor", Epoch: 1})
	if _, _, err := e.svc.RecordExcursion(old, coi, 1, x); !errors.Is(err, custody.ErrFenced) {
		t.Fatalf("excursion under a superseded leadership: %v, want ErrFenced", err)
	}
	cur := custody.WithFence(e.ctx, custody.Fence{Job: "excursion-monitor", Epoch: 2})
	if _, added, err := e.svc.RecordExcursion(cur, coi, 1, x); err != nil || !added {
		t.Fatalf("excursion under the current leadership: %v %v", added, err)
	}
	want := []custody.Fence{{Job: "excursion-monitor", Epoch: 1}, {Job: "excursion-monitor", Epoch: 2}}
	if !slices.Equal(fs.fenced, want) {
		t.Fatalf("fences appended under %v, want %v", fs.fenced, want)
	}
	if f := custody.FenceOf(e.ctx); f != nil {
		t.Fatalf("a context without a fence has %+v", f)
	}
}
