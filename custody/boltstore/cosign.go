package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// bucketCosignatures keeps the witnesses' cosignatures of the signed
// checkpoints: size (8 bytes BE) || witness name -> cosigned at (Unix
// seconds, 8 bytes BE) || signature line.
var bucketCosignatures = []byte("cosignatures")

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
