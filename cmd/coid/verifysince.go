package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
)

// maxCheckpointFile bounds what coid verify --since reads: a signed
// checkpoint is a few hundred bytes, a few KB with witnesses' cosignatures.
const maxCheckpointFile = 64 << 10

// readSinceCheckpoint reads the signed checkpoint of --since from path
// (the note /log/checkpoint serves, or the JSON of GET
// /api/v1/proofs/checkpoint that carries it) and opens it with the ledger's verifier keys in dir, the active one and
// every retired one. A file that is not such a checkpoint (unreadable,
// malformed, its signature forged or by another log's key) is a usage
// error: the operator gave the wrong file, and nothing of the ledger was
// judged. Keys that cannot be read are not.
//
// With keyFile (--checkpoint-key, instances sharing a PostgreSQL store) the
// key is that file's rather than dir's.
func readSinceCheckpoint(path, dir, keyFile string) (verifiable.Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return verifiable.Checkpoint{}, usagef("verify --since: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCheckpointFile+1))
	if err != nil {
		return verifiable.Checkpoint{}, usagef("verify --since: %v", err)
	}
	if len(data) > maxCheckpointFile {
		return verifiable.Checkpoint{}, usagef("verify --since %s: over %d bytes: not a signed checkpoint", path, maxCheckpointFile)
	}
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		// GET /api/v1/proofs/checkpoint's answer: only its signed note is
		// taken, and judged by its signature.
		var resp struct {
			Checkpoint string `json:"checkpoint"`
		}
		if err := json.Unmarshal(data, &resp); err != nil || resp.Checkpoint == "" {
			return verifiable.Checkpoint{}, usagef("verify --since %s: JSON without a \"checkpoint\" member holding the signed note", path)
		}
		data = []byte(resp.Checkpoint)
	}
	keys, err := verifiable.LoadKeys(dir)
	if keyFile != "" {
		dir = keyFile
		keys, err = verifiable.LoadKeyFile(keyFile)
	}
	if err != nil {
		return verifiable.Checkpoint{}, fmt.Errorf("verify --since: the ledger's checkpoint keys in %s: %w", dir, err)
	}
	c, err := verifiable.Open(data, keys.Verifiers()...)
	if err != nil {
		return verifiable.Checkpoint{}, usagef("verify --since %s: not a checkpoint signed by this ledger's key (%s) or a retired one: %v",
			path, keys.Origin(), err)
	}
	return c, nil
}

// treeChecker is a store that checks its stored tree hashes from a record
// on (boltstore.Store.CheckTreeFrom).
type treeChecker interface {
	CheckTreeFrom(ctx context.Context, from uint64) error
}

// checkSince checks that the ledger's tree extends checkpoint old (the
// consistency proof from old's size to the tree's current size, from the
// stored hashes, checked with verifiable.CheckConsistency) and that the
// stored hashes from record old.Size on are those of the records (all of
// them, with the store's whole check, when it cannot check from a record
// on). A failure is a *sinceFailure naming the record or the checkpoint.
func checkSince(ctx context.Context, st stores, old verifiable.Checkpoint) error {
	if st.tree == nil {
		return fmt.Errorf("verify --since: the store does not keep the ledger's Merkle tree: %w", errors.ErrUnsupported)
	}
	size, err := st.tree.TreeSize(ctx)
	if err != nil {
		return fmt.Errorf("verify --since: %w", err)
	}
	if old.Size > size {
		return &sinceFailure{seq: uint64(size) + 1, problem: fmt.Sprintf("the ledger's tree holds %d records, fewer than the %d of the checkpoint: "+
			"it was cut back or rolled back to an older copy", size, old.Size)}
	}
	if old.Size > 0 {
		// The keys only open checkpoints here: a log that signs nothing.
		vl := verifiable.NewLog(st.tree, nil, time.Now, slog.New(slog.DiscardHandler))
		p, err := vl.Consistency(ctx, old.Size, size)
		if err != nil {
			return fmt.Errorf("verify --since: consistency proof from %d to %d records: %w", old.Size, size, err)
		}
		cur := verifiable.Checkpoint{Origin: old.Origin, Size: size, Root: p.ToRoot}
		if err := verifiable.CheckConsistency(old, cur, p.Proof); err != nil {
			return &sinceFailure{seq: uint64(old.Size), problem: fmt.Sprintf("checkpoint of %d records: %v "+
				"(a record at or before %d was changed, removed or reordered after the checkpoint was signed)", old.Size, err, old.Size)}
		}
	}
	// A store that cannot check its tree from a record on checks all of
	// it, with the rest of what it keeps: slower, as sound.
	check := st.checkFile
	if tc, ok := st.tree.(treeChecker); ok {
		check = func(ctx context.Context) error { return tc.CheckTreeFrom(ctx, uint64(max(old.Size, 1))) }
	}
	if err := check(ctx); err != nil {
		if errors.Is(err, custody.ErrDamaged) || errors.Is(err, custody.ErrChainBroken) {
			return &sinceFailure{problem: err.Error()}
		}
		return fmt.Errorf("verify --since: %w", err)
	}
	return nil
}

// sinceFailure is the ledger failing coid verify --since: seq names the
// first record at fault when known.
type sinceFailure struct {
	seq     uint64
	problem string
}

func (f *sinceFailure) Error() string {
	if f.seq == 0 {
		return f.problem
	}
	return fmt.Sprintf("record %d: %s", f.seq, f.problem)
}

// verifySince is coid verify --since FILE on an open store: the
// checkpoint, the records and the seals of legs received after it, then
// the consistency proof and the tree hashes from it on. failed reports an
// error of the ledger (exit 3) and passes others on.
func verifySince(ctx context.Context, svc *custody.Service, st stores, path, dir, keyFile string, stdout io.Writer, failed func(error) error) error {
	old, err := readSinceCheckpoint(path, dir, keyFile)
	if err != nil {
		return err
	}
	start := time.Now()
	rep, err := svc.VerifyLedgerSince(ctx, uint64(old.Size))
	if err != nil {
		return failed(err)
	}
	if !rep.OK {
		fmt.Fprintf(stdout, "FAILED: record %d: %s\n%d records verified before it\n", rep.FirstBad, rep.Problem, rep.Records)
		return fmt.Errorf("verify %s: record %d: %s: %w", dir, rep.FirstBad, rep.Problem, errVerifyFailed)
	}
	if err := checkSince(ctx, st, old); err != nil {
		var f *sinceFailure
		if !errors.As(err, &f) {
			return failed(err)
		}
		fmt.Fprintf(stdout, "FAILED: %v\n", f)
		return fmt.Errorf("verify %s: %w: %w", dir, f, errVerifyFailed)
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "OK: %d records verified in %s; the ledger extends the checkpoint of %d records (root %x), "+
		"and the seals of legs received after it and the tree from it on match\nhead %s\n",
		rep.Records, el.Round(time.Millisecond), old.Size, old.Root[:8], rep.Head)
	return nil
}
