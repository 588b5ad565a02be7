package custody

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
)

// verifyLedgerSeals recomputes, from the stored readings, the telemetry
// seal of every leg received after record after (0: every leg) of every
// chain, on GOMAXPROCS goroutines each taking the next chain, and fails
// rep at the earliest receive record whose seal no longer matches (as
// checkSeals does for one chain). A chain whose head is at or before
// after is not read: none of its legs was received since. Memory is
// bounded by one chain and one leg's readings per goroutine.
func (s *Service) verifyLedgerSeals(ctx context.Context, after uint64, rep *Report) error {
	if s.tele.Readings == nil || !rep.OK {
		return nil
	}
	chains, err := s.store.Chains(ctx, "")
	if err != nil {
		return fmt.Errorf("verify ledger: %w", err)
	}
	var (
		next     atomic.Int64
		mu       sync.Mutex
		bad      = Report{OK: true}
		firstErr error
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range max(1, min(runtime.GOMAXPROCS(0), len(chains))) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(chains) || ctx.Err() != nil {
					return
				}
				ci := chains[i]
				if ci.State.Access() || ci.HeadSeq <= after {
					continue
				}
				cr := Report{OK: true}
				err := s.checkSealsAfter(ctx, ci.COI, after, &cr)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
					cancel()
				}
				if !cr.OK && (bad.OK || cr.FirstBad < bad.FirstBad) {
					bad, bad.Chain = cr, ci.COI
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("verify ledger: %w", firstErr)
	}
	if !bad.OK && (rep.OK || bad.FirstBad < rep.FirstBad) {
		rep.fail(bad.FirstBad, "%s", bad.Problem)
		rep.Chain = bad.Chain
	}
	return nil
}

// checkSealsAfter recomputes the seal of each leg of coi received after
// record after and fails rep at the receive record of the first that no
// longer matches its stored readings; the chain is read once.
func (s *Service) checkSealsAfter(ctx context.Context, coi COI, after uint64, rep *Report) error {
	c, err := s.Chain(ctx, coi)
	if err != nil {
		return err
	}
	for _, l := range c.Legs {
		if l.ReceiveSeq == 0 || l.ReceiveSeq <= after {
			continue
		}
		rs, err := receiveSealOf(c, l.ReceiveSeq)
		if err != nil {
			return fmt.Errorf("verify seals of %s: %w", coi, err)
		}
		if rs == nil {
			continue
		}
		p, _ := s.profile(rs.Seal.Profile)
		ok, problem, err := s.checkSeal(ctx, *rs, p)
		if err != nil {
			return fmt.Errorf("verify seals of %s: %w", coi, err)
		}
		if !ok {
			s.log.Error("leg seal verification failed", "coi", string(coi), "leg", l.N, "problem", problem)
			rep.fail(l.ReceiveSeq, "chain %s leg %d: telemetry seal does not match the stored readings: %s", coi, l.N, problem)
			return nil
		}
	}
	return nil
}

// VerifyLedgerSince verifies the ledger for an operator who verified it
// up to record after before: every record's hash and links, every chain's
// summary, index and state (VerifyLogJourney: cheap, and what ties the
// records before after to the later ones), and the telemetry seal of
// every leg received after record after, recomputed from its stored
// readings on every CPU (the costly part, which after 0 does for every
// leg). An integrity failure is logged at error level; the report names
// the first bad record.
func (s *Service) VerifyLedgerSince(ctx context.Context, after uint64) (Report, error) {
	rep, err := VerifyLogJourney(ctx, s.store, s.journey)
	if err != nil {
		return Report{}, err
	}
	if err := s.verifyLedgerSeals(ctx, after, &rep); err != nil {
		return Report{}, err
	}
	if !rep.OK {
		s.log.Error("ledger verification failed", "first_bad", rep.FirstBad, "problem", rep.Problem)
	}
	return rep, nil
}
