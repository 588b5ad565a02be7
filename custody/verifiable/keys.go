package verifiable

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/coid-project/coid/custody"
	"golang.org/x/mod/sumdb/note"
)

// KeyFile is the file, in the data directory, that holds the checkpoint
// signing key (a signed-note private key, mode 0600). It is never logged
// or printed.
const KeyFile = "checkpoint.key"

// VerifierFile is the file, in the data directory, that lists the
// checkpoint verifier keys: the active one and every retired one, so that
// checkpoints signed before a rotation still verify.
const VerifierFile = "checkpoint-verifiers"

// Keys is a log's checkpoint signing key and the verifier keys of its
// current and retired signing keys.
type Keys struct {
	dir     string
	signer  note.Signer
	active  string   // the signer's verifier key
	retired []string // lines "retired RFC3339 VKEY", oldest first
}

// DefaultOrigin returns a new origin for a log: "coid/" and 16 random hex
// digits, unique to the ledger. The origin is the name of every key the
// log signs with and the first line of its checkpoints.
func DefaultOrigin(rand io.Reader) (string, error) {
	var b [8]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("log origin: %w", err)
	}
	return "coid/" + hex.EncodeToString(b[:]), nil
}

// CreateKeys makes the signing key of a new log named origin in dir. It
// fails with ErrConflict if dir holds one already.
func CreateKeys(dir, origin string, rand io.Reader) (*Keys, error) {
	if _, err := os.Stat(filepath.Join(dir, KeyFile)); err == nil {
		return nil, fmt.Errorf("create checkpoint key: %s exists: %w", filepath.Join(dir, KeyFile), custody.ErrConflict)
	}
	if origin == "" || strings.ContainsAny(origin, "+ \t\n") {
		return nil, fmt.Errorf("create checkpoint key: origin %q: no spaces or '+': %w", origin, custody.ErrInvalid)
	}
	skey, vkey, err := note.GenerateKey(rand, origin)
	if err != nil {
		return nil, fmt.Errorf("create checkpoint key: %w", err)
	}
	k := &Keys{dir: dir}
	if err := k.install(skey, vkey); err != nil {
		return nil, err
	}
	return k, nil
}

// LoadKeys reads the signing key and verifier keys of dir; ErrNotFound
// when dir has no signing key.
func LoadKeys(dir string) (*Keys, error) {
	skey, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("checkpoint key: none in %s: %w", dir, custody.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint key: %w", err)
	}
	signer, err := note.NewSigner(strings.TrimSpace(string(skey)))
	if err != nil {
		// The error of note.NewSigner never holds the key.
		return nil, fmt.Errorf("checkpoint key %s is malformed: %v: %w", filepath.Join(dir, KeyFile), err, custody.ErrInvalid)
	}
	k := &Keys{dir: dir, signer: signer}
	list, err := os.ReadFile(filepath.Join(dir, VerifierFile))
	if err != nil {
		return nil, fmt.Errorf("checkpoint verifier keys: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(list))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "active":
			k.active = f[1]
		case len(f) == 3 && f[0] == "retired":
			if _, err := note.NewVerifier(f[2]); err != nil {
				return nil, fmt.Errorf("checkpoint verifier keys: retired key %q: %v: %w", f[2], err, custody.ErrInvalid)
			}
			k.retired = append(k.retired, sc.Text())
		case len(f) == 0:
		default:
			return nil, fmt.Errorf("checkpoint verifier keys: bad line %q: %w", sc.Text(), custody.ErrInvalid)
		}
	}
	v, err := note.NewVerifier(k.active)
	if err != nil || v.KeyHash() != signer.KeyHash() || v.Name() != signer.Name() {
		return nil, fmt.Errorf("checkpoint verifier keys: the active key is not the signing key's: %w", custody.ErrInvalid)
	}
	return k, nil
}

// OpenKeys loads dir's keys, or creates them with a new origin
// (DefaultOrigin) when dir has none.
func OpenKeys(dir string, rand io.Reader) (*Keys, error) {
	k, err := LoadKeys(dir)
	if !errors.Is(err, custody.ErrNotFound) {
		return k, err
	}
	origin, err := DefaultOrigin(rand)
	if err != nil {
		return nil, err
	}
	return CreateKeys(dir, origin, rand)
}

// Origin returns the log's origin, the name of its keys.
func (k *Keys) Origin() string { return k.signer.Name() }

// Signer returns the active signing key.
func (k *Keys) Signer() note.Signer { return k.signer }

// Verifier returns the active key's verifier key (signed-note format:
// name+hash+base64 key), which is public.
func (k *Keys) Verifier() string { return k.active }

// Verifiers returns the verifier keys of the active key and of every
// retired key, active first.
func (k *Keys) Verifiers() []string {
	out := []string{k.active}
	for i := len(k.retired) - 1; i >= 0; i-- {
		out = append(out, strings.Fields(k.retired[i])[2])
	}
	return out
}

// Export returns the verifier file's content: every verifier key, active
// and retired (with when it was retired), one a line. It holds no private
// key.
func (k *Keys) Export() string {
	var b strings.Builder
	b.WriteString("active " + k.active + "\n")
	for _, r := range k.retired {
		b.WriteString(r + "\n")
	}
	return b.String()
}

// Rotate replaces the signing key with a new one of the same name. The old
// private key file is replaced (the old key is no longer kept); its
// verifier key is kept as retired, so checkpoints it signed still verify.
func (k *Keys) Rotate(rand io.Reader, now time.Time) error {
	if k.dir == "" {
		return fmt.Errorf("rotate checkpoint key: the key was read from a key file, not kept in a data directory: make a new key file (coid key create): %w", errors.ErrUnsupported)
	}
	skey, vkey, err := note.GenerateKey(rand, k.Origin())
	if err != nil {
		return fmt.Errorf("rotate checkpoint key: %w", err)
	}
	old := *k
	k.retired = append(k.retired, "retired "+now.UTC().Format(time.RFC3339)+" "+k.active)
	if err := k.install(skey, vkey); err != nil {
		*k = old
		return err
	}
	return nil
}

// install writes the verifier list (first, so a crash between the two
// writes leaves the old key still listed) then the private key.
func (k *Keys) install(skey, vkey string) error {
	signer, err := note.NewSigner(skey)
	if err != nil {
		return fmt.Errorf("checkpoint key: %w", err)
	}
	k.active = vkey
	if err := writeFileAtomic(filepath.Join(k.dir, VerifierFile), []byte(k.Export()), 0o644); err != nil {
		return fmt.Errorf("checkpoint verifier keys: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(k.dir, KeyFile), []byte(skey+"\n"), 0o600); err != nil {
		return fmt.Errorf("checkpoint key: %w", err)
	}
	k.signer = signer
	return nil
}

// writeFileAtomic replaces name with data: a temporary file of mode perm,
// synced, renamed over it, and the directory synced.
func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after the rename, a no-op
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// LoadKeyFile reads a checkpoint signing key from the file path (the
// format of KeyFile: a signed-note private key, one line), for a log whose
// key is handed to every instance as a secret rather than kept in one
// instance's data directory. Its verifier key is derived from the private
// key; the Keys have no retired keys and cannot be rotated. A missing file
// is ErrNotFound, anything else than one Ed25519 signed-note key
// ErrInvalid; no error holds the key.
func LoadKeyFile(path string) (*Keys, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("checkpoint key file %s: no such file: %w", path, custody.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint key file %s: %w", path, err)
	}
	skey := strings.TrimSpace(string(b))
	signer, err := note.NewSigner(skey)
	if err != nil {
		// The error of note.NewSigner never holds the key.
		return nil, fmt.Errorf("checkpoint key file %s is malformed (want the one-line signed-note private key coid key create writes): %v: %w",
			path, err, custody.ErrInvalid)
	}
	vkey, err := verifierOf(skey)
	if err != nil {
		return nil, fmt.Errorf("checkpoint key file %s is malformed: %v: %w", path, err, custody.ErrInvalid)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil || v.KeyHash() != signer.KeyHash() || v.Name() != signer.Name() {
		return nil, fmt.Errorf("checkpoint key file %s is malformed: its verifier key does not match: %w", path, custody.ErrInvalid)
	}
	return &Keys{signer: signer, active: vkey}, nil
}

// verifierOf returns the verifier key of the Ed25519 signed-note private
// key skey (PRIVATE+KEY+NAME+HASH+base64(0x01 seed)). Its errors never
// hold the key.
func verifierOf(skey string) (string, error) {
	rest, ok := strings.CutPrefix(skey, "PRIVATE+KEY+")
	if !ok {
		return "", errors.New("not a signed-note private key")
	}
	f := strings.SplitN(rest, "+", 3) // the base64 key may hold a +
	if len(f) != 3 {
		return "", errors.New("not NAME+HASH+KEY")
	}
	raw, err := base64.StdEncoding.DecodeString(f[2])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", errors.New("not an Ed25519 key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	return f[0] + "+" + f[1] + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, pub...)), nil
}

// CreateKeyFile makes a new signing key for a log named origin and writes
// it to the file path (mode 0600), which must not exist (ErrConflict); it
// returns the Keys, whose verifier key is public.
func CreateKeyFile(path, origin string, rand io.Reader) (*Keys, error) {
	if origin == "" || strings.ContainsAny(origin, "+ \t\n") {
		return nil, fmt.Errorf("create checkpoint key: origin %q: no spaces or '+': %w", origin, custody.ErrInvalid)
	}
	skey, vkey, err := note.GenerateKey(rand, origin)
	if err != nil {
		return nil, fmt.Errorf("create checkpoint key: %w", err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("create checkpoint key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create checkpoint key: %s exists: %w", path, custody.ErrConflict)
	}
	if err != nil {
		return nil, fmt.Errorf("create checkpoint key: %w", err)
	}
	_, err = f.WriteString(skey + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("create checkpoint key: %w", err)
	}
	return &Keys{signer: signer, active: vkey}, nil
}
