package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/coid-project/coid/custody"
)

// waitlistEvery is how often serve runs the waiting list's allocation:
// offers past their time expire and pass on within it, and slots freed
// outside an unschedule, a cancel or a capacity change (a day coming into
// the offer window) are offered.
const waitlistEvery = time.Minute

// startWaitlist runs the waiting list's allocation every waitlistEvery as
// the system until the returned stop is called.
func startWaitlist(svc *custody.Service, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	sys := custody.User{ID: "system", Role: custody.RoleSystem}
	wg.Go(func() {
		t := time.NewTicker(waitlistEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if ds, err := svc.AllocateWaitlist(ctx, sys); err != nil && ctx.Err() == nil {
					log.Warn("waiting list allocation failed", "err", err.Error())
				} else if len(ds) > 0 {
					log.Info("waiting list offers", "count", len(ds))
				}
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}
