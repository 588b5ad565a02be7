package custody

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
)

// Report is the outcome of a verification. When OK is false, FirstBad is
// the log position (seq) of the first record that fails and Problem says
// how.
type Report struct {
	OK       bool   `json:"ok"`
	Records  uint64 `json:"records"`
	Head     string `json:"head"`
	FirstBad uint64 `json:"first_bad,omitempty"`
	Chain    COI    `json:"chain,omitempty"`
	Problem  string `json:"problem,omitempty"`
}

func (r *Report) fail(seq uint64, format string, args ...any) {
	r.OK, r.FirstBad, r.Problem = false, seq, fmt.Sprintf(format, args...)
}

// Err returns nil for a good report and an ErrChainBroken naming the first
// bad record otherwise.
func (r Report) Err() error {
	if r.OK {
		return nil
	}
	return fmt.Errorf("record %d: %s: %w", r.FirstBad, r.Problem, ErrChainBroken)
}

type verifyResult struct {
	key   uint64
	links Links
	err   error
}

const verifyBatch = 1024

// chainState is what VerifyLog learns of a chain from the log.
type chainState struct {
	head  Hash
	count uint64
	seq   uint64
}

// VerifyLog recomputes every record's hash, checks every log and chain
// link and sequence number, and compares the result with the store's head
// and chain summaries. Hashing runs on all CPUs; links are checked in log
// order. The report names the first record that fails. The error is
// non-nil only when the store could not be read.
func VerifyLog(ctx context.Context, src LogSource) (Report, error) {
	workers := max(1, runtime.GOMAXPROCS(0))
	type batch struct {
		items []LogEntry
		out   []verifyResult
		res   chan struct{} // a token once out is filled
	}
	work := make(chan *batch, workers*2)
	ordered := make(chan *batch, workers*4)
	// Batches go round: the checker hands each back once it is done with
	// it, so a million records do not leave a few hundred MB of garbage.
	free := make(chan *batch, workers*8)
	newBatch := func() *batch {
		select {
		case b := <-free:
			b.items = b.items[:0]
			return b
		default:
			return &batch{items: make([]LogEntry, 0, verifyBatch), out: make([]verifyResult, verifyBatch), res: make(chan struct{}, 1)}
		}
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for b := range work {
				for i, it := range b.items {
					l, err := ReadLinks(it.Body, it.Hash)
					b.out[i] = verifyResult{key: it.Key, links: l, err: err}
				}
				b.res <- struct{}{}
			}
		})
	}
	rep := Report{OK: true}
	chains := map[COI]*chainState{}
	var prev Hash
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range ordered {
			<-b.res
			for _, r := range b.out[:len(b.items)] {
				if !rep.OK {
					continue
				}
				want := rep.Records + 1
				switch {
				case r.key != want && r.key > want:
					rep.fail(want, "record missing: the log jumps from %d to %d (deleted record)", want-1, r.key)
					continue
				case r.key != want:
					rep.fail(r.key, "record out of order after %d", want-1)
					continue
				case r.err != nil:
					rep.fail(r.key, "%v", r.err)
					continue
				}
				l := r.links
				if l.Seq != r.key {
					rep.fail(r.key, "record stored at position %d says it is record %d (records swapped or moved)", r.key, l.Seq)
					continue
				}
				if l.Prev != prev {
					rep.fail(r.key, "link to record %d does not match: record %d was altered, replaced or removed", r.key-1, r.key-1)
					continue
				}
				cs := chains[l.Chain]
				if cs == nil {
					cs = &chainState{}
					chains[l.Chain] = cs
				}
				if l.ChainSeq != cs.count+1 || l.ChainPrev != cs.head {
					rep.fail(r.key, "chain %s link broken: expected chain record %d after record %d", l.Chain, cs.count+1, cs.seq)
					continue
				}
				cs.head, cs.count, cs.seq = l.Hash, cs.count+1, r.key
				prev = l.Hash
				rep.Records++
			}
			select {
			case free <- b:
			default:
			}
		}
	}()
	err := src.ReadLog(ctx, func(v LogView) error {
		// The entries stay valid until this function returns, so the
		// workers read them in place and are waited for below.
		cur := newBatch()
		flush := func() {
			if len(cur.items) == 0 {
				return
			}
			ordered <- cur
			work <- cur
			cur = newBatch()
		}
		n := 0
		for e := range v.Entries {
			cur.items = append(cur.items, e)
			if len(cur.items) == verifyBatch {
				flush()
			}
			if n++; n%(64*verifyBatch) == 0 && ctx.Err() != nil {
				break
			}
		}
		flush()
		close(work)
		close(ordered)
		wg.Wait()
		<-done
		if err := ctx.Err(); err != nil {
			return err
		}
		if rep.OK {
			return checkSummaries(&rep, v, prev, chains)
		}
		return nil
	})
	if err != nil {
		return Report{}, fmt.Errorf("verify log: %w", err)
	}
	rep.Head = prev.String()
	rep.Chain = ""
	return rep, nil
}

// checkSummaries compares the verified log with the store's head and
// chain summaries, read with it in one view.
func checkSummaries(rep *Report, v LogView, last Hash, chains map[COI]*chainState) error {
	if v.HeadSeq != rep.Records || v.HeadHash != last {
		if v.HeadSeq > rep.Records {
			rep.fail(rep.Records+1, "log truncated: the store's head is record %d but the log ends at %d", v.HeadSeq, rep.Records)
		} else {
			rep.fail(rep.Records, "the store's head (record %d) does not match the last record", v.HeadSeq)
		}
		return nil
	}
	err := v.Chains(func(ci ChainInfo) error {
		cs := chains[ci.COI]
		if cs == nil {
			rep.fail(ci.HeadSeq, "chain %s is listed but has no records", ci.COI)
			return errStop
		}
		if cs.count != ci.Records || cs.head != ci.HeadHash || cs.seq != ci.HeadSeq {
			rep.fail(min(cs.seq, ci.HeadSeq)+1, "chain %s summary (%d records, head %d) does not match the log (%d records, head %d)",
				ci.COI, ci.Records, ci.HeadSeq, cs.count, cs.seq)
			return errStop
		}
		delete(chains, ci.COI)
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	if rep.OK {
		for coi, cs := range chains {
			rep.fail(cs.seq, "chain %s has records but no summary", coi)
			break
		}
	}
	return nil
}

var errStop = errors.New("stop")

// VerifyChain checks one chain: every record's hash, chain links and
// sequence numbers, and the chain's summary. Log links are checked by
// VerifyLog.
func VerifyChain(ctx context.Context, src LogSource, ci ChainInfo) (Report, error) {
	rep := Report{OK: true, Chain: ci.COI}
	var head Hash
	var last uint64
	err := src.ScanChain(ctx, ci.COI, func(key uint64, h Hash, body []byte) error {
		l, err := ReadLinks(body, h)
		switch {
		case err != nil:
			rep.fail(key, "%v", err)
		case l.Seq != key:
			rep.fail(key, "record stored at position %d says it is record %d", key, l.Seq)
		case l.Chain != ci.COI:
			rep.fail(key, "record belongs to chain %s, not %s", l.Chain, ci.COI)
		case l.ChainSeq != rep.Records+1:
			rep.fail(key, "chain record %d missing or out of order (found %d)", rep.Records+1, l.ChainSeq)
		case l.ChainPrev != head:
			rep.fail(key, "link to the previous record of the chain does not match: it was altered or removed")
		}
		if !rep.OK {
			return errStop
		}
		head, last = h, key
		rep.Records++
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return Report{}, fmt.Errorf("verify chain %s: %w", ci.COI, err)
	}
	rep.Head = head.String()
	if rep.OK && (rep.Records != ci.Records || head != ci.HeadHash) {
		rep.fail(last+1, "chain truncated or summary altered: summary says %d records, found %d", ci.Records, rep.Records)
	}
	return rep, nil
}
