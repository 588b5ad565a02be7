package verifiable

import (
	"bytes"
	"context"
	"fmt"

	"github.com/coid-project/coid/custody"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// WithCosignatures returns the signed checkpoint with the cosignatures'
// lines appended after its own signatures (the signed-note form: a
// verifier of either key finds its line). A line already in the note is
// not repeated.
func WithCosignatures(signed []byte, cs []custody.Cosignature) []byte {
	out := append([]byte(nil), signed...)
	for _, c := range cs {
		if i := bytes.LastIndex(out, []byte("\n\n")); i >= 0 && bytes.Contains(out[i:], []byte("\n"+c.Line)) {
			continue
		}
		out = append(out, c.Line...)
	}
	return out
}

// LatestCosigned returns Latest with the witnesses' cosignatures of it
// kept by the source appended (WithCosignatures), when the source keeps
// cosignatures (custody.CosignatureStore).
func (l *Log) LatestCosigned(ctx context.Context) ([]byte, Checkpoint, error) {
	signed, c, err := l.Latest(ctx)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	cs, ok := l.src.(custody.CosignatureStore)
	if !ok {
		return signed, c, nil
	}
	cos, err := cs.Cosignatures(ctx, c.Size)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	return WithCosignatures(signed, cos), c, nil
}

// CosignerKey is a witness's verifier key for C2SP tlog-cosignature
// (Ed25519 cosignature/v1, with a timestamp).
type CosignerKey struct {
	v note.Verifier
}

// ParseCosignerKey reads a witness's verifier key in the signed-note
// format: an Ed25519 cosignature/v1 key (type 0x04), or a plain Ed25519
// key (type 0x01), taken as the cosignature key of the same Ed25519 key
// (as github.com/transparency-dev/formats/note reads it). A malformed
// key is ErrInvalid.
func ParseCosignerKey(vkey string) (CosignerKey, error) {
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		return CosignerKey{}, fmt.Errorf("cosigner key %q: %v: %w", vkey, err, custody.ErrInvalid)
	}
	return CosignerKey{v: v}, nil
}

// Name returns the key's name: the witness's name in its cosignatures.
func (k CosignerKey) Name() string { return k.v.Name() }

// VerifyCosignature finds, among sigLines (signed-note signature lines,
// as a tlog-witness answers), the cosignature of c by key and verifies
// it; it fails with ErrBadSignature when there is none that verifies.
func VerifyCosignature(key CosignerKey, c Checkpoint, sigLines []byte) (custody.Cosignature, error) {
	if key.v == nil {
		return custody.Cosignature{}, fmt.Errorf("no cosigner key: %w", custody.ErrInvalid)
	}
	msg := append([]byte(c.Text()+"\n"), sigLines...)
	n, err := note.Open(msg, note.VerifierList(key.v))
	if err != nil {
		return custody.Cosignature{}, fmt.Errorf("cosignature by %s: %v: %w", key.Name(), err, ErrBadSignature)
	}
	for _, sig := range n.Sigs {
		if sig.Name != key.v.Name() || sig.Hash != key.v.KeyHash() {
			continue
		}
		t, err := fnote.CoSigV1Timestamp(sig)
		if err != nil {
			return custody.Cosignature{}, fmt.Errorf("cosignature by %s: %v: %w", key.Name(), err, ErrBadSignature)
		}
		line := "— " + sig.Name + " " + sig.Base64 + "\n"
		if err := custody.CheckSignatureLine(sig.Name, line); err != nil {
			return custody.Cosignature{}, fmt.Errorf("cosignature by %s: %v: %w", key.Name(), err, ErrBadSignature)
		}
		return custody.Cosignature{Size: c.Size, Witness: sig.Name, Line: line, Time: t.UTC()}, nil
	}
	return custody.Cosignature{}, fmt.Errorf("no cosignature by %s: %w", key.Name(), ErrBadSignature)
}
