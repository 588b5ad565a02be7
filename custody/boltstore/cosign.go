package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/verifiable"
	bolt "go.etcd.io/bbolt"
)

// bucketCosignatures keeps the witnesses' cosignatures of the signed
// checkpoints: size (8 bytes BE) || witness name -> cosigned at (Unix
// seconds, 8 bytes BE) || signature line.
var bucketCosignatures = []byte("cosignatures")

// bucketWitnessStates keeps what was last seen of each witness: witness
// name -> custody.WitnessState (JSON).
var bucketWitnessStates = []byte("witness_states")

var _ custody.CosignatureStore = (*Store)(nil)

func cosignatureKey(size int64, witness string) []byte {
	return append(u64(uint64(size)), witness...)
}

// AddCosignature implements custody.CosignatureStore.
func (s *Store) AddCosignature(ctx context.Context, c custody.Cosignature) error {
	if s.readOnly {
		return fmt.Errorf("keep cosignature: store opened read-only: %w", custody.ErrClosed)
	}
	if c.Size < 0 || c.Witness == "" {
		return fmt.Errorf("keep cosignature: size %d, witness %q: %w", c.Size, c.Witness, custody.ErrInvalid)
	}
	if err := custody.CheckSignatureLine(c.Witness, c.Line); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		v := append(u64(uint64(c.Time.Unix())), c.Line...)
		return tx.Bucket(bucketCosignatures).Put(cosignatureKey(c.Size, c.Witness), v)
	})
}

func decodeCosignature(k, v []byte) (custody.Cosignature, error) {
	if len(k) <= 8 || len(v) <= 8 {
		return custody.Cosignature{}, fmt.Errorf("a kept cosignature is damaged: %w", custody.ErrChainBroken)
	}
	return custody.Cosignature{Size: int64(binary.BigEndian.Uint64(k)), Witness: string(k[8:]),
		Time: time.Unix(int64(binary.BigEndian.Uint64(v)), 0).UTC(), Line: string(v[8:])}, nil
}

// Cosignatures implements custody.CosignatureStore.
func (s *Store) Cosignatures(ctx context.Context, size int64) ([]custody.Cosignature, error) {
	out := []custody.Cosignature{}
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCosignatures)
		if b == nil {
			return nil // a file no writer of this version opened yet
		}
		prefix := u64(uint64(size))
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			cs, err := decodeCosignature(k, v)
			if err != nil {
				return err
			}
			out = append(out, cs)
		}
		return nil
	})
	return out, err
}

// CosignedCheckpoints implements custody.CosignatureStore.
func (s *Store) CosignedCheckpoints(ctx context.Context, after int64, limit int) ([]custody.CosignedCheckpoint, error) {
	if limit < 1 || limit > custody.MaxCosignedPage || after < 0 {
		return nil, fmt.Errorf("cosigned checkpoints after %d, %d of them: %w", after, limit, custody.ErrInvalid)
	}
	out := []custody.CosignedCheckpoint{}
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCosignatures)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, _ := c.Seek(u64(uint64(after) + 1)); k != nil; k, _ = c.Next() {
			if len(k) <= 8 {
				return fmt.Errorf("a kept cosignature is damaged: %w", custody.ErrChainBroken)
			}
			size := int64(binary.BigEndian.Uint64(k))
			if n := len(out); n == 0 || out[n-1].Size != size {
				if n == limit {
					return nil
				}
				out = append(out, custody.CosignedCheckpoint{Size: size})
			}
			out[len(out)-1].Witnesses = append(out[len(out)-1].Witnesses, string(k[8:]))
		}
		return nil
	})
	return out, err
}

var _ verifiable.WitnessedSource = (*Store)(nil)

// LatestWitnessed implements verifiable.WitnessedSource: it walks the
// cosignatures from the largest size down to min, and the checkpoints
// kept from the last one down to the size found.
func (s *Store) LatestWitnessed(ctx context.Context, min int64, witnesses []string, quorum int) ([]byte, []custody.Cosignature, error) {
	if quorum < 1 || min < 0 {
		return nil, nil, fmt.Errorf("latest witnessed checkpoint of %d records or more, quorum %d: %w", min, quorum, custody.ErrInvalid)
	}
	var signed []byte
	var cos []custody.Cosignature
	err := s.view(func(tx *bolt.Tx) error {
		b, cps := tx.Bucket(bucketCosignatures), tx.Bucket(bucketCheckpoints)
		if b == nil || cps == nil {
			return nil
		}
		c := b.Cursor()
		size := int64(-1)
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			cs, err := decodeCosignature(k, v)
			if err != nil {
				return err
			}
			if cs.Size < min {
				break
			}
			if cs.Size != size {
				size, cos = cs.Size, cos[:0]
			}
			if !slices.Contains(witnesses, cs.Witness) {
				continue
			}
			if cos = append(cos, cs); len(cos) < quorum {
				continue
			}
			// Quorum: the checkpoint of that size, the last kept.
			cc := cps.Cursor()
			for k, v := cc.Last(); k != nil; k, v = cc.Prev() {
				if len(v) <= 8 {
					return fmt.Errorf("a kept checkpoint is damaged: %w", custody.ErrChainBroken)
				}
				n := int64(binary.BigEndian.Uint64(v[:8]))
				if n == size {
					signed = append([]byte(nil), v[8:]...)
					break
				}
				if n < size {
					break
				}
			}
			if signed != nil {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if signed == nil {
		return nil, nil, fmt.Errorf("no checkpoint of %d records or more reached the witness quorum (%d): %w", min, quorum, custody.ErrNotFound)
	}
	slices.Reverse(cos) // by witness name
	return signed, cos, nil
}

// PutWitnessState implements custody.CosignatureStore.
func (s *Store) PutWitnessState(ctx context.Context, st custody.WitnessState) error {
	if s.readOnly {
		return fmt.Errorf("keep witness state: store opened read-only: %w", custody.ErrClosed)
	}
	if st.Witness == "" {
		return fmt.Errorf("keep witness state: no witness name: %w", custody.ErrInvalid)
	}
	v, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketWitnessStates).Put([]byte(st.Witness), v)
	})
}

// WitnessStates implements custody.CosignatureStore.
func (s *Store) WitnessStates(ctx context.Context) ([]custody.WitnessState, error) {
	out := []custody.WitnessState{}
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWitnessStates)
		if b == nil {
			return nil // a file no writer of this version opened yet
		}
		return b.ForEach(func(k, v []byte) error {
			var st custody.WitnessState
			if err := json.Unmarshal(v, &st); err != nil || st.Witness != string(k) {
				return fmt.Errorf("the kept state of witness %q is damaged: %w", k, custody.ErrChainBroken)
			}
			out = append(out, st)
			return nil
		})
	})
	return out, err
}
