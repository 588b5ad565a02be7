package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
)

var _ verifiable.WitnessedSource = (*Store)(nil)

// PutWitnessState implements custody.CosignatureStore.
func (s *Store) PutWitnessState(ctx context.Context, st custody.WitnessState) error {
	if st.Witness == "" {
		return fmt.Errorf("keep witness state: no witness name: %w", custody.ErrInvalid)
	}
	v, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO witness_states (witness, state) VALUES ($1, $2)
		ON CONFLICT (witness) DO UPDATE SET state = excluded.state`, st.Witness, v)
	if err != nil {
		return fmt.Errorf("keep witness state: %w", err)
	}
	return nil
}

// WitnessStates implements custody.CosignatureStore.
func (s *Store) WitnessStates(ctx context.Context) ([]custody.WitnessState, error) {
	rows, err := s.pool.Query(ctx, `SELECT witness, state FROM witness_states ORDER BY witness`)
	if err != nil {
		return nil, fmt.Errorf("witness states: %w", err)
	}
	defer rows.Close()
	out := []custody.WitnessState{}
	for rows.Next() {
		var name string
		var v []byte
		if err := rows.Scan(&name, &v); err != nil {
			return nil, fmt.Errorf("witness states: %w", err)
		}
		var st custody.WitnessState
		if err := json.Unmarshal(v, &st); err != nil || st.Witness != name {
			return nil, fmt.Errorf("the kept state of witness %q is damaged: %w", name, custody.ErrChainBroken)
		}
		out = append(out, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("witness states: %w", err)
	}
	return out, nil
}

// LatestWitnessed implements verifiable.WitnessedSource: the largest
// checkpoint size of min records or more that quorum of witnesses
// cosigned, the last checkpoint kept of that size, and those witnesses'
// cosignatures by name.
func (s *Store) LatestWitnessed(ctx context.Context, min int64, witnesses []string, quorum int) ([]byte, []custody.Cosignature, error) {
	if quorum < 1 || min < 0 {
		return nil, nil, fmt.Errorf("latest witnessed checkpoint of %d records or more, quorum %d: %w", min, quorum, custody.ErrInvalid)
	}
	if witnesses == nil {
		witnesses = []string{}
	}
	var size int64
	err := s.pool.QueryRow(ctx, `SELECT size FROM cosignatures WHERE size >= $1 AND witness = ANY($2)
		GROUP BY size HAVING count(*) >= $3 ORDER BY size DESC LIMIT 1`, min, witnesses, quorum).Scan(&size)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, fmt.Errorf("no checkpoint of %d records or more reached the witness quorum (%d): %w", min, quorum, custody.ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("latest witnessed checkpoint: %w", err)
	}
	var signed []byte
	err = s.pool.QueryRow(ctx, `SELECT signed FROM checkpoints WHERE size = $1 ORDER BY id DESC LIMIT 1`, size).Scan(&signed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, fmt.Errorf("no checkpoint of %d records or more reached the witness quorum (%d): %w", min, quorum, custody.ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("latest witnessed checkpoint: %w", err)
	}
	all, err := s.Cosignatures(ctx, size)
	if err != nil {
		return nil, nil, err
	}
	cos := make([]custody.Cosignature, 0, len(all))
	for _, c := range all {
		if slices.Contains(witnesses, c.Witness) {
			cos = append(cos, c)
		}
	}
	return signed, cos, nil
}
