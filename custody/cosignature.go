package custody

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Cosignature is an independent witness's cosignature of a checkpoint the
// ledger's Merkle tree signed (C2SP tlog-cosignature), verified against
// the witness's key before it is kept.
type Cosignature struct {
	// Size is the tree size (records) of the checkpoint cosigned.
	Size int64
	// Witness is the name of the witness's key, as the signature line
	// carries it.
	Witness string
	// Line is the signed-note signature line, "— NAME BASE64\n", as it is
	// appended to the checkpoint.
	Line string
	// Time is when the witness says it cosigned (the cosignature's
	// timestamp).
	Time time.Time
}

// CosignedCheckpoint is a checkpoint size with the witnesses that
// cosigned it, by name.
type CosignedCheckpoint struct {
	Size      int64
	Witnesses []string
}

// MaxCosignedPage is the most checkpoints CosignedCheckpoints returns at
// once.
const MaxCosignedPage = 500

// CosignatureStore keeps the witnesses' cosignatures of the signed
// checkpoints, so that they survive a restart and are served with the
// checkpoint.
type CosignatureStore interface {
	// AddCosignature keeps c; a second cosignature by the same witness
	// of the same size replaces the first. A Line that is not one
	// signature line by c.Witness (CheckSignatureLine) is ErrInvalid,
	// and nothing is kept.
	AddCosignature(ctx context.Context, c Cosignature) error
	// Cosignatures returns the cosignatures kept of the checkpoint of
	// size records, by witness name; none is an empty list.
	Cosignatures(ctx context.Context, size int64) ([]Cosignature, error)
	// CosignedCheckpoints returns up to limit (1 to MaxCosignedPage)
	// checkpoint sizes larger than after (0 or more) that some witness
	// cosigned, smallest first, each with its witnesses by name;
	// ErrInvalid for a limit or after out of range.
	CosignedCheckpoints(ctx context.Context, after int64, limit int) ([]CosignedCheckpoint, error)
	// PutWitnessState keeps what was last seen of a witness, replacing
	// what was kept of it; a state without a witness name is ErrInvalid.
	PutWitnessState(ctx context.Context, st WitnessState) error
	// WitnessStates returns the states kept, by witness name.
	WitnessStates(ctx context.Context) ([]WitnessState, error)
}

// WitnessState is what coid last saw of a witness it submits checkpoints
// to, kept so that a restart reports it as before.
type WitnessState struct {
	// Witness is the witness's name.
	Witness string `json:"witness"`
	// Cosigned is the largest checkpoint size it cosigned, 0 none.
	Cosigned int64 `json:"cosigned"`
	// Outcome and Error are those of its last submission (Outcome empty:
	// none yet), LastSize the checkpoint then submitted and LastAttempt
	// when.
	Outcome     string    `json:"outcome,omitempty"`
	Error       string    `json:"error,omitempty"`
	LastSize    int64     `json:"last_size,omitempty"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
}

// CheckSignatureLine checks that line is one signed-note signature line,
// "— NAME BASE64\n", by the key named name: what a store keeps of a
// cosignature. Anything else is ErrInvalid.
func CheckSignatureLine(name, line string) error {
	rest, ok := strings.CutPrefix(line, "— ")
	f := strings.Split(strings.TrimSuffix(rest, "\n"), " ")
	if !ok || name == "" || !strings.HasSuffix(rest, "\n") || strings.Count(rest, "\n") != 1 || len(f) != 2 || f[0] != name || f[1] == "" {
		return fmt.Errorf("cosignature by %q: not one signature line by that name: %w", name, ErrInvalid)
	}
	return nil
}
