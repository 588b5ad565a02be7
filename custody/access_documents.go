package custody

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
)

// ErrTooLarge means an uploaded document is larger than the store
// accepts. Nothing was stored.
var ErrTooLarge = errors.New("document too large")

// DefaultMaxDocument is the default size limit of a document: 25 MB.
const DefaultMaxDocument = 25 << 20

// DocumentStore keeps the documents of expanded-access requests outside
// the ledger, by content: each is a file named by the hex SHA-256 of its
// bytes, and only that hash goes into a signed record. Documents are PDF,
// checked by content. A document is streamed to a temporary file while it
// is hashed, synced and renamed into place, so a file under its hash name
// is always whole; a refused upload leaves nothing.
type DocumentStore struct {
	dir string
	max int64
}

// NewDocumentStore returns the store in dir (created if missing),
// accepting documents of at most max bytes (<= 0: DefaultMaxDocument).
func NewDocumentStore(dir string, max int64) (*DocumentStore, error) {
	if max <= 0 {
		max = DefaultMaxDocument
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("document store: %w", err)
	}
	return &DocumentStore{dir: dir, max: max}, nil
}

// MaxSize returns the largest document the store accepts, in bytes.
func (d *DocumentStore) MaxSize() int64 { return d.max }

// copyBuffer is the size of the buffer a document is streamed through.
const copyBuffer = 64 << 10

// Put stores the PDF read from r and returns its hash and size, as Stage
// then Commit do.
func (d *DocumentStore) Put(r io.Reader) (Hash, int64, error) {
	st, err := d.Stage(r)
	if err != nil {
		return Hash{}, 0, err
	}
	if err := st.Commit(); err != nil {
		return Hash{}, 0, err
	}
	return st.Hash, st.Size, nil
}

// Staged is a document written and checked but not yet in the store:
// Commit puts it there, Discard drops it.
type Staged struct {
	Hash Hash
	Size int64
	d    *DocumentStore
	tmp  string
}

// Stage streams the PDF read from r to a temporary file in the store's
// directory, hashing it on the way, and checks it. It refuses
// (ErrInvalid) what is not a PDF: no "%PDF-" header, or no trailer (a
// "startxref" pointing inside the file at a cross-reference table or
// stream, then "%%EOF"), and (ErrTooLarge) more than the store's limit;
// either way it leaves nothing. It holds one 64 KiB buffer, whatever the
// size.
func (d *DocumentStore) Stage(r io.Reader) (*Staged, error) {
	f, err := os.CreateTemp(d.dir, ".upload-*")
	if err != nil {
		return nil, fmt.Errorf("store document: %w", err)
	}
	st := &Staged{d: d, tmp: f.Name()}
	fail := func(err error) (*Staged, error) {
		f.Close()
		os.Remove(st.tmp)
		return nil, fmt.Errorf("store document: %w", err)
	}
	h := sha256.New()
	buf := make([]byte, copyBuffer)
	n, err := io.CopyBuffer(io.MultiWriter(f, h), io.LimitReader(r, d.max+1), buf)
	if err != nil {
		return fail(err)
	}
	if n > d.max {
		return fail(fmt.Errorf("larger than %d bytes: %w", d.max, ErrTooLarge))
	}
	if err := checkPDF(f, n, buf); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(st.tmp)
		return nil, fmt.Errorf("store document: %w", err)
	}
	h.Sum(st.Hash[:0])
	st.Size = n
	return st, nil
}

// Discard removes a staged document.
func (st *Staged) Discard() { os.Remove(st.tmp) }

// Commit renames the staged document to its hash and syncs the directory.
func (st *Staged) Commit() error {
	if err := os.Rename(st.tmp, st.d.path(st.Hash)); err != nil {
		os.Remove(st.tmp)
		return fmt.Errorf("store document: %w", err)
	}
	dir, err := os.Open(st.d.dir)
	if err != nil {
		return fmt.Errorf("store document: %w", err)
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("store document: sync directory: %w", err)
	}
	return nil
}

func (d *DocumentStore) path(h Hash) string { return filepath.Join(d.dir, h.String()) }

// Open returns the document of hash h (ErrNotFound if none).
func (d *DocumentStore) Open(h Hash) (*os.File, error) {
	f, err := os.Open(d.path(h))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("document %s: %w", h, ErrNotFound)
	}
	return f, err
}

// Has reports whether the document of hash h is stored.
func (d *DocumentStore) Has(h Hash) error {
	if _, err := os.Stat(d.path(h)); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("document %s is not stored: %w", h, ErrNotFound)
	} else if err != nil {
		return err
	}
	return nil
}

// checkPDF checks the n bytes of f for a PDF header and trailer, reading
// through buf.
func checkPDF(f *os.File, n int64, buf []byte) error {
	head := buf[:min(int64(len(buf)), 8)]
	if _, err := f.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if n < 8 || !bytes.HasPrefix(head, []byte("%PDF-")) {
		return fmt.Errorf("not a PDF (no %%PDF- header): %w", ErrInvalid)
	}
	tail := buf[:min(int64(len(buf)), 2048, n)]
	if _, err := f.ReadAt(tail, n-int64(len(tail))); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	tail = bytes.TrimRight(tail, "\r\n \t\x00")
	if !bytes.HasSuffix(tail, []byte("%%EOF")) {
		return fmt.Errorf("not a PDF (no %%%%EOF at the end): %w", ErrInvalid)
	}
	i := bytes.LastIndex(tail, []byte("startxref"))
	if i < 0 {
		return fmt.Errorf("not a PDF (no startxref in its trailer): %w", ErrInvalid)
	}
	num := bytes.TrimSpace(tail[i+len("startxref") : len(tail)-len("%%EOF")])
	off, err := strconv.ParseInt(string(num), 10, 64)
	if err != nil || off <= 0 || off >= n {
		return fmt.Errorf("not a PDF (startxref %q does not point inside the file): %w", num, ErrInvalid)
	}
	at := buf[:min(int64(len(buf)), 32, n-off)]
	if _, err := f.ReadAt(at, off); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if !bytes.HasPrefix(at, []byte("xref")) && !isObjHeader(at) {
		return fmt.Errorf("not a PDF (startxref points at neither a cross-reference table nor a stream object): %w", ErrInvalid)
	}
	return nil
}

// isObjHeader reports whether b starts "N G obj".
func isObjHeader(b []byte) bool {
	f := bytes.Fields(b)
	if len(f) < 3 || !bytes.HasPrefix(f[2], []byte("obj")) {
		return false
	}
	_, e1 := strconv.Atoi(string(f[0]))
	_, e2 := strconv.Atoi(string(f[1]))
	return e1 == nil && e2 == nil
}

// documentExists refuses a hash the service's document store does not
// hold (ErrInvalid without a store: requests then take no documents).
func (s *Service) documentExists(hex string) error {
	h, err := ParseHash(hex)
	if err != nil {
		return err
	}
	if s.docs == nil {
		return fmt.Errorf("this service keeps no documents: %w", ErrInvalid)
	}
	if err := s.docs.Has(h); err != nil {
		return fmt.Errorf("%v: upload it first: %w", err, ErrInvalid)
	}
	return nil
}

// Documents returns the service's document store; nil when it keeps none.
func (s *Service) Documents() *DocumentStore { return s.docs }

// CheckAccessUpload refuses an upload to request id by actor: one who may
// not read the request (ErrNotFound), an administrator (ErrForbidden), a
// service without a document store (ErrInvalid), and form fields or a file
// name that label a patient identifier (ErrInvalid). coid keeps neither
// the fields nor the file name: the document is named by its hash.
func (s *Service) CheckAccessUpload(ctx context.Context, actor User, id COI, fields ...string) error {
	op := "upload to request " + string(id)
	if s.docs == nil {
		return fmt.Errorf("%s: this service keeps no documents: %w", op, ErrInvalid)
	}
	if actor.Role == RoleAdmin {
		return fmt.Errorf("%s: administrators take no part in requests: %w", op, ErrForbidden)
	}
	if err := s.checkFreeTextPHI(fields...); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if _, err := s.AccessRequest(ctx, actor, id); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// AccessDocument opens a document attached to request id, for one who may
// read the request; a document not attached to it is ErrNotFound.
func (s *Service) AccessDocument(ctx context.Context, actor User, id COI, h Hash) (*os.File, error) {
	r, err := s.AccessRequest(ctx, actor, id)
	if err != nil {
		return nil, err
	}
	if s.docs == nil || !slices.Contains(r.Documents, h.String()) {
		return nil, fmt.Errorf("request %s: document %s: %w", id, h, ErrNotFound)
	}
	return s.docs.Open(h)
}
