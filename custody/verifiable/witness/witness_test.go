package witness_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
	"github.com/coid-project/coid/custody/verifiable/witness"
	"github.com/coid-project/coid/custody/verifiable/witness/witnesstest"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

var t0 = time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)

// memLog is an in-memory verifiable.Source and custody.CosignatureStore:
// the tree hashes made by tlog.StoredHashes, as a store makes them.
type memLog struct {
	mu      sync.Mutex
	entries [][]byte
	hashes  []verifiable.Hash
	signed  [][]byte
	cos     map[int64]map[string]custody.Cosignature
	states  map[string]custody.WitnessState
}

func (m *memLog) append(t *testing.T, entries ...string) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range entries {
		hs, err := tlog.StoredHashes(int64(len(m.entries)), []byte(e), m.reader())
		if err != nil {
			t.Fatal(err)
		}
		m.entries = append(m.entries, []byte(e))
		m.hashes = append(m.hashes, hs...)
	}
}

type readerFunc func([]int64) ([]verifiable.Hash, error)

func (f readerFunc) ReadHashes(idx []int64) ([]verifiable.Hash, error) { return f(idx) }

func (m *memLog) reader() verifiable.HashReader {
	return readerFunc(func(idx []int64) ([]verifiable.Hash, error) {
		out := make([]verifiable.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(m.hashes)) {
				return nil, fmt.Errorf("hash %d: %w", x, custody.ErrNotFound)
			}
			out[i] = m.hashes[x]
		}
		return out, nil
	})
}

func (m *memLog) TreeSize(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.entries)), nil
}

func (m *memLog) ReadHashes(_ context.Context, idx []int64) ([]verifiable.Hash, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.reader().ReadHashes(idx)
}

func (m *memLog) ReadEntries(_ context.Context, start, end int64) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.entries[start:end], nil
}

func (m *memLog) AddCheckpoint(_ context.Context, _ int64, signed []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.signed = append(m.signed, signed)
	return nil
}

func (m *memLog) LatestCheckpoint(context.Context) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.signed) == 0 {
		return nil, custody.ErrNotFound
	}
	return m.signed[len(m.signed)-1], nil
}

func (m *memLog) AddCosignature(_ context.Context, c custody.Cosignature) error {
	if err := custody.CheckSignatureLine(c.Witness, c.Line); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cos == nil {
		m.cos = map[int64]map[string]custody.Cosignature{}
	}
	if m.cos[c.Size] == nil {
		m.cos[c.Size] = map[string]custody.Cosignature{}
	}
	m.cos[c.Size][c.Witness] = c
	return nil
}

func (m *memLog) Cosignatures(_ context.Context, size int64) ([]custody.Cosignature, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []custody.Cosignature{}
	for _, c := range m.cos[size] {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b custody.Cosignature) int { return strings.Compare(a.Witness, b.Witness) })
	return out, nil
}

func (m *memLog) PutWitnessState(_ context.Context, st custody.WitnessState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.states == nil {
		m.states = map[string]custody.WitnessState{}
	}
	m.states[st.Witness] = st
	return nil
}

func (m *memLog) WitnessStates(context.Context) ([]custody.WitnessState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []custody.WitnessState{}
	for _, st := range m.states {
		out = append(out, st)
	}
	return out, nil
}

func (m *memLog) CosignedCheckpoints(_ context.Context, after int64, limit int) ([]custody.CosignedCheckpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []custody.CosignedCheckpoint
	for size, ws := range m.cos {
		if size > after {
			c := custody.CosignedCheckpoint{Size: size}
			for w := range ws {
				c.Witnesses = append(c.Witnesses, w)
			}
			slices.Sort(c.Witnesses)
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b custody.CosignedCheckpoint) int { return int(a.Size - b.Size) })
	return out[:min(limit, len(out))], nil
}

// fixture is a log with its keys and a set of test witnesses, each
// behind its own HTTP server.
type fixture struct {
	src   *memLog
	log   *verifiable.Log
	keys  *verifiable.Keys
	wits  []*witnesstest.Witness
	ws    []witness.Witness
	waits chan time.Duration // the waits the submitter asked of its clock
}

func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	keys, err := verifiable.CreateKeys(t.TempDir(), "coid/witness-test", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return newFixtureWithKeys(t, n, keys)
}

func newFixtureWithKeys(t *testing.T, n int, keys *verifiable.Keys) *fixture {
	t.Helper()
	f := &fixture{src: &memLog{}, keys: keys, waits: make(chan time.Duration, 1000)}
	f.log = verifiable.NewLog(f.src, keys, func() time.Time { return t0 }, nil)
	for i := range n {
		name := fmt.Sprintf("witness.example/w%d", i+1)
		tw, err := witnesstest.New(name, keys.Verifier(), byte(i+1))
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(tw)
		t.Cleanup(srv.Close)
		t.Cleanup(tw.Close) // runs before srv.Close
		w, err := witness.Parse(name + "=" + srv.URL + witnesstest.Prefix + "+" + tw.VerifierKey())
		if err != nil {
			t.Fatal(err)
		}
		f.wits = append(f.wits, tw)
		f.ws = append(f.ws, w)
	}
	return f
}

// submitter returns a submitter of f's witnesses whose clock answers
// every wait at once (recording it), except the poll, which never comes.
func (f *fixture) submitter(t *testing.T, quorum int, timeout time.Duration) *witness.Submitter {
	t.Helper()
	s, err := witness.New(witness.Config{Witnesses: f.ws, Quorum: quorum, Log: f.log, Store: f.src,
		Client: &http.Client{Timeout: timeout}, Now: func() time.Time { return t0 },
		After: func(d time.Duration) <-chan time.Time {
			if d == witness.DefaultPoll {
				return nil
			}
			f.waits <- d
			c := make(chan time.Time, 1)
			c <- t0
			return c
		}, Attempts: 3, Backoff: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	f.log.OnSigned(s.Notify)
	return s
}

func (f *fixture) sign(t *testing.T) ([]byte, verifiable.Checkpoint) {
	t.Helper()
	signed, cp, err := f.log.Sign(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return signed, cp
}

func entries(prefix string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s record %d", prefix, i))
	}
	return out
}

// TestCosignatureVerified: an honest witness's cosignature, made by
// torchwood, verifies against its key; it is kept, served appended to
// the checkpoint, and the note then verifies with the log's key and the
// witness's (each through the outside libraries).
func TestCosignatureVerified(t *testing.T) {
	f := newFixture(t, 1)
	s := f.submitter(t, 1, 10*time.Second)
	f.src.append(t, entries("a", 5)...)
	signed, cp := f.sign(t)
	cos, known, err := s.Submit(context.Background(), f.ws[0], signed, cp, 0)
	if err != nil {
		t.Fatal(err)
	}
	if known != 5 || cos.Size != 5 || cos.Witness != "witness.example/w1" || !strings.HasPrefix(cos.Line, "— witness.example/w1 ") {
		t.Fatalf("cosignature %+v, known %d", cos, known)
	}
	if err := f.src.AddCosignature(context.Background(), cos); err != nil {
		t.Fatal(err)
	}
	served, _, err := f.log.LatestCosigned(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(served, signed) || !bytes.HasSuffix(served, []byte(cos.Line)) {
		t.Fatalf("served checkpoint:\n%s", served)
	}
	// Both signatures verify, by the log's key and by the witness's (the
	// witness's verifier from torchwood, not from coid).
	logV, err := note.NewVerifier(f.keys.Verifier())
	if err != nil {
		t.Fatal(err)
	}
	n, err := note.Open(served, note.VerifierList(logV, f.wits[0].Signer().Verifier()))
	if err != nil || len(n.Sigs) != 2 {
		t.Fatalf("served checkpoint does not verify with both keys: %v (%d signatures)", err, len(n.Sigs))
	}
	// coid's own checkpoint reader still takes it (the extra line is an
	// unknown key's).
	if _, err := verifiable.Open(served, f.keys.Verifier()); err != nil {
		t.Fatal(err)
	}
	// A cosignature of another checkpoint does not verify against this one.
	f.src.append(t, "b")
	_, cp2 := f.sign(t)
	if _, err := verifiable.VerifyCosignature(mustKey(t, f.wits[0].VerifierKey()), cp2, []byte(cos.Line)); !errors.Is(err, verifiable.ErrBadSignature) {
		t.Fatalf("cosignature moved to another checkpoint: %v", err)
	}
}

func mustKey(t *testing.T, vkey string) verifiable.CosignerKey {
	t.Helper()
	k, err := verifiable.ParseCosignerKey(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestSubmitFromTheWitnessesSize: the witness answers 409 with the size
// it knows, and the checkpoint is sent again with that old size and the
// consistency proof from it, which the witness checks.
func TestSubmitFromTheWitnessesSize(t *testing.T) {
	f := newFixture(t, 1)
	s := f.submitter(t, 1, 10*time.Second)
	f.src.append(t, entries("a", 3)...)
	signed, cp := f.sign(t)
	if _, _, err := s.Submit(context.Background(), f.ws[0], signed, cp, 0); err != nil {
		t.Fatal(err)
	}
	f.src.append(t, entries("b", 10)...)
	signed, cp = f.sign(t)
	// Sent as if the witness knew nothing: 409, then from 3.
	_, known, err := s.Submit(context.Background(), f.ws[0], signed, cp, 0)
	if err != nil {
		t.Fatal(err)
	}
	if known != 13 || f.wits[0].Tree(cp.Origin).N != 13 {
		t.Fatalf("known %d, witness %d", known, f.wits[0].Tree(cp.Origin).N)
	}
	last := f.wits[0].Requests()[len(f.wits[0].Requests())-1]
	if !strings.HasPrefix(last, "old 3\n") || strings.Count(strings.Split(last, "\n\n")[0], "\n") < 1 {
		t.Fatalf("resent request:\n%s", last)
	}
}

// TestOutcomes: a witness that refuses, does not answer in time, answers
// with a bad signature or is not configured with the key a log signs
// with is reported with its outcome and cosigns nothing.
func TestOutcomes(t *testing.T) {
	tests := []struct {
		name string
		mode string
		want error
	}{
		{"refuses", "refuse", witness.ErrRefused},
		{"times out", "hang", witness.ErrUnreachable},
		{"bad signature", "bad-signature", witness.ErrBadCosignature},
		{"server error", "fail", witness.ErrUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 1)
			// The timeout only ends the hanging request: no test waits
			// on it otherwise.
			s := f.submitter(t, 1, 200*time.Millisecond)
			f.wits[0].Set(tt.mode, 100)
			f.src.append(t, entries("a", 4)...)
			signed, cp := f.sign(t)
			if _, _, err := s.Submit(context.Background(), f.ws[0], signed, cp, 0); !errors.Is(err, tt.want) {
				t.Fatalf("Submit = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("unknown log key", func(t *testing.T) {
		f := newFixture(t, 1)
		s := f.submitter(t, 1, 10*time.Second)
		other, err := verifiable.CreateKeys(t.TempDir(), "coid/witness-test", rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		f.src.append(t, "a")
		c := verifiable.Checkpoint{Origin: "coid/witness-test", Size: 1, Root: f.src.hashes[0]}
		signed, err := verifiable.Sign(c, other.Signer())
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Submit(context.Background(), f.ws[0], signed, c, 0); !errors.Is(err, witness.ErrRefused) {
			t.Fatalf("Submit = %v, want ErrRefused", err)
		}
	})
}

// TestSplitView: the operator signs two histories with the same key; the
// witness that cosigned one refuses the other, and the submitter says
// so, whether the other is longer (the proof fails) or shorter.
func TestSplitView(t *testing.T) {
	honest := newFixture(t, 1)
	honest.src.append(t, entries("a", 6)...)
	signed, cp := honest.sign(t)
	if _, _, err := honest.submitter(t, 1, 10*time.Second).Submit(context.Background(), honest.ws[0], signed, cp, 0); err != nil {
		t.Fatal(err)
	}
	// A second log with the same key and origin, whose records differ.
	for _, n := range []int{9, 4} {
		fork := &fixture{src: &memLog{}, keys: honest.keys, wits: honest.wits, ws: honest.ws, waits: make(chan time.Duration, 100)}
		fork.log = verifiable.NewLog(fork.src, honest.keys, func() time.Time { return t0 }, nil)
		s := fork.submitter(t, 1, 10*time.Second)
		fork.src.append(t, entries("forged", n)...)
		signed, cp := fork.sign(t)
		_, _, err := s.Submit(context.Background(), fork.ws[0], signed, cp, 0)
		if !errors.Is(err, witness.ErrSplitView) {
			t.Fatalf("fork of %d records: Submit = %v, want ErrSplitView", n, err)
		}
	}
	if got := honest.wits[0].Tree(cp.Origin); got.N != 6 || got.Hash != cp.Root {
		t.Fatalf("the witness moved to %+v", got)
	}
}

// TestRunInBackground: the submitter cosigns each new checkpoint with
// every live witness; a witness that hangs is retried with a doubling
// backoff, bounded, reported, and never holds up the others or the log;
// the quorum listing counts only verified cosignatures.
func TestRunInBackground(t *testing.T) {
	f := newFixture(t, 3)
	s := f.submitter(t, 2, 200*time.Millisecond)
	f.wits[1].Set("hang", 0)
	f.wits[2].Set("bad-signature", 0)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	f.src.append(t, entries("a", 7)...)
	f.sign(t)
	waitFor(t, func() bool {
		st := s.Statuses()
		return st[0].Size == 7 && f.wits[1].Calls() == 3 && st[1].Outcome == witness.Unreachable && st[2].Outcome == witness.BadCosignature
	})
	// Retries of the hanging witness: 1 s then 2 s, three attempts in
	// all; none for the refusing ones.
	var waits []time.Duration
	for len(f.waits) > 0 {
		waits = append(waits, <-f.waits)
	}
	if !slices.Equal(waits, []time.Duration{time.Second, 2 * time.Second}) {
		t.Fatalf("waits %v, want [1s 2s]", waits)
	}
	page, err := s.Witnessed(context.Background(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 1 || page[0].Size != 7 || page[0].Quorum || !slices.Equal(page[0].Witnesses, []string{"witness.example/w1"}) {
		t.Fatalf("witnessed %+v, want 7 by w1 only, short of the quorum", page)
	}
	// The witness comes back; the next checkpoint reaches the quorum.
	f.wits[1].Set("", 0)
	f.src.append(t, entries("b", 2)...)
	f.sign(t)
	waitFor(t, func() bool {
		st := s.Statuses()
		return st[0].Size == 9 && st[1].Size == 9 && st[2].LastSize == 9
	})
	page, err = s.Witnessed(context.Background(), 7, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 1 || page[0].Size != 9 || !page[0].Quorum {
		t.Fatalf("witnessed %+v, want 9 with the quorum", page)
	}
	cos, _ := f.src.Cosignatures(context.Background(), 9)
	if len(cos) != 2 {
		t.Fatalf("kept %+v", cos)
	}
}

// waitFor polls cond; the bound only catches a hang.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached (hang)")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestParse: the configuration's forms, and what is refused.
func TestParse(t *testing.T) {
	keys, err := verifiable.CreateKeys(t.TempDir(), "coid/parse", rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tw, err := witnesstest.New("witness.example/w1", keys.Verifier(), 1)
	if err != nil {
		t.Fatal(err)
	}
	vkey := tw.VerifierKey()
	good := "witness.example/w1=https://witness.example/w1/+" + vkey
	w, err := witness.Parse(good)
	if err != nil || w.URL != "https://witness.example/w1" || w.Name != "witness.example/w1" || w.Key != vkey {
		t.Fatalf("Parse = %+v, %v", w, err)
	}
	for _, bad := range []string{
		"",
		"https://witness.example/w1+" + vkey, // no name
		"witness.example/w2=https://witness.example/w1+" + vkey,      // not the key's name
		"witness.example/w1=ftp://witness.example/w1+" + vkey,        // not http
		"witness.example/w1=https://witness.example/w1",              // no key
		"witness.example/w1=https://witness.example/w1+" + vkey[:20], // cut key
	} {
		if _, err := witness.Parse(bad); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("Parse(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := witness.ParseList([]string{good, good}, 1); !errors.Is(err, custody.ErrInvalid) {
		t.Errorf("a witness twice: %v", err)
	}
	for _, q := range []int{0, 2} {
		if _, err := witness.ParseList([]string{good}, q); !errors.Is(err, custody.ErrInvalid) {
			t.Errorf("quorum %d of 1: %v", q, err)
		}
	}
	if ws, err := witness.ParseList(nil, 0); err != nil || len(ws) != 0 {
		t.Errorf("no witnesses: %v, %v", ws, err)
	}
}
