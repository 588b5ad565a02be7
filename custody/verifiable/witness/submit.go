package witness

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
)

// Config configures a Submitter.
type Config struct {
	// Witnesses are the witnesses to submit to; Quorum how many of them
	// must cosign a checkpoint for it to count as witnessed.
	Witnesses []Witness
	Quorum    int
	// Log gives the checkpoints and consistency proofs; Store keeps the
	// cosignatures (the log's source).
	Log   *verifiable.Log
	Store custody.CosignatureStore
	// Client sends the requests; its Timeout bounds each one. Nil: a
	// client with DefaultTimeout.
	Client *http.Client
	// Now and After are the clock (time.Now and time.After outside
	// tests): After times the retries and the polling.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// Attempts is how many times one checkpoint is sent to a witness
	// that does not answer (DefaultAttempts when 0); Backoff the wait
	// after the first failure, doubled after each (DefaultBackoff when
	// 0).
	Attempts int
	Backoff  time.Duration
	// Poll is how often a witness whose last submission failed is tried
	// again while no new checkpoint comes (DefaultPoll when 0).
	Poll time.Duration
	// Logger hears of each refusal and failure.
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultTimeout  = 10 * time.Second
	DefaultAttempts = 5
	DefaultBackoff  = time.Second
	DefaultPoll     = time.Minute
)

// maxAnswer bounds what is read of a witness's answer.
const maxAnswer = 64 << 10

// Status is a witness's state as last seen.
type Status struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	// Size is the largest checkpoint it cosigned, 0 none. It and the
	// last submission's outcome are kept in the store (Restore).
	Size int64 `json:"cosigned_size"`
	// Outcome and Error are those of its last submission (Outcome
	// empty: none yet); Size of the checkpoint then submitted.
	Outcome     Outcome   `json:"outcome,omitempty"`
	Error       string    `json:"error,omitempty"`
	LastSize    int64     `json:"last_size,omitempty"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
}

// Submitter sends each new signed checkpoint to the witnesses, each in
// its own goroutine, and keeps the cosignatures that verify.
type Submitter struct {
	cfg Config
	ws  []*state
}

type state struct {
	w    Witness
	poke chan struct{}

	mu     sync.Mutex
	status Status
	known  int64 // the witness's tree size as it last said; 0 unknown
	failed int64 // the size whose submission last failed; 0 none
}

// New returns a Submitter for cfg; ErrInvalid for a bad quorum.
func New(cfg Config) (*Submitter, error) {
	if cfg.Quorum < 1 || cfg.Quorum > len(cfg.Witnesses) || cfg.Log == nil || cfg.Store == nil || cfg.Now == nil || cfg.After == nil {
		return nil, fmt.Errorf("witnesses: quorum %d of %d, and a log, a store and a clock: %w", cfg.Quorum, len(cfg.Witnesses), custody.ErrInvalid)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: DefaultTimeout}
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = DefaultAttempts
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultPoll
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Submitter{cfg: cfg}
	for _, w := range cfg.Witnesses {
		s.ws = append(s.ws, &state{w: w, poke: make(chan struct{}, 1), status: Status{Name: w.Name, URL: w.URL}})
	}
	return s, nil
}

// Restore takes up what the store kept of each configured witness
// (custody.CosignatureStore.WitnessStates): the largest checkpoint it
// cosigned and its last submission's outcome, so that a restart reports
// them as before. Call it before Run.
func (s *Submitter) Restore(ctx context.Context) error {
	kept, err := s.cfg.Store.WitnessStates(ctx)
	if err != nil {
		return fmt.Errorf("witnesses: their kept states: %w", err)
	}
	for _, k := range kept {
		for _, st := range s.ws {
			if st.w.Name != k.Witness {
				continue
			}
			st.mu.Lock()
			st.status.Size, st.status.Outcome, st.status.Error = k.Cosigned, Outcome(k.Outcome), k.Error
			st.status.LastSize, st.status.LastAttempt = k.LastSize, k.LastAttempt
			if k.Outcome != string(Cosigned) && k.Outcome != "" {
				st.failed = k.LastSize
			}
			st.mu.Unlock()
		}
	}
	return nil
}

// Quorum returns how many witnesses must cosign a checkpoint.
func (s *Submitter) Quorum() int { return s.cfg.Quorum }

// Notify tells the witnesses' goroutines a checkpoint was signed; it
// never blocks (verifiable.Log.OnSigned).
func (s *Submitter) Notify() {
	for _, st := range s.ws {
		select {
		case st.poke <- struct{}{}:
		default:
		}
	}
}

// Statuses returns each witness's state, in the configured order.
func (s *Submitter) Statuses() []Status {
	out := make([]Status, len(s.ws))
	for i, st := range s.ws {
		st.mu.Lock()
		out[i] = st.status
		st.mu.Unlock()
	}
	return out
}

// Run submits checkpoints until ctx ends: at the start, on each Notify
// and every Poll while a submission stands failed.
func (s *Submitter) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, st := range s.ws {
		wg.Go(func() { s.loop(ctx, st) })
	}
	wg.Wait()
}

func (s *Submitter) loop(ctx context.Context, st *state) {
	retryFailed := true
	for {
		s.once(ctx, st, retryFailed)
		select {
		case <-ctx.Done():
			return
		case <-st.poke:
			retryFailed = false
		case <-s.cfg.After(s.cfg.Poll):
			retryFailed = true
		}
	}
}

// once submits the latest checkpoint to st's witness unless it cosigned
// it already (or it failed and retryFailed is false), retrying a witness
// that does not answer up to Attempts times.
func (s *Submitter) once(ctx context.Context, st *state, retryFailed bool) {
	signed, cp, err := s.cfg.Log.Latest(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.cfg.Logger.Error("witness: reading the latest checkpoint failed", "err", err)
		}
		return
	}
	st.mu.Lock()
	skip := cp.Size == 0 || cp.Size <= st.status.Size || (!retryFailed && cp.Size <= st.failed)
	st.mu.Unlock()
	if skip {
		return
	}
	for attempt := 0; ; attempt++ {
		err := s.submitOnce(ctx, st, signed, cp)
		if err == nil || ctx.Err() != nil {
			return
		}
		if outcomeOf(err) != Unreachable || attempt+1 >= s.cfg.Attempts {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-s.cfg.After(s.cfg.Backoff << attempt):
		}
	}
}

// submitOnce submits the checkpoint, keeps the cosignature and records
// the outcome.
func (s *Submitter) submitOnce(ctx context.Context, st *state, signed []byte, cp verifiable.Checkpoint) error {
	st.mu.Lock()
	known := st.known
	st.mu.Unlock()
	cos, known, err := s.Submit(ctx, st.w, signed, cp, known)
	if err != nil && ctx.Err() != nil {
		return err // shutting down: nothing to report of the witness
	}
	if err == nil {
		if err = s.cfg.Store.AddCosignature(ctx, cos); err != nil {
			err = fmt.Errorf("keep the cosignature: %w", err)
		}
	}
	st.mu.Lock()
	st.known = known
	st.status.Outcome, st.status.LastSize, st.status.LastAttempt, st.status.Error = outcomeOf(err), cp.Size, s.cfg.Now().UTC(), ""
	if err != nil {
		st.failed = cp.Size
		st.status.Error = err.Error()
		s.cfg.Logger.Warn("witness did not cosign the checkpoint", "witness", st.w.Name, "size", cp.Size, "outcome", outcomeOf(err), "err", err)
	} else {
		st.status.Size = cp.Size
		s.cfg.Logger.Info("witness cosigned the checkpoint", "witness", st.w.Name, "size", cp.Size)
	}
	kept := custody.WitnessState{Witness: st.w.Name, Cosigned: st.status.Size, Outcome: string(st.status.Outcome),
		Error: st.status.Error, LastSize: st.status.LastSize, LastAttempt: st.status.LastAttempt}
	st.mu.Unlock()
	// Kept for a restart (Restore); a failure to keep it changes nothing
	// of the submission's outcome.
	if kerr := s.cfg.Store.PutWitnessState(ctx, kept); kerr != nil && ctx.Err() == nil {
		s.cfg.Logger.Error("witness: keeping its state failed", "witness", st.w.Name, "err", kerr)
	}
	return err
}

// Submit sends one signed checkpoint to w as C2SP tlog-witness says: a
// POST to add-checkpoint of "old SIZE", the consistency proof from SIZE
// (what the witness knows of the log, 0 nothing), a blank line and the
// signed note. A 409 answer names the witness's size, and the checkpoint
// is sent once more from there. It returns the witness's cosignature,
// verified against w's key, and the size the witness now knows.
func (s *Submitter) Submit(ctx context.Context, w Witness, signed []byte, cp verifiable.Checkpoint, known int64) (custody.Cosignature, int64, error) {
	for resent := false; ; resent = true {
		if known > cp.Size {
			return custody.Cosignature{}, known, fmt.Errorf("witness %s knows %d records, the checkpoint has %d: %w", w.Name, known, cp.Size, ErrSplitView)
		}
		var body bytes.Buffer
		body.WriteString("old " + strconv.FormatInt(known, 10) + "\n")
		if known > 0 && known < cp.Size {
			p, err := s.cfg.Log.Consistency(ctx, known, cp.Size)
			if err != nil {
				return custody.Cosignature{}, known, fmt.Errorf("consistency proof from %d to %d: %v: %w", known, cp.Size, err, ErrUnreachable)
			}
			for _, h := range p.Proof {
				body.WriteString(base64.StdEncoding.EncodeToString(h[:]) + "\n")
			}
		}
		body.WriteString("\n")
		body.Write(signed)
		status, answer, err := s.post(ctx, w.URL+"/add-checkpoint", body.Bytes())
		if err != nil {
			return custody.Cosignature{}, known, fmt.Errorf("witness %s: %v: %w", w.Name, err, ErrUnreachable)
		}
		switch status {
		case http.StatusOK:
			cos, err := verifiable.VerifyCosignature(w.key, cp, answer)
			if err != nil {
				return custody.Cosignature{}, known, fmt.Errorf("witness %s: %v: %w", w.Name, err, ErrBadCosignature)
			}
			return cos, cp.Size, nil
		case http.StatusConflict:
			n, err := parseSize(answer)
			if err != nil {
				return custody.Cosignature{}, known, err
			}
			if resent || n == known {
				// It holds another tree at the size it names.
				return custody.Cosignature{}, n, fmt.Errorf("witness %s knows %d records and conflicts with the checkpoint of %d: %w", w.Name, n, cp.Size, ErrSplitView)
			}
			known = n
		case http.StatusUnprocessableEntity:
			return custody.Cosignature{}, known, fmt.Errorf("witness %s refused the consistency proof from %d to %d: %w", w.Name, known, cp.Size, ErrSplitView)
		case http.StatusForbidden:
			return custody.Cosignature{}, known, fmt.Errorf("witness %s does not trust the log's key (403): %w", w.Name, ErrRefused)
		case http.StatusNotFound:
			return custody.Cosignature{}, known, fmt.Errorf("witness %s does not know the log %q (404): %w", w.Name, cp.Origin, ErrRefused)
		case http.StatusBadRequest:
			return custody.Cosignature{}, known, fmt.Errorf("witness %s refused the request (400): %w", w.Name, ErrRefused)
		default:
			return custody.Cosignature{}, known, fmt.Errorf("witness %s answered %d: %w", w.Name, status, ErrUnreachable)
		}
	}
}

func (s *Submitter) post(ctx context.Context, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, answer, nil
}

// Witnessed is a checkpoint size, the configured witnesses that cosigned
// it and whether they reach the quorum.
type Witnessed struct {
	Size      int64    `json:"size"`
	Witnesses []string `json:"witnesses"`
	Quorum    bool     `json:"quorum"`
}

// Witnessed returns a page of the cosigned checkpoints larger than after
// (see custody.CosignatureStore.CosignedCheckpoints), each marked
// with whether its cosigners among the configured witnesses reach the
// quorum.
func (s *Submitter) Witnessed(ctx context.Context, after int64, limit int) ([]Witnessed, error) {
	page, err := s.cfg.Store.CosignedCheckpoints(ctx, after, limit)
	if err != nil {
		return nil, err
	}
	return MarkQuorum(page, s.cfg.Witnesses, s.cfg.Quorum), nil
}

// MarkQuorum marks each cosigned checkpoint with whether quorum of ws
// cosigned it (a cosigner no longer configured does not count); with ws
// nil, every cosigner kept counts (its cosignature was verified before
// it was kept).
func MarkQuorum(page []custody.CosignedCheckpoint, ws []Witness, quorum int) []Witnessed {
	known := map[string]bool{}
	for _, w := range ws {
		known[w.Name] = true
	}
	out := make([]Witnessed, 0, len(page))
	for _, c := range page {
		n := 0
		for _, name := range c.Witnesses {
			if ws == nil || known[name] {
				n++
			}
		}
		out = append(out, Witnessed{Size: c.Size, Witnesses: c.Witnesses, Quorum: quorum > 0 && n >= quorum})
	}
	return out
}
