package custody

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Checkpoint is a head of the ledger recorded outside it: the number of
// records the ledger held and the hash of the last one, as `coid verify`
// prints them and every custody report carries them. Verification finds
// any record changed, moved or removed inside the ledger, but a ledger cut
// back to an earlier length, or rewritten with fresh hashes from some point
// on, verifies on its own; a checkpoint kept elsewhere catches both.
type Checkpoint struct {
	Records uint64
	Head    Hash
}

// String returns the checkpoint as N:HEX, the form ParseCheckpoint reads.
func (c Checkpoint) String() string { return strconv.FormatUint(c.Records, 10) + ":" + c.Head.String() }

// MaxCheckpointRecords is the largest record count a checkpoint may
// name: 2^53-1, the largest integer every JSON reader holds exactly. A
// ledger that long is beyond any real one; a larger count is a made-up
// checkpoint, refused as bad input rather than reported as a ledger cut
// back.
const MaxCheckpointRecords = 1<<53 - 1

// ParseCheckpoint reads N:HEX: a record count from 1 to
// MaxCheckpointRecords and the 64-digit hex hash of that record. Anything
// else is ErrInvalid.
func ParseCheckpoint(s string) (Checkpoint, error) {
	n, h, ok := strings.Cut(s, ":")
	if !ok {
		return Checkpoint{}, fmt.Errorf("checkpoint %s: want RECORDS:HEAD (e.g. 1234:9f2c...): %w", quoteShort(s), ErrInvalid)
	}
	records, err := strconv.ParseUint(n, 10, 64)
	if err != nil || records == 0 || records > MaxCheckpointRecords {
		return Checkpoint{}, fmt.Errorf("checkpoint %s: the record count must be a number from 1 to %d: %w",
			quoteShort(s), uint64(MaxCheckpointRecords), ErrInvalid)
	}
	head, err := ParseHash(h)
	if err != nil || head.IsZero() {
		return Checkpoint{}, fmt.Errorf("checkpoint %s: the head must be 64 hex digits: %w", quoteShort(s), ErrInvalid)
	}
	return Checkpoint{Records: records, Head: head}, nil
}

// quoteShort quotes s for an error message, cut after 100 bytes: a
// checkpoint is under 90, and a message need not repeat a huge input.
func quoteShort(s string) string {
	const limit = 100
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}

// VerifyLedgerAt verifies the ledger as VerifyLedger does and then checks
// that it still holds each checkpoint: record Records exists and its hash
// is Head. A ledger now shorter fails at the first missing record; a
// different record at that position fails there (the ledger was rewritten
// at or before it).
func (s *Service) VerifyLedgerAt(ctx context.Context, cps []Checkpoint) (Report, error) {
	rep, err := s.VerifyLedger(ctx)
	if err != nil || !rep.OK {
		return rep, err
	}
	for _, cp := range cps {
		if cp.Records > rep.Records {
			rep.fail(rep.Records+1, "checkpoint %s: the ledger holds %d records, fewer than the %d it held then: it was cut back or rolled back",
				cp, rep.Records, cp.Records)
			break
		}
		r, err := s.store.Record(ctx, cp.Records)
		if errors.Is(err, ErrNotFound) {
			rep.fail(cp.Records, "checkpoint %s: record %d is missing", cp, cp.Records)
			break
		}
		if err != nil {
			return Report{}, fmt.Errorf("verify ledger: checkpoint %s: %w", cp, err)
		}
		if r.Hash != cp.Head {
			rep.fail(cp.Records, "checkpoint %s: record %d is now %s: the ledger was rewritten at or before it", cp, cp.Records, r.Hash)
			break
		}
	}
	if !rep.OK {
		s.log.Error("ledger does not hold a checkpoint", "first_bad", rep.FirstBad, "problem", rep.Problem)
	}
	return rep, nil
}
