package verifiable

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/coid-project/coid/custody"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// BundleFormat names version 1 of the proof bundle format: it is the
// bundle's "format" member, and a reader refuses any other.
const BundleFormat = "coid-proof-bundle/v1"

// BundleFile is the file name of a proof bundle attached to a report.
const BundleFile = "coid-proof.json"

// Bundle is the proof that records are in a log: a signed checkpoint and,
// for each record, its canonical encoding and its inclusion proof against
// the checkpoint's tree. With the log's verifier key and nothing else,
// VerifyBundle checks it.
type Bundle struct {
	// Format is BundleFormat.
	Format string `json:"format"`
	// Checkpoint is the signed checkpoint note (C2SP tlog-checkpoint in
	// a C2SP signed note), as /log/checkpoint serves it.
	Checkpoint string `json:"checkpoint"`
	// KeyIDs names the keys whose signatures on the checkpoint verified
	// when the bundle was made, each "origin+hash" (KeyID).
	KeyIDs []string `json:"key_ids"`
	// Records are the proven records, in the order given to Bundle.
	Records []BundleRecord `json:"records"`
	// Cosigners names the witnesses whose cosignatures Bundle put in the
	// checkpoint (a quorum of them), and Quorum is the quorum the log was
	// configured with (0: no witnesses). Cosigners is empty when no
	// checkpoint holding the records reached the quorum yet: the
	// checkpoint is then the operator's alone. Neither is part of the
	// JSON: an auditor reads the cosignatures from the checkpoint and
	// verifies them with the witnesses' keys.
	Cosigners []string `json:"-"`
	Quorum    int      `json:"-"`
}

// BundleRecord is one record of a Bundle.
type BundleRecord struct {
	// Seq is the record's position in the ledger.
	Seq uint64 `json:"seq"`
	// LeafIndex is its leaf in the tree: Seq-1.
	LeafIndex int64 `json:"leaf_index"`
	// Canonical is the record's canonical encoding (standard base64),
	// the exact bytes the log keeps and hashes.
	Canonical string `json:"canonical"`
	// Proof is its inclusion proof against the checkpoint's tree size:
	// RFC 6962 audit path hashes, standard base64, leaf to root.
	Proof []string `json:"proof"`
}

// ErrBadProof means a record of a bundle is not proven in the log: its
// inclusion proof does not lead from its bytes to the checkpoint's root.
var ErrBadProof = errors.New("record not proven in the log")

// RecordError is the failure of one record of a bundle.
type RecordError struct {
	// Seq is the record that failed (as the bundle names it).
	Seq uint64
	// Err says why; it wraps ErrBadProof or custody.ErrInvalid.
	Err error
}

func (e *RecordError) Error() string { return fmt.Sprintf("record %d: %v", e.Seq, e.Err) }

// Unwrap returns the reason.
func (e *RecordError) Unwrap() error { return e.Err }

// KeyID returns the ID of a verifier key: its name and key hash,
// "origin+hhhhhhhh", as signed-note signature lines name a key.
func KeyID(verifierKey string) string {
	name, rest, _ := strings.Cut(strings.TrimSpace(verifierKey), "+")
	hash, _, _ := strings.Cut(rest, "+")
	return name + "+" + hash
}

// Bundle returns the proof bundle of the records seqs, each record's
// canonical encoding and inclusion proof against a signed checkpoint:
// with witnesses configured (SetWitnesses), the latest checkpoint holding
// every record that reached the quorum, with the witnesses'
// cosignatures; otherwise, or when none has yet, the latest signed
// checkpoint (one is signed now when none kept holds every record).
func (l *Log) Bundle(ctx context.Context, seqs []uint64) (*Bundle, error) {
	if len(seqs) == 0 {
		return nil, fmt.Errorf("proof bundle: no records: %w", custody.ErrInvalid)
	}
	signed, c, cos, err := l.bundleCheckpoint(ctx, int64(slices.Max(seqs)))
	if err != nil {
		return nil, fmt.Errorf("proof bundle: %w", err)
	}
	_, n, err := open(signed, l.keys.Verifiers())
	if err != nil {
		return nil, fmt.Errorf("proof bundle: the log's own checkpoint: %w", err)
	}
	b := &Bundle{Format: BundleFormat, Checkpoint: string(WithCosignatures(signed, cos)), KeyIDs: sigIDs(n), Quorum: l.quorum}
	for _, cs := range cos {
		b.Cosigners = append(b.Cosigners, cs.Witness)
	}
	hr := l.hashReader(ctx)
	for _, seq := range seqs {
		if seq == 0 || seq > uint64(c.Size) {
			return nil, fmt.Errorf("proof bundle: record %d is not in the tree of %d records: %w", seq, c.Size, custody.ErrNotFound)
		}
		leaf := int64(seq - 1)
		e, err := l.src.ReadEntries(ctx, leaf, leaf+1)
		if err != nil {
			return nil, fmt.Errorf("proof bundle: record %d: %w", seq, err)
		}
		p, err := InclusionProof(leaf, c.Size, hr)
		if err != nil {
			return nil, fmt.Errorf("proof bundle: record %d: %w", seq, err)
		}
		r := BundleRecord{Seq: seq, LeafIndex: leaf, Canonical: base64.StdEncoding.EncodeToString(e[0]), Proof: []string{}}
		for _, h := range p {
			r.Proof = append(r.Proof, base64.StdEncoding.EncodeToString(h[:]))
		}
		b.Records = append(b.Records, r)
	}
	return b, nil
}

// bundleCheckpoint returns the checkpoint a bundle of records up to min
// is against (see Bundle), and the cosignatures to put in it.
func (l *Log) bundleCheckpoint(ctx context.Context, min int64) ([]byte, Checkpoint, []custody.Cosignature, error) {
	if ws, ok := l.src.(WitnessedSource); ok && l.quorum > 0 {
		signed, cos, err := ws.LatestWitnessed(ctx, min, l.witnesses, l.quorum)
		switch {
		case err == nil:
			c, err := ParseCheckpoint(body(signed))
			if err != nil {
				return nil, Checkpoint{}, nil, fmt.Errorf("stored checkpoint: %v: %w", err, custody.ErrChainBroken)
			}
			return signed, c, cos, nil
		case !errors.Is(err, custody.ErrNotFound):
			return nil, Checkpoint{}, nil, err
		}
	}
	signed, c, err := l.Latest(ctx)
	if err != nil {
		return nil, Checkpoint{}, nil, err
	}
	if c.Size < min {
		if signed, c, err = l.Sign(ctx); err != nil {
			return nil, Checkpoint{}, nil, err
		}
	}
	return signed, c, nil, nil
}

// sigIDs returns the key IDs of a note's verified signatures.
func sigIDs(n *note.Note) []string {
	ids := make([]string, 0, len(n.Sigs))
	for _, s := range n.Sigs {
		ids = append(ids, s.Name+"+"+fmt.Sprintf("%08x", s.Hash))
	}
	return ids
}

// Marshal returns the bundle as indented JSON ending in a newline.
func (b *Bundle) Marshal() ([]byte, error) {
	out, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("proof bundle: %w", err)
	}
	return append(out, '\n'), nil
}

// ParseBundle reads a bundle strictly: unknown or missing members, another
// format, or trailing data are custody.ErrInvalid.
func ParseBundle(data []byte) (*Bundle, error) {
	var b Bundle
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&b); err != nil {
		return nil, fmt.Errorf("proof bundle: %v: %w", err, custody.ErrInvalid)
	}
	if _, err := d.Token(); err == nil {
		return nil, fmt.Errorf("proof bundle: data after the bundle: %w", custody.ErrInvalid)
	}
	// encoding/json matches member names without regard to case and
	// ignores a repeated member's first value: a bundle is read only in
	// the form it is written in (whitespace aside).
	var in, out bytes.Buffer
	want, err := json.Marshal(&b)
	if err != nil || json.Compact(&in, data) != nil || json.Compact(&out, want) != nil || !bytes.Equal(in.Bytes(), out.Bytes()) {
		return nil, fmt.Errorf("proof bundle: not in the bundle's own form (member names, order or spelling differ): %w", custody.ErrInvalid)
	}
	if b.Format != BundleFormat {
		return nil, fmt.Errorf("proof bundle: format %q, want %q: %w", b.Format, BundleFormat, custody.ErrInvalid)
	}
	return &b, nil
}

// Verified is what VerifyBundle proved: the checkpoint, which keys signed
// it, and the records' canonical encodings with their SHA-256 record hashes.
type Verified struct {
	Checkpoint Checkpoint
	// KeyIDs are the IDs of the given keys whose signatures verified.
	KeyIDs []string
	// Cosigned are the witnesses' cosignatures that verified with the
	// witness keys given (WitnessPolicy), in the order of the keys.
	Cosigned []custody.Cosignature
	// Unverified are the IDs ("name+hash") of the checkpoint's signature
	// lines by keys not given: as note.Open does, they are ignored, and
	// listed here so an auditor sees them.
	Unverified []string
	Records    []VerifiedRecord
}

// WitnessPolicy is what an auditor requires of a checkpoint's witness
// cosignatures (C2SP tlog-cosignature): every cosignature by one of Keys
// must verify, and at least Quorum of Keys must have cosigned. The zero
// policy requires nothing.
type WitnessPolicy struct {
	Keys   []CosignerKey
	Quorum int
}

// ErrNoQuorum means fewer of the given witnesses cosigned a checkpoint
// than the quorum asked for.
var ErrNoQuorum = errors.New("witness quorum not reached")

// VerifiedRecord is one record proven in the log.
type VerifiedRecord struct {
	Seq       uint64
	Canonical []byte
	// Hash is the record's hash (SHA-256 of Canonical), as the ledger
	// and the custody report name it.
	Hash custody.Hash
}

// VerifyBundle checks a bundle (its JSON) with nothing but the log's
// verifier keys (active and retired, signed-note format): the checkpoint's
// signature (note.Open: lines by other keys are ignored and listed in
// Verified.Unverified), that the key IDs the bundle names are exactly the
// checkpoint's signatures by the keys given, and for each record that its canonical
// bytes decode as the record of that seq and that the leaf hash
// recomputed from them is in the checkpoint's tree (tlog.CheckRecord). It
// fails with ErrBadSignature for the checkpoint, a *RecordError (wrapping
// ErrBadProof or custody.ErrInvalid) naming the first record that fails,
// or custody.ErrInvalid for a malformed bundle.
func VerifyBundle(data []byte, verifierKeys ...string) (*Verified, error) {
	return VerifyBundleWitnessed(data, verifierKeys, WitnessPolicy{})
}

// VerifyBundleWitnessed is VerifyBundle, also checking the checkpoint's
// witness cosignatures against the policy w (CheckWitnesses). Signature
// lines by keys given neither as verifierKeys nor in w are ignored and
// listed in Verified.Unverified; at least one of verifierKeys must have
// signed.
func VerifyBundleWitnessed(data []byte, verifierKeys []string, w WitnessPolicy) (*Verified, error) {
	b, err := ParseBundle(data)
	if err != nil {
		return nil, err
	}
	c, n, err := open([]byte(b.Checkpoint), verifierKeys)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	ids := sigIDs(n)
	if !slices.Equal(ids, b.KeyIDs) {
		return nil, fmt.Errorf("checkpoint: the bundle names keys %v, the checkpoint's verified signatures are by %v: %w", b.KeyIDs, ids, ErrBadSignature)
	}
	cos, unverified, err := CheckWitnesses([]byte(b.Checkpoint), c, ids, w)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	if len(b.Records) == 0 {
		return nil, fmt.Errorf("proof bundle: no records: %w", custody.ErrInvalid)
	}
	v := &Verified{Checkpoint: c, KeyIDs: ids, Cosigned: cos, Unverified: unverified}
	seen := map[uint64]bool{}
	for _, r := range b.Records {
		rec, err := checkRecord(r, c)
		if err == nil && seen[r.Seq] {
			err = fmt.Errorf("listed twice: %w", custody.ErrInvalid)
		}
		if err != nil {
			return nil, &RecordError{Seq: r.Seq, Err: err}
		}
		seen[r.Seq] = true
		v.Records = append(v.Records, rec)
	}
	return v, nil
}

// CheckWitnesses checks the witness cosignatures of the signed checkpoint
// c (whose log signatures, of IDs logIDs, verified already) against w: a cosignature
// line by one of w.Keys must verify (VerifyCosignature), else
// ErrBadSignature naming the witness; fewer than w.Quorum verified is
// ErrNoQuorum. It returns the cosignatures that verified, and the IDs
// ("name+hash") of the lines by keys that are neither in logIDs nor in
// w.Keys, which are ignored.
func CheckWitnesses(signed []byte, c Checkpoint, logIDs []string, w WitnessPolicy) ([]custody.Cosignature, []string, error) {
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 {
		return nil, nil, fmt.Errorf("signed checkpoint: no signature: %w", ErrBadSignature)
	}
	lines := signed[i+2:]
	var cos []custody.Cosignature
	var unverified []string
	for _, line := range strings.Split(strings.TrimSuffix(string(lines), "\n"), "\n") {
		name, hash, ok := lineKey(line)
		if !ok {
			return nil, nil, fmt.Errorf("signed checkpoint: malformed signature line %q: %w", line, ErrBadSignature)
		}
		k := slices.IndexFunc(w.Keys, func(k CosignerKey) bool { return k.v != nil && k.v.Name() == name && k.v.KeyHash() == hash })
		switch {
		case k >= 0:
			cs, err := VerifyCosignature(w.Keys[k], c, lines)
			if err != nil {
				return nil, nil, err
			}
			if !slices.ContainsFunc(cos, func(x custody.Cosignature) bool { return x.Witness == cs.Witness }) {
				cos = append(cos, cs)
			}
		case !slices.Contains(logIDs, name+"+"+fmt.Sprintf("%08x", hash)):
			unverified = append(unverified, name+"+"+fmt.Sprintf("%08x", hash))
		}
	}
	if len(cos) < w.Quorum {
		return nil, nil, fmt.Errorf("%d of the %d witness keys given cosigned the checkpoint of %d records, %d required: %w",
			len(cos), len(w.Keys), c.Size, w.Quorum, ErrNoQuorum)
	}
	return cos, unverified, nil
}

// lineKey returns the key name and hash a signed-note signature line
// ("— name base64") names.
func lineKey(line string) (string, uint32, bool) {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "—" {
		return "", 0, false
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(f[2])
	if err != nil || len(raw) < 4 {
		return "", 0, false
	}
	return f[1], binary.BigEndian.Uint32(raw), true
}

// checkRecord proves one bundle record against the checkpoint c.
func checkRecord(r BundleRecord, c Checkpoint) (VerifiedRecord, error) {
	if r.Seq == 0 || r.Seq > uint64(c.Size) || r.LeafIndex != int64(r.Seq-1) {
		return VerifiedRecord{}, fmt.Errorf("leaf index %d is not in the checkpoint's tree of %d records, or not seq-1: %w", r.LeafIndex, c.Size, ErrBadProof)
	}
	canon, err := base64.StdEncoding.Strict().DecodeString(r.Canonical)
	if err != nil {
		return VerifiedRecord{}, fmt.Errorf("canonical bytes: %v: %w", err, custody.ErrInvalid)
	}
	proof := make(tlog.RecordProof, 0, len(r.Proof))
	for _, s := range r.Proof {
		raw, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil || len(raw) != len(Hash{}) {
			return VerifiedRecord{}, fmt.Errorf("proof hash %q is not 32 bytes of base64: %w", s, custody.ErrInvalid)
		}
		proof = append(proof, Hash(raw))
	}
	if err := tlog.CheckRecord(proof, c.Size, c.Root, r.LeafIndex, LeafHash(canon)); err != nil {
		return VerifiedRecord{}, fmt.Errorf("inclusion proof against the checkpoint of %d records: %v: %w", c.Size, err, ErrBadProof)
	}
	h := custody.Hash(sha256.Sum256(canon))
	rec, err := custody.DecodeRecord(canon, h)
	if err != nil || rec.Seq != r.Seq {
		return VerifiedRecord{}, fmt.Errorf("its bytes are not the ledger record of seq %d: %w", r.Seq, ErrBadProof)
	}
	return VerifiedRecord{Seq: r.Seq, Canonical: canon, Hash: h}, nil
}

// OpenCheckpoint verifies a signed checkpoint, as Open does, and returns
// it with the IDs of the keys whose signatures verified.
func OpenCheckpoint(signed []byte, verifierKeys ...string) (Checkpoint, []string, error) {
	c, n, err := open(signed, verifierKeys)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	return c, sigIDs(n), nil
}

// ErrInconsistent means a log's later checkpoint does not extend an
// earlier one: the log was cut back, rewritten or reordered in between.
var ErrInconsistent = errors.New("the log did not only grow")

// CheckConsistency checks that checkpoint newer extends older, both of
// the same log: with the consistency proof between their sizes
// (tlog.CheckTree), or, at the same size, equal roots. It fails with
// ErrInconsistent.
func CheckConsistency(older, newer Checkpoint, proof []Hash) error {
	switch {
	case older.Origin != newer.Origin:
		return fmt.Errorf("checkpoints of two logs (%q, %q): %w", older.Origin, newer.Origin, ErrInconsistent)
	case newer.Size < older.Size:
		return fmt.Errorf("the later checkpoint holds %d records, the earlier %d: the log was cut back: %w", newer.Size, older.Size, ErrInconsistent)
	case newer.Size == older.Size:
		if newer.Root != older.Root {
			return fmt.Errorf("two checkpoints of %d records with different roots: the log was rewritten: %w", newer.Size, ErrInconsistent)
		}
		return nil
	case older.Size == 0:
		return nil // every tree extends the empty one
	}
	if err := tlog.CheckTree(tlog.TreeProof(proof), newer.Size, newer.Root, older.Size, older.Root); err != nil {
		return fmt.Errorf("the tree of %d records does not extend the tree of %d (%v): the log was rewritten or cut back and regrown: %w",
			newer.Size, older.Size, err, ErrInconsistent)
	}
	return nil
}

// CheckVerifierKey checks that s is a verifier key in the signed-note
// format (name+hash+key, as coid key show prints it); custody.ErrInvalid
// otherwise.
func CheckVerifierKey(s string) error {
	if _, err := note.NewVerifier(s); err != nil {
		return fmt.Errorf("verifier key: %v: %w", err, custody.ErrInvalid)
	}
	return nil
}
