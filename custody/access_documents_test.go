package custody_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/coid-project/coid/custody"
)

// minimalPDF returns a small PDF whose startxref points at its xref
// table, padded to about size bytes with a comment stream.
func minimalPDF(size int) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n")
	for b.Len() < size-200 {
		b.WriteString("% padding padding padding padding padding padding padding padding\n")
	}
	off := b.Len()
	b.WriteString("xref\n0 2\n0000000000 65535 f \n0000000009 00000 n \ntrailer << /Size 2 /Root 1 0 R >>\nstartxref\n")
	b.WriteString(fmtInt(off))
	b.WriteString("\n%%EOF\n")
	return b.Bytes()
}

func fmtInt(n int) string { return strconv.Itoa(n) }

func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// TestDocumentStoreRefusals: what is not a PDF by content, and what is
// too large, is refused and leaves no file; a PDF is stored under its
// SHA-256 only.
func TestDocumentStoreRefusals(t *testing.T) {
	dir := t.TempDir()
	ds, err := custody.NewDocumentStore(dir, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	good := minimalPDF(4096)
	noTrailer := append([]byte("%PDF-1.4\n"), bytes.Repeat([]byte("x"), 100)...)
	badXref := bytes.Replace(good, []byte("startxref\n"), []byte("startxref\n1"), 1)
	cases := []struct {
		name string
		body []byte
		want error
	}{
		{"png", append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0}, 100)...), custody.ErrInvalid},
		{"pdf header, no trailer", noTrailer, custody.ErrInvalid},
		{"startxref outside the file", badXref, custody.ErrInvalid},
		{"too large", minimalPDF(80 << 10), custody.ErrTooLarge},
		{"empty", nil, custody.ErrInvalid},
	}
	for _, c := range cases {
		if _, _, err := ds.Put(bytes.NewReader(c.body)); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
		if files := dirFiles(t, dir); len(files) != 0 {
			t.Fatalf("%s left %v", c.name, files)
		}
	}
	h, n, err := ds.Put(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(good); h != custody.Hash(sum) || n != int64(len(good)) {
		t.Fatalf("hash %s size %d", h, n)
	}
	if files := dirFiles(t, dir); len(files) != 1 || files[0] != h.String() {
		t.Fatalf("files %v, want only %s", files, h)
	}
	f, err := ds.Open(h)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if b, _ := io.ReadAll(f); !bytes.Equal(b, good) {
		t.Fatal("stored bytes differ")
	}
}

// pdfReader streams a PDF of about size bytes without holding it.
func pdfReader(size int) io.Reader {
	head := "%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n"
	pad := size - len(head) - 200
	off := len(head) + pad
	tail := "xref\n0 2\n0000000000 65535 f \n0000000009 00000 n \ntrailer << /Size 2 /Root 1 0 R >>\nstartxref\n" + fmtInt(off) + "\n%%EOF\n"
	return io.MultiReader(strings.NewReader(head), io.LimitReader(zeros{}, int64(pad)), strings.NewReader(tail))
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestDocumentStoreStreams: a 20 MB upload is stored while allocating
// far less than 2 MB.
func TestDocumentStoreStreams(t *testing.T) {
	ds, err := custody.NewDocumentStore(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, n, err := ds.Put(pdfReader(20 << 20))
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if n < 20<<20-1024 {
		t.Fatalf("stored %d bytes", n)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 2<<20 {
		t.Fatalf("storing 20 MB allocated %d bytes", got)
	}
}

// BenchmarkDocumentPut20MB stores a 20 MB PDF per iteration.
func BenchmarkDocumentPut20MB(b *testing.B) {
	ds, err := custody.NewDocumentStore(b.TempDir(), 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(20 << 20)
	for b.Loop() {
		if _, _, err := ds.Put(pdfReader(20 << 20)); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzDocumentStage: whatever the bytes, Stage either refuses them and
// leaves no file, or accepts a PDF (header, %%EOF at the end) under the
// SHA-256 of exactly those bytes.
func FuzzDocumentStage(f *testing.F) {
	f.Add(minimalPDF(512))
	f.Add([]byte("%PDF-1.7\nstartxref\n1\n%%EOF"))
	f.Add([]byte("not a pdf"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		ds, err := custody.NewDocumentStore(dir, 4096)
		if err != nil {
			t.Fatal(err)
		}
		h, n, err := ds.Put(bytes.NewReader(b))
		files := dirFiles(t, dir)
		if err != nil {
			if len(files) != 0 {
				t.Fatalf("refused (%v) but left %v", err, files)
			}
			return
		}
		if !bytes.HasPrefix(b, []byte("%PDF-")) || !bytes.HasSuffix(bytes.TrimRight(b, "\r\n \t\x00"), []byte("%%EOF")) {
			t.Fatalf("accepted a document without header or trailer: %q", b)
		}
		if h != custody.Hash(sha256.Sum256(b)) || n != int64(len(b)) || len(files) != 1 || files[0] != h.String() {
			t.Fatalf("stored %v as %s (%d bytes)", files, h, n)
		}
	})
}
