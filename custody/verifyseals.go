package custody

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// sealJob is one leg's seal to recompute: the receive record that holds
// it, its chain and the seal.
type sealJob struct {
	seq  uint64
	coi  COI
	seal ReceiveSeal
}

// verifyLedgerSeals recomputes, from the stored readings, the telemetry
// seal of every leg received after record seals.after (0: every leg) up
// to the rep.Records verified, and fails rep at the earliest receive
// record whose seal no longer matches. The verification of the log noted
// the records that may carry a seal (seals.seqs); GOMAXPROCS goroutines
// read and decode those (only those: no chain is read and folded) and
// recompute one leg's seal at a time. Memory: 8 bytes a leg, and one
// leg's readings per goroutine.
func (s *Service) verifyLedgerSeals(ctx context.Context, seals *sealCandidates, rep *Report) error {
	if s.tele.Readings == nil || !rep.OK {
		return nil
	}
	workers := max(1, runtime.GOMAXPROCS(0))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		bad      = Report{OK: true}
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
		mu.Unlock()
	}
	// The positions of the records that may carry a seal were noted as
	// the log was verified (verifyLog); the seals are checked after that
	// read has ended, each in read transactions of its own: opened while
	// the log's read is still open, they could wait for a writer that
	// waits for that read to end (bbolt grows its memory map only once
	// every read has ended).
	seqs := seals.seqs
	var err error
	var next atomic.Int64
	for range workers {
		wg.Go(func() {
			var w sealWork // one leg at a time, its memory reused
			for {
				i := int(next.Add(1) - 1)
				if i >= len(seqs) || ctx.Err() != nil {
					return
				}
				j, ok, err := s.receiveSealJob(ctx, seqs[i], &w)
				if err != nil {
					fail(err)
					return
				}
				if !ok {
					continue
				}
				cr := Report{OK: true}
				if err := s.checkLegSeal(ctx, j, &cr, &w); err != nil {
					fail(err)
					return
				}
				if !cr.OK {
					mu.Lock()
					if bad.OK || cr.FirstBad < bad.FirstBad {
						bad, bad.Chain = cr, j.coi
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if err == nil {
		err = firstErr
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("verify ledger: seals: %w", err)
	}
	if !bad.OK && (rep.OK || bad.FirstBad < rep.FirstBad) {
		rep.fail(bad.FirstBad, "%s", bad.Problem)
		rep.Chain = bad.Chain
	}
	return nil
}

// ReadingAppender is a ReadingStore that can read a shipper's readings
// into memory the caller gives, so that verification reuses one buffer
// for every leg instead of allocating each leg's readings anew.
type ReadingAppender interface {
	// AppendShipperReadings is ShipperReadings appending to dst[:0].
	AppendShipperReadings(ctx context.Context, dst []Reading, shipper string, from, to time.Time, through uint64) ([]Reading, uint64, error)
}

// sealedReadings returns the stored readings a seal covers, in buf's
// memory when there is a buffer and the store can fill it.
func (s *Service) sealedReadings(ctx context.Context, rs ReceiveSeal, buf *[]Reading) ([]Reading, error) {
	if ra, ok := s.tele.Readings.(ReadingAppender); ok && buf != nil {
		out, _, err := ra.AppendShipperReadings(ctx, *buf, rs.Shipper, rs.From, rs.To, rs.Watermark)
		if err != nil {
			return nil, err
		}
		*buf = out
		return out, nil
	}
	out, _, err := s.tele.Readings.ShipperReadings(ctx, rs.Shipper, rs.From, rs.To, rs.Watermark)
	return out, err
}

// receiveSealJob returns the seal job of record seq when it is a receive
// record that carries a telemetry seal. When the store hands out its
// stored bytes (StoredRecordReader), the seal is read from them without
// decoding the whole record (readReceiveSeal); anything unusual there is
// left to the whole record's decoding.
func (s *Service) receiveSealJob(ctx context.Context, seq uint64, w *sealWork) (sealJob, bool, error) {
	if rr, ok := s.store.(StoredRecordReader); ok && w != nil {
		var h Hash
		var err error
		w.record, h, err = rr.AppendStoredRecord(ctx, w.record[:0], seq)
		if err != nil {
			return sealJob{}, false, fmt.Errorf("record %d: %w", seq, err)
		}
		if coi, rs, ok := readReceiveSeal(w.record, h, seq); ok {
			return sealJob{seq: seq, coi: coi, seal: rs}, true, nil
		}
	}
	r, err := s.store.Record(ctx, seq)
	if err != nil {
		return sealJob{}, false, fmt.Errorf("record %d: %w", seq, err)
	}
	pd, err := r.Parsed()
	if err != nil {
		return sealJob{}, false, fmt.Errorf("record %d: %w", seq, err)
	}
	d, ok := pd.(ReceiveData)
	if !ok || d.Telemetry == nil {
		return sealJob{}, false, nil
	}
	return sealJob{seq: seq, coi: r.Chain, seal: *d.Telemetry}, true, nil
}

// checkLegSeal recomputes the seal of job j from the stored readings and
// fails rep at its receive record when it no longer matches; w is the
// worker's memory.
func (s *Service) checkLegSeal(ctx context.Context, j sealJob, rep *Report, w *sealWork) error {
	p, _ := s.profile(j.seal.Seal.Profile)
	ok, problem, err := s.checkSealIn(ctx, j.seal, p, w)
	if err != nil {
		return fmt.Errorf("verify seals of %s: %w", j.coi, err)
	}
	if !ok {
		s.log.Error("leg seal verification failed", "coi", string(j.coi), "leg", j.seal.Leg, "problem", problem)
		rep.fail(j.seq, "chain %s leg %d: telemetry seal does not match the stored readings: %s", j.coi, j.seal.Leg, problem)
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
	seals := &sealCandidates{after: after}
	rep, err := verifyLog(ctx, s.store, s.journey, seals)
	if err != nil {
		return Report{}, err
	}
	if err := s.verifyLedgerSeals(ctx, seals, &rep); err != nil {
		return Report{}, err
	}
	if !rep.OK {
		s.log.Error("ledger verification failed", "first_bad", rep.FirstBad, "problem", rep.Problem)
	}
	return rep, nil
}
