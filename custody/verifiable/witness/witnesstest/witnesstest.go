// Package witnesstest is a C2SP tlog-witness for tests, written from
// outside code only: the log's signature and the consistency proof are
// checked with golang.org/x/mod/sumdb (note.Open, tlog.CheckTree), the
// checkpoint is read and cosigned by filippo.io/torchwood
// (ParseCheckpoint, CosignatureSigner). None of it is coid's code, so a
// test of coid's witness client against it checks coid against other
// implementations of the protocol. It is not a production witness (it
// keeps its state in memory).
package witnesstest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Witness is a tlog-witness of one log (http.Handler; its endpoint is
// Prefix + "/add-checkpoint"). It keeps, per log origin, the last tree it
// cosigned, and refuses a checkpoint that does not extend it.
type Witness struct {
	signer *torchwood.CosignatureSigner
	logKey note.Verifier

	mu     sync.Mutex
	known  map[string]tlog.Tree // origin -> last tree cosigned
	calls  int
	mode   string        // "": honest; "refuse", "hang", "bad-signature", "fail"
	failN  int           // with "fail": answer 503 this many times, then honestly
	stuck  chan struct{} // closed by Close, for "hang"
	bodies []string      // the requests' bodies
}

// Prefix is the path under which a Witness serves add-checkpoint.
const Prefix = "/w"

// Modes of a Witness's misbehaviour (Set).
const (
	// Honest answers as the protocol says.
	Honest = ""
	// Refuse answers every request 403.
	Refuse = "refuse"
	// Hang never answers (until the request or Close ends).
	Hang = "hang"
	// BadSignature cosigns with a signature that does not verify.
	BadSignature = "bad-signature"
	// Fail answers 503 the given number of times, then honestly.
	Fail = "fail"
)

// New returns a witness named name, its Ed25519 key made from seed, that
// knows one log: the one with verifier key logVerifierKey.
func New(name string, logVerifierKey string, seed byte) (*Witness, error) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	s, err := torchwood.NewCosignatureSigner(name, key)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(logVerifierKey)
	if err != nil {
		return nil, err
	}
	return &Witness{signer: s, logKey: v, known: map[string]tlog.Tree{}, stuck: make(chan struct{})}, nil
}

// Signer returns the witness's cosigner (its Verifier is torchwood's).
func (w *Witness) Signer() *torchwood.CosignatureSigner { return w.signer }

// Close ends the requests a Hang witness holds.
func (w *Witness) Close() { close(w.stuck) }

// Requests returns the bodies of the requests received, in order.
func (w *Witness) Requests() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.bodies...)
}

// VerifierKey returns the witness's cosignature/v1 verifier key.
func (w *Witness) VerifierKey() string { return w.signer.Verifier().String() }

// Set makes the witness misbehave (a mode above); failN is Fail's
// count.
func (w *Witness) Set(mode string, failN int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.mode, w.failN = mode, failN
}

// Calls returns how many requests it received.
func (w *Witness) Calls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls
}

// Tree returns the last tree it cosigned of the log origin.
func (w *Witness) Tree(origin string) tlog.Tree {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.known[origin]
}

// ServeHTTP implements the tlog-witness add-checkpoint endpoint.
func (w *Witness) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != Prefix+"/add-checkpoint" {
		http.NotFound(rw, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	w.calls++
	w.bodies = append(w.bodies, string(body))
	mode := w.mode
	if mode == "fail" && w.failN > 0 {
		w.failN--
	} else if mode == "fail" {
		mode = ""
	}
	w.mu.Unlock()
	switch mode {
	case "refuse":
		http.Error(rw, "not a log I know the key of", http.StatusForbidden)
		return
	case "hang":
		select {
		case <-r.Context().Done():
		case <-w.stuck:
		}
		return
	case "fail":
		http.Error(rw, "try later", http.StatusServiceUnavailable)
		return
	}
	status, answer := w.add(body)
	if status == http.StatusConflict {
		rw.Header().Set("Content-Type", "text/x.tlog.size")
	}
	if status == http.StatusOK && mode == "bad-signature" {
		// Flip a bit of the Ed25519 signature (after the key hash and
		// the timestamp).
		f := strings.Fields(answer)
		sig, _ := base64.StdEncoding.DecodeString(f[2])
		sig[len(sig)-1] ^= 1
		answer = f[0] + " " + f[1] + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
	}
	rw.WriteHeader(status)
	io.WriteString(rw, answer)
}

// add is the witness's add-checkpoint: it answers the status and body.
func (w *Witness) add(body []byte) (int, string) {
	head, signed, ok := bytes.Cut(body, []byte("\n\n"))
	if !ok {
		return http.StatusBadRequest, "no blank line\n"
	}
	lines := strings.Split(string(head), "\n")
	oldStr, ok := strings.CutPrefix(lines[0], "old ")
	old, err := strconv.ParseInt(oldStr, 10, 64)
	if !ok || err != nil || old < 0 {
		return http.StatusBadRequest, "bad old line\n"
	}
	var proof tlog.TreeProof
	for _, l := range lines[1:] {
		h, err := tlog.ParseHash(l)
		if err != nil {
			return http.StatusBadRequest, "bad proof line\n"
		}
		proof = append(proof, h)
	}
	if origin, _, _ := bytes.Cut(signed, []byte("\n")); string(origin) != w.logKey.Name() {
		return http.StatusNotFound, "unknown log\n"
	}
	n, err := note.Open(signed, note.VerifierList(w.logKey))
	if err != nil {
		return http.StatusForbidden, "the log's signature does not verify\n"
	}
	c, err := torchwood.ParseCheckpoint(n.Text)
	if err != nil {
		return http.StatusBadRequest, "bad checkpoint\n"
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	known := w.known[c.Origin]
	if old != known.N {
		return http.StatusConflict, fmt.Sprintf("%d\n", known.N)
	}
	if old > c.N {
		return http.StatusBadRequest, "old size beyond the checkpoint\n"
	}
	if old > 0 {
		if err := tlog.CheckTree(proof, c.N, c.Hash, old, known.Hash); err != nil {
			return http.StatusUnprocessableEntity, "the consistency proof does not verify\n"
		}
	}
	cosigned, err := note.Sign(&note.Note{Text: n.Text}, w.signer)
	if err != nil {
		return http.StatusInternalServerError, err.Error()
	}
	w.known[c.Origin] = tlog.Tree{N: c.N, Hash: c.Hash}
	return http.StatusOK, string(cosigned[bytes.LastIndex(cosigned, []byte("\n\n"))+2:])
}
