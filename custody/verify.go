package custody

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
)

// Report is the outcome of a verification. When OK is false, FirstBad is
// the log position (seq) of the first record that fails and Problem says
// how; Chain names the chain at fault when the failure is a chain's (its
// links, its summary or its index), and always in a chain's own report.
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
	step  uint8 // the record's step in the journey's table (journeyTable)
	// telemetry says the record may carry a telemetry seal (its bytes
	// hold the member's name), when the caller asked (verifyLog's seals).
	telemetry bool
	err       error
}

const verifyBatch = 1024

// chainState is what VerifyLog learns of a chain from the log.
type chainState struct {
	head     Hash
	count    uint64
	seq      uint64
	id       uint32 // the chain's number in VerifyLog's owner table
	state    uint8  // the state its records lead to (journeyTable)
	stateSeq uint64 // the record that moved it there
}

// ChainIndex is a chain's summary together with the log positions of its
// records in chain order: the index through which a store reads a chain's
// records without scanning the log.
type ChainIndex struct {
	ChainInfo
	Seqs []uint64
}

// IndexedLogSource is a LogSource that keeps the log positions of each
// chain's records beside its summary and reads chains through them.
// VerifyLog reads the positions in the same read as the log and checks
// that they are exactly those of the chain's records in the log.
type IndexedLogSource interface {
	LogSource
	// ReadLogIndex runs fn inside one consistent read of the store, as
	// ReadLog does; index calls its argument for every chain summary with
	// the chain's record positions, in that same read. The positions stay
	// valid only during the call.
	ReadLogIndex(ctx context.Context, fn func(v LogView, index func(fn func(ChainIndex) error) error) error) error
}

// VerifyLog verifies the log, as VerifyLogJourney does, against the
// default journey (DefaultJourney).
func VerifyLog(ctx context.Context, src LogSource) (Report, error) {
	return VerifyLogJourney(ctx, src, nil)
}

// VerifyLogJourney recomputes every record's hash, checks every log and
// chain link and sequence number, and compares the result with the
// store's head and chain summaries: each chain's record count, head and
// state (the state its records lead to under journey j; nil means
// DefaultJourney), and, from an IndexedLogSource, the positions through
// which the store reads the chain. Hashing runs on all CPUs; links are
// checked in log order; checking the positions takes 4 bytes of memory
// per record. The report names the first record that fails, and the chain
// when a chain's records or summary are at fault. The error is non-nil
// only when the store could not be read; it wraps ErrDamaged when a
// record's bytes could not be read (a damaged length that points past the
// end of the store's memory-mapped file), found on whichever goroutine
// read them.
func VerifyLogJourney(ctx context.Context, src LogSource, j *Journey) (Report, error) {
	return verifyLog(ctx, src, j, nil)
}

// telemetryMember is the name of a receive record's seal, as records
// spell it: a record without it carries no seal.
const telemetryMember = `"telemetry":`

// sealCandidates asks verifyLog for the records that may carry a
// telemetry seal: those after record after whose bytes hold
// telemetryMember, among the records verified, in log order.
type sealCandidates struct {
	after uint64
	seqs  []uint64
}

// verifyLog is VerifyLogJourney, noting in seals, when not nil, the
// records that may carry a telemetry seal, found by the workers that
// hash them (no second read of the log).
func verifyLog(ctx context.Context, src LogSource, j *Journey, seals *sealCandidates) (Report, error) {
	jt := tableFor(j)
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
			// The entries are read in place, in the store's memory map: a
			// damaged length reads past its end, a fault that must be
			// reported as damage, not end the process.
			defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
			for b := range work {
				for i := 0; i < len(b.items); {
					i = verifyItems(jt, b.items, b.out, i, seals != nil)
				}
				b.res <- struct{}{}
			}
		})
	}
	rep := Report{OK: true}
	chains := map[COI]*chainState{}
	// owner[k-1] is the number of the chain of record k, and cois[n] the
	// chain numbered n: what an index's positions are checked against.
	var owner []uint32
	var cois []COI
	var prev Hash
	var damage error // a record that could not be read: the store is damaged
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range ordered {
			<-b.res
			for i, r := range b.out[:len(b.items)] {
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
				case errors.Is(r.err, ErrDamaged):
					rep.fail(r.key, "%v", r.err)
					damage = fmt.Errorf("record %d: %w", r.key, r.err)
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
					cs = &chainState{id: uint32(len(cois))}
					chains[l.Chain] = cs
					cois = append(cois, l.Chain)
				}
				if l.ChainSeq != cs.count+1 || l.ChainPrev != cs.head {
					rep.fail(r.key, "chain %s link broken: expected chain record %d after record %d", l.Chain, cs.count+1, cs.seq)
					rep.Chain = l.Chain
					continue
				}
				to := jt.next(cs.state, r.step)
				if to == brokenState {
					rep.fail(r.key, "chain %s: its record %d (step %q) does not follow the journey from %s: the chain cannot be read",
						l.Chain, l.ChainSeq, stepOf(b.items[i].Body), jt.stateName(cs.state))
					rep.Chain = l.Chain
					continue
				}
				if to != cs.state {
					cs.state, cs.stateSeq = to, r.key
				}
				cs.head, cs.count, cs.seq = l.Hash, cs.count+1, r.key
				owner = append(owner, cs.id)
				prev = l.Hash
				rep.Records++
				if seals != nil && r.telemetry && r.key > seals.after {
					seals.seqs = append(seals.seqs, r.key)
				}
			}
			select {
			case free <- b:
			default:
			}
		}
	}()
	read := func(fn func(LogView, func(func(ChainIndex) error) error) error) error {
		return src.ReadLog(ctx, func(v LogView) error { return fn(v, nil) })
	}
	if is, ok := src.(IndexedLogSource); ok {
		read = func(fn func(LogView, func(func(ChainIndex) error) error) error) error {
			return is.ReadLogIndex(ctx, fn)
		}
	}
	err := read(func(v LogView, index func(func(ChainIndex) error) error) error {
		// The entries stay valid until this function returns, so the
		// workers read them in place and are waited for below.
		cur := newBatch()
		// Reading the log may fault on a damaged file (the store turns
		// that into an error): the workers are stopped and waited for
		// even then, while the entries they read are still mapped.
		finished := false
		finish := func() {
			if !finished {
				finished = true
				close(work)
				close(ordered)
				wg.Wait()
				<-done
			}
		}
		defer finish()
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
		finish()
		if err := ctx.Err(); err != nil {
			return err
		}
		if rep.OK {
			lc := logChains{chains: chains, owner: owner, cois: cois, jt: jt}
			return lc.checkSummaries(&rep, v, index, prev)
		}
		return nil
	})
	if err == nil {
		err = damage
	}
	if err != nil {
		return Report{}, fmt.Errorf("verify log: %w", err)
	}
	rep.Head = prev.String()
	return rep, nil
}

// verifyItems checks items[from:] into out and returns len(items); if
// reading an item's bytes faults (a damaged length in the store's file
// points past its end), that item's result is ErrDamaged and it returns
// the index after it. telemetry says whether to note the records that may
// carry a seal. The caller's goroutine must have set
// debug.SetPanicOnFault.
func verifyItems(jt *journeyTable, items []LogEntry, out []verifyResult, from int, telemetry bool) (next int) {
	defer func() {
		if r := recover(); r != nil {
			if !isFault(r) {
				panic(r) // a bug, not the file
			}
			out[next] = verifyResult{key: items[next].Key, err: fmt.Errorf("the record cannot be read (%v): %w", r, ErrDamaged)}
			next++
		}
	}()
	for next = from; next < len(items); next++ {
		it := items[next]
		l, err := ReadLinks(it.Body, it.Hash)
		var step uint8
		if err == nil {
			step = jt.stepIndex(readStep(it.Body))
		}
		out[next] = verifyResult{key: it.Key, links: l, step: step, err: err, telemetry: telemetry && err == nil && bytes.Contains(it.Body, []byte(telemetryMember))}
	}
	return next
}

// isFault reports whether a recovered panic is a memory fault (with
// debug.SetPanicOnFault): a runtime error that carries the faulting
// address.
func isFault(r any) bool {
	_, ok := r.(interface{ Addr() uintptr })
	return ok
}

// stepOf returns the step of a stored record for a message, "?" if its
// bytes cannot be read (a fault in the store's memory map).
func stepOf(body []byte) (step string) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if !isFault(r) {
				panic(r)
			}
			step = "?"
		}
	}()
	return string(readStep(body))
}

// logChains is what VerifyLog learned of the chains from a log whose
// records all verified.
type logChains struct {
	chains map[COI]*chainState
	owner  []uint32 // owner[k-1]: the number of record k's chain
	cois   []COI    // the chains by number
	jt     *journeyTable
}

// checkSummaries compares the verified log with the store's head and
// chain summaries, and with the chains' record positions when index is
// not nil, all read with it in one view.
func (lc *logChains) checkSummaries(rep *Report, v LogView, index func(func(ChainIndex) error) error, last Hash) error {
	chains := lc.chains
	if v.HeadSeq != rep.Records || v.HeadHash != last {
		if v.HeadSeq > rep.Records {
			rep.fail(rep.Records+1, "log truncated: the store's head is record %d but the log ends at %d", v.HeadSeq, rep.Records)
		} else {
			rep.fail(rep.Records, "the store's head (record %d) does not match the last record", v.HeadSeq)
		}
		return nil
	}
	check := func(ci ChainInfo, seqs []uint64, indexed bool) error {
		cs := chains[ci.COI]
		if cs == nil {
			rep.fail(ci.HeadSeq, "chain %s is listed but has no records", ci.COI)
			rep.Chain = ci.COI
			return errStop
		}
		if cs.count != ci.Records || cs.head != ci.HeadHash || cs.seq != ci.HeadSeq {
			rep.fail(min(cs.seq, ci.HeadSeq)+1, "chain %s summary (%d records, head %d) does not match the log (%d records, head %d)",
				ci.COI, ci.Records, ci.HeadSeq, cs.count, cs.seq)
			rep.Chain = ci.COI
			return errStop
		}
		if indexed && !lc.checkPositions(rep, ci.COI, cs, seqs) {
			rep.Chain = ci.COI
			return errStop
		}
		if want := lc.jt.stateName(cs.state); ci.State != want {
			rep.fail(cs.stateSeq, "chain %s summary says it is %q, but its records lead to %q (since record %d): the chain summary was altered",
				ci.COI, ci.State, want, cs.stateSeq)
			rep.Chain = ci.COI
			return errStop
		}
		delete(chains, ci.COI)
		return nil
	}
	var err error
	if index != nil {
		err = index(func(ci ChainIndex) error { return check(ci.ChainInfo, ci.Seqs, true) })
	} else {
		err = v.Chains(func(ci ChainInfo) error { return check(ci, nil, false) })
	}
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	if rep.OK {
		for coi, cs := range chains {
			rep.fail(cs.seq, "chain %s has records but no summary", coi)
			rep.Chain = coi
			break
		}
	}
	return nil
}

// checkPositions reports whether seqs, the positions an index lists for
// chain coi, are exactly those of the chain's records in the log, in
// order; if not, it fails rep at the first of the chain's records the
// index does not lead to. The count was checked already: positions that
// rise strictly and all hold records of the chain are then all of them.
func (lc *logChains) checkPositions(rep *Report, coi COI, cs *chainState, seqs []uint64) bool {
	n := uint64(len(lc.owner))
	ok := uint64(len(seqs)) == cs.count
	var last uint64
	for _, q := range seqs {
		if !ok || q <= last || q > n || lc.owner[q-1] != cs.id {
			ok = false
			break
		}
		last = q
	}
	if ok {
		return true
	}
	// Rare: find where the index departs from the log, and say how.
	var log []uint64
	for k, o := range lc.owner {
		if o == cs.id {
			log = append(log, uint64(k)+1)
		}
	}
	i := 0
	for i < len(seqs) && i < len(log) && seqs[i] == log[i] {
		i++
	}
	if i >= len(seqs) || i >= len(log) {
		rep.fail(cs.seq, "chain %s index lists %d records, the log holds %d: the chain index was altered", coi, len(seqs), len(log))
		return false
	}
	q, what := seqs[i], "no record"
	switch {
	case q >= 1 && q <= n && lc.owner[q-1] != cs.id:
		what = "a record of chain " + string(lc.cois[lc.owner[q-1]])
	case q >= 1 && q <= n:
		what = fmt.Sprintf("the chain's record %d", slices.Index(log, q)+1)
	}
	rep.fail(log[i], "chain %s index gives record %d as its record %d, but that is %s; the log has the chain's record %d at %d: the chain index was altered",
		coi, q, i+1, what, i+1, log[i])
	return false
}

var errStop = errors.New("stop")

// VerifyChain verifies one chain, as VerifyChainJourney does, against the
// default journey (DefaultJourney).
func VerifyChain(ctx context.Context, src LogSource, ci ChainInfo) (Report, error) {
	return VerifyChainJourney(ctx, src, ci, nil)
}

// VerifyChainJourney checks one chain: every record's hash, chain links
// and sequence numbers, and the chain's summary, including its state (the
// state its records lead to under journey j; nil means DefaultJourney).
// Log links are checked by VerifyLog.
func VerifyChainJourney(ctx context.Context, src LogSource, ci ChainInfo, j *Journey) (Report, error) {
	jt := tableFor(j)
	rep := Report{OK: true, Chain: ci.COI}
	var head Hash
	var last, stateSeq uint64
	var state uint8
	err := src.ScanChain(ctx, ci.COI, func(key uint64, h Hash, body []byte) error {
		l, err := ReadLinks(body, h)
		var to uint8
		if err == nil {
			to = jt.next(state, jt.stepIndex(readStep(body)))
		}
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
		case to == brokenState:
			rep.fail(key, "the chain's record %d (step %q) does not follow the journey from %s: the chain cannot be read",
				l.ChainSeq, readStep(body), jt.stateName(state))
		}
		if !rep.OK {
			return errStop
		}
		if to != state {
			state, stateSeq = to, key
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
	if want := jt.stateName(state); rep.OK && ci.State != want {
		rep.fail(stateSeq, "summary says the chain is %q, but its records lead to %q (since record %d): the chain summary was altered",
			ci.State, want, stateSeq)
	}
	return rep, nil
}

// journeyTable is a journey compiled for verification: the state a chain
// moves to with each step, as Fold replays it, looked up by small numbers
// so that following a million records through it costs next to nothing.
// State 0 is a chain before its first record; step 0 is any step the
// journey does not know.
type journeyTable struct {
	steps  map[string]uint8
	states []State
	to     []uint8 // to[state*nsteps+step]: the next state, or brokenState
	nsteps int
}

// brokenState marks a step Fold refuses in a state: the chain cannot be
// read.
const brokenState = 255

// newJourneyTable compiles j. A chain's first record must be its enroll;
// after it, each step moves the chain as j.Rule says, and a system step
// that the rules refuse leaves it where it is, as in Fold.
func newJourneyTable(j *Journey) *journeyTable {
	jt := &journeyTable{steps: map[string]uint8{}, states: []State{""}}
	stepNames := []Step{""}
	addStep := func(s Step) {
		if _, ok := jt.steps[string(s)]; !ok && len(stepNames) < brokenState {
			jt.steps[string(s)] = uint8(len(stepNames))
			stepNames = append(stepNames, s)
		}
	}
	stateIndex := func(s State) uint8 {
		for i, x := range jt.states {
			if x == s {
				return uint8(i)
			}
		}
		if len(jt.states) >= brokenState {
			return brokenState
		}
		jt.states = append(jt.states, s)
		return uint8(len(jt.states) - 1)
	}
	for _, s := range States {
		stateIndex(s)
	}
	for _, t := range j.Transitions {
		addStep(t.Step)
		stateIndex(t.From)
		stateIndex(t.To)
	}
	for _, e := range j.Exceptions {
		addStep(e.Step)
		if e.To != "" {
			stateIndex(e.To)
		}
	}
	jt.nsteps = len(stepNames)
	jt.to = make([]uint8, len(jt.states)*jt.nsteps)
	for si := range jt.states {
		for st, step := range stepNames {
			to := uint8(brokenState)
			from := jt.states[si]
			switch r, err := j.Rule(from, step); {
			case from == "" && !j.starts(step), step == "":
			case err == nil:
				to = stateIndex(r.To)
			case j.IsSystem(step):
				to = uint8(si)
			}
			jt.to[si*jt.nsteps+st] = to
		}
	}
	return jt
}

// starts reports whether step may begin a chain: a row from no state.
func (j *Journey) starts(step Step) bool {
	return slices.ContainsFunc(j.Transitions, func(t Transition) bool { return t.From == "" && t.Step == step })
}

// defaultJourneyTable is DefaultJourney compiled, once.
var defaultJourneyTable = sync.OnceValue(func() *journeyTable { return newJourneyTable(withAccess(DefaultJourney())) })

// tableFor returns j compiled; nil means DefaultJourney.
func tableFor(j *Journey) *journeyTable {
	if j == nil {
		return defaultJourneyTable()
	}
	j.tableOnce.Do(func() { j.table = newJourneyTable(withAccess(j)) })
	return j.table
}

// stepIndex returns the number of a step read raw from a stored record;
// 0 for a step the journey does not know. A step written with escapes
// (never by coid) is unescaped first.
func (jt *journeyTable) stepIndex(raw []byte) uint8 {
	if bytes.IndexByte(raw, '\\') >= 0 {
		var s string
		if json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s) != nil {
			return 0
		}
		return jt.steps[s]
	}
	return jt.steps[string(raw)]
}

// next returns the state a chain in state from moves to with step, or
// brokenState.
func (jt *journeyTable) next(from, step uint8) uint8 {
	if int(from) >= len(jt.states) || int(step) >= jt.nsteps {
		return brokenState
	}
	return jt.to[int(from)*jt.nsteps+int(step)]
}

// stateName returns the state numbered i ("" before the first record).
func (jt *journeyTable) stateName(i uint8) State {
	if int(i) < len(jt.states) {
		return jt.states[i]
	}
	return ""
}
