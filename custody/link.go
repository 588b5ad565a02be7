package custody

import "fmt"

// LinkHeads is what a backend read, inside the write transaction that will
// store a draft, for Link to decide on it: the log's head and the chain's
// summary.
type LinkHeads struct {
	// LogSeq and LogHash are the position and hash of the last record in
	// the log (zero for an empty log), including records linked earlier
	// in the same transaction.
	LogSeq  uint64
	LogHash Hash
	// Chain is the chain's summary, as committed or as changed earlier in
	// the same transaction; nil when the chain does not exist.
	Chain *ChainInfo
}

// Link decides whether draft d may be appended given the heads its backend
// read, and if so links its record to the log and to its chain and hashes
// it. It returns the record as it is to be stored and the chain's summary
// once it is. ErrConflict: d enrolls a chain that exists; ErrNotFound: d
// appends to a chain that does not; ErrRetry: the chain has grown since
// the caller checked the journey rules (d.ExpectRecords). On an error the
// backend stores nothing of d.
//
// Every backend calls Link (or LinkPresealed) inside its own transaction,
// so the linking, the hashing and the optimistic chain check are the same
// whatever keeps the bytes.
func Link(h LinkHeads, d Draft) (Record, ChainInfo, error) {
	rec, ci, _, err := LinkPresealed(h, d, d.Record.Preseal(), nil)
	return rec, ci, err
}

// LinkPresealed is Link for a record whose encoding was prepared
// beforehand (p is d.Record.Preseal(), typically made in the caller's
// goroutine before the draft reaches a single writer): it also appends
// the record's canonical encoding, which the backend stores, to dst and
// returns it.
func LinkPresealed(h LinkHeads, d Draft, p Presealed, dst []byte) (Record, ChainInfo, []byte, error) {
	rec := d.Record
	coi := rec.Chain
	switch {
	case d.NewChain && h.Chain != nil:
		return Record{}, ChainInfo{}, dst, fmt.Errorf("append: chain %s already exists: %w", coi, ErrConflict)
	case !d.NewChain && h.Chain == nil:
		return Record{}, ChainInfo{}, dst, fmt.Errorf("append: chain %s: %w", coi, ErrNotFound)
	case !d.NewChain && h.Chain.Records != d.ExpectRecords:
		return Record{}, ChainInfo{}, dst, fmt.Errorf("append: chain %s changed while the step was checked: %w", coi, ErrRetry)
	}
	var ci ChainInfo
	if h.Chain != nil {
		ci = *h.Chain
	} else {
		ci = ChainInfo{COI: coi, Product: d.Product, Sites: d.Sites, Created: rec.Time}
	}
	rec.Seq, rec.Prev = h.LogSeq+1, h.LogHash
	rec.ChainSeq, rec.ChainPrev = ci.Records+1, ci.HeadHash
	dst = p.Seal(&rec, dst)
	ci.Records, ci.HeadSeq, ci.HeadHash, ci.State, ci.Updated = rec.ChainSeq, rec.Seq, rec.Hash, d.State, rec.Time
	ci.OpenIssues, ci.Progress = d.OpenIssues, d.Progress
	return rec, ci, dst, nil
}
