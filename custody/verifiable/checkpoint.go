package verifiable

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/coid-project/coid/custody"
	"golang.org/x/mod/sumdb/note"
)

// Checkpoint is the body of a C2SP tlog-checkpoint: the log's origin, its
// size (records) and the root hash of its tree at that size.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   Hash
}

// Text returns the checkpoint body as signed: the origin line, the size in
// decimal and the base64 root hash, each ending in a newline.
func (c Checkpoint) Text() string {
	return c.Origin + "\n" + strconv.FormatInt(c.Size, 10) + "\n" + base64.StdEncoding.EncodeToString(c.Root[:]) + "\n"
}

// ParseCheckpoint reads a checkpoint body (Text). Extension lines after
// the root are allowed and ignored, as C2SP tlog-checkpoint says. A
// malformed body is ErrInvalid.
func ParseCheckpoint(text string) (Checkpoint, error) {
	lines := strings.SplitAfter(text, "\n")
	if len(lines) < 4 || !strings.HasSuffix(text, "\n") {
		return Checkpoint{}, fmt.Errorf("checkpoint: want origin, size and root hash lines: %w", custody.ErrInvalid)
	}
	origin := strings.TrimSuffix(lines[0], "\n")
	sizeLine := strings.TrimSuffix(lines[1], "\n")
	size, err := strconv.ParseInt(sizeLine, 10, 64)
	if origin == "" || err != nil || size < 0 || strconv.FormatInt(size, 10) != sizeLine {
		return Checkpoint{}, fmt.Errorf("checkpoint: bad origin or size line: %w", custody.ErrInvalid)
	}
	root, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSuffix(lines[2], "\n"))
	if err != nil || len(root) != len(Hash{}) {
		return Checkpoint{}, fmt.Errorf("checkpoint: the root hash must be 32 bytes of base64: %w", custody.ErrInvalid)
	}
	c := Checkpoint{Origin: origin, Size: size}
	copy(c.Root[:], root)
	return c, nil
}

// ErrBadSignature means a signed checkpoint carries no valid signature by
// any of the keys it was checked against (tampered with, or signed by an
// unknown key).
var ErrBadSignature = errors.New("checkpoint signature does not verify")

// Sign signs the checkpoint as a C2SP signed note with signer.
func Sign(c Checkpoint, signer note.Signer) ([]byte, error) {
	if signer.Name() != c.Origin {
		return nil, fmt.Errorf("sign checkpoint: key %q is not the log's (%q): %w", signer.Name(), c.Origin, custody.ErrInvalid)
	}
	msg, err := note.Sign(&note.Note{Text: c.Text()}, signer)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return msg, nil
}

// Open verifies a signed checkpoint against the verifier keys (in the
// signed-note verifier format, as `coid key show` prints them) and returns
// its body. It fails with ErrBadSignature unless at least one signature by
// one of the keys verifies and the origin is the keys' name, and with
// ErrInvalid for a malformed note or body.
func Open(signed []byte, verifierKeys ...string) (Checkpoint, error) {
	c, _, err := open(signed, verifierKeys)
	return c, err
}

// open is Open, returning the opened note too (its verified signatures).
func open(signed []byte, verifierKeys []string) (Checkpoint, *note.Note, error) {
	var vs []note.Verifier
	for _, k := range verifierKeys {
		v, err := note.NewVerifier(strings.TrimSpace(k))
		if err != nil {
			return Checkpoint{}, nil, fmt.Errorf("verifier key %q: %v: %w", k, err, custody.ErrInvalid)
		}
		vs = append(vs, v)
	}
	if err := canonicalSignatures(signed); err != nil {
		return Checkpoint{}, nil, err
	}
	n, err := note.Open(signed, note.VerifierList(vs...))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return Checkpoint{}, nil, fmt.Errorf("%v: %w", err, ErrBadSignature)
		}
		return Checkpoint{}, nil, fmt.Errorf("signed checkpoint: %v: %w", err, custody.ErrInvalid)
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	for _, s := range n.Sigs {
		if s.Name == c.Origin {
			return c, n, nil
		}
	}
	return Checkpoint{}, nil, fmt.Errorf("checkpoint of %q is signed by no key of that name: %w", c.Origin, ErrBadSignature)
}

// canonicalSignatures refuses a signature line whose base64 is not in its
// one canonical form: the note library decodes base64 leniently, so a
// signature with its unused padding bits changed would verify as the same
// signature, and a changed byte of a checkpoint must never pass.
func canonicalSignatures(signed []byte) error {
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 {
		return fmt.Errorf("signed checkpoint: no signature: %w", ErrBadSignature)
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(signed[i+2:]), "\n"), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue // note.Open refuses it
		}
		if _, err := base64.StdEncoding.Strict().DecodeString(f[2]); err != nil {
			return fmt.Errorf("signed checkpoint: signature by %q is not canonical base64: %w", f[1], ErrBadSignature)
		}
	}
	return nil
}

// body returns the text of a signed note without checking its signatures
// (to read back what this log signed and stored).
func body(signed []byte) string {
	i := bytes.Index(signed, []byte("\n\n"))
	if i < 0 {
		return ""
	}
	return string(signed[:i+1])
}
