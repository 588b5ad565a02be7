// Package witness submits the log's signed checkpoints to independent
// witnesses speaking the C2SP tlog-witness protocol, verifies the
// cosignatures they return (C2SP tlog-cosignature, Ed25519
// cosignature/v1) and keeps them with the checkpoint, so that even an
// operator holding the log's key cannot show two histories to two
// parties. It owns the witness configuration, the submission (in the
// background, with bounded retries: a dead witness never holds up the
// ledger) and the quorum.
//
// Cosignatures are verified and consistency proofs made by package
// verifiable, with the libraries it wraps: no signature or proof code is
// written here.
package witness

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
)

// Witness is one configured witness: its name (its key's name, as its
// cosignature lines carry it), the URL prefix of its tlog-witness
// endpoint (add-checkpoint is under it) and its verifier key.
type Witness struct {
	Name string
	URL  string
	// Key is the witness's verifier key in the signed-note format, of
	// an Ed25519 cosignature/v1 key (or a plain Ed25519 key, read as
	// one).
	Key string
	key verifiable.CosignerKey
}

// NewWitness returns the witness at url (its tlog-witness prefix) with
// verifier key key; name must be the key's name. Bad input is ErrInvalid.
func NewWitness(name, rawURL, key string) (Witness, error) {
	v, err := verifiable.ParseCosignerKey(key)
	if err != nil {
		return Witness{}, fmt.Errorf("witness %q: %w", name, err)
	}
	if v.Name() != name {
		return Witness{}, fmt.Errorf("witness %q: its key is named %q: give the witness its key's name: %w", name, v.Name(), custody.ErrInvalid)
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return Witness{}, fmt.Errorf("witness %q: URL %q: want http(s)://host/prefix: %w", name, rawURL, custody.ErrInvalid)
	}
	return Witness{Name: name, URL: strings.TrimSuffix(rawURL, "/"), Key: key, key: v}, nil
}

// Parse reads one witness as configured: NAME=URL+VERIFIERKEY, e.g.
// witness.example/w1=https://witness.example/w1+witness.example/w1+3c9f…+BASE64.
// The verifier key begins with NAME, which ends the URL.
func Parse(spec string) (Witness, error) {
	name, rest, ok := strings.Cut(strings.TrimSpace(spec), "=")
	if !ok || name == "" {
		return Witness{}, fmt.Errorf("witness %q: want NAME=URL+VERIFIERKEY: %w", spec, custody.ErrInvalid)
	}
	rawURL, key, ok := strings.Cut(rest, "+"+name+"+")
	if !ok {
		return Witness{}, fmt.Errorf("witness %q: want NAME=URL+VERIFIERKEY, the key named NAME: %w", spec, custody.ErrInvalid)
	}
	return NewWitness(name, rawURL, name+"+"+key)
}

// ParseList reads the witnesses of specs (each as Parse reads one) and
// checks the quorum: 1 to their number, or 0 with no witnesses. Names
// must differ.
func ParseList(specs []string, quorum int) ([]Witness, error) {
	var out []Witness
	seen := map[string]bool{}
	for _, s := range specs {
		w, err := Parse(s)
		if err != nil {
			return nil, err
		}
		if seen[w.Name] {
			return nil, fmt.Errorf("witness %q is configured twice: %w", w.Name, custody.ErrInvalid)
		}
		seen[w.Name] = true
		out = append(out, w)
	}
	if quorum < 0 || quorum > len(out) || (quorum == 0 && len(out) > 0) {
		return nil, fmt.Errorf("witness quorum %d: want 1 to the %d witnesses configured: %w", quorum, len(out), custody.ErrInvalid)
	}
	return out, nil
}

// Outcome is what the last submission of a checkpoint to a witness came
// to.
type Outcome string

// The outcomes of a submission.
const (
	// Cosigned: the witness returned a cosignature that verifies.
	Cosigned Outcome = "cosigned"
	// Refused: the witness refused the checkpoint (it does not know the
	// log or its key, or the request).
	Refused Outcome = "refused"
	// SplitView: the witness saw a tree this checkpoint does not extend
	// (it refused the consistency proof, or knows a larger tree).
	SplitView Outcome = "split-view"
	// BadCosignature: the witness answered with no valid cosignature by
	// its configured key.
	BadCosignature Outcome = "bad-cosignature"
	// Unreachable: no answer (network, timeout) or a server error, after
	// every retry.
	Unreachable Outcome = "unreachable"
)

// The errors of a submission, by outcome.
var (
	// ErrRefused: the witness refused the checkpoint.
	ErrRefused = errors.New("the witness refused the checkpoint")
	// ErrSplitView: the witness saw a tree the checkpoint does not
	// extend.
	ErrSplitView = errors.New("the witness saw a different tree (split view)")
	// ErrBadCosignature: the witness's answer holds no valid
	// cosignature by its key.
	ErrBadCosignature = errors.New("the witness's cosignature does not verify")
	// ErrUnreachable: the witness did not answer, or failed.
	ErrUnreachable = errors.New("the witness is unreachable")
)

// outcomeOf maps a submission error to its outcome.
func outcomeOf(err error) Outcome {
	switch {
	case err == nil:
		return Cosigned
	case errors.Is(err, ErrSplitView):
		return SplitView
	case errors.Is(err, ErrRefused):
		return Refused
	case errors.Is(err, ErrBadCosignature):
		return BadCosignature
	default:
		return Unreachable
	}
}

// parseSize reads a 409 answer's body: the witness's known tree size.
func parseSize(b []byte) (int64, error) {
	s := strings.TrimSuffix(string(b), "\n")
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, fmt.Errorf("the witness's known size %q is not a size: %w", s, ErrRefused)
	}
	return n, nil
}
