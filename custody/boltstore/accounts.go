package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/coid-project/coid/custody"
	bolt "go.etcd.io/bbolt"
)

// Account management's part of the file (custody.AccountStore): the API
// tokens' metadata; each change's audit entry goes into the one audit
// trail (audit.go). Tokens stay where they were (bucketTokens: hash ->
// user ID), so a token issued before this part existed keeps working and
// is listed without times.

var (
	bucketTokenInfo = []byte("token_info") // user ID 0x00 token hash -> tokenMeta JSON
)

// accountBuckets are created with the file's other buckets.
var accountBuckets = [][]byte{bucketTokenInfo}

// accountChecks returns the whole-file check (check.go) of each bucket
// of this part of the file, by name.
func accountChecks() map[string]bucketCheck {
	return map[string]bucketCheck{
		string(bucketTokenInfo): {name: func([]byte) string { return "" }, entry: func(tx *bolt.Tx, k, v []byte) error {
			var m tokenMeta
			i := bytes.IndexByte(k, 0)
			switch {
			case i < 0 || len(k)-i-1 != custody.HashSize:
				return errors.New("the key is not a user ID and a token hash")
			case json.Unmarshal(v, &m) != nil:
				return errors.New("a token's metadata does not decode")
			}
			return nil
		}},
	}
}

// tokenMeta is what the file keeps about a token beside its hash.
type tokenMeta struct {
	Created  time.Time `json:"created,omitzero"`
	LastUsed time.Time `json:"last_used,omitzero"`
}

func tokenInfoKey(id string, h []byte) []byte {
	return append(append([]byte(id), 0), h...)
}

// ChangeUser implements custody.AccountStore.
func (s *Store) ChangeUser(ctx context.Context, id string, fn func(*custody.User) error, audit func(before, after custody.User) custody.AuditEntry) (custody.User, error) {
	var u custody.User
	err := s.update(func(tx *bolt.Tx) error {
		before, err := getUser(tx, id)
		if err != nil {
			return err
		}
		u = before
		u.PasswordHistory = slices.Clone(before.PasswordHistory)
		if err := fn(&u); err != nil {
			return err
		}
		u.ID = id
		v, err := json.Marshal(u)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketUsers).Put([]byte(id), v); err != nil {
			return err
		}
		_, err = putAudit(tx, audit(before.Public(), u.Public()))
		return err
	})
	return u, err
}

// CreateUserAudited implements custody.AccountStore.
func (s *Store) CreateUserAudited(ctx context.Context, u custody.User, token custody.Hash, audit custody.AuditEntry) error {
	return s.createUser(u, token, &audit)
}

// AddTokenAt implements custody.AccountStore.
func (s *Store) AddTokenAt(ctx context.Context, id string, token custody.Hash, created time.Time, audit custody.AuditEntry) error {
	return s.update(func(tx *bolt.Tx) error {
		if _, err := getUser(tx, id); err != nil {
			return err
		}
		if err := putTokenMeta(tx, id, token[:], tokenMeta{Created: created.UTC()}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketTokens).Put(token[:], []byte(id)); err != nil {
			return err
		}
		_, err := putAudit(tx, audit)
		return err
	})
}

func putTokenMeta(tx *bolt.Tx, id string, h []byte, m tokenMeta) error {
	b := tx.Bucket(bucketTokenInfo)
	if b == nil {
		return fmt.Errorf("token metadata: the bucket is missing: %w", custody.ErrDamaged)
	}
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return b.Put(tokenInfoKey(id, h), v)
}

// tokenInfo reads the metadata of id's token h; a token without any has
// zero times.
func tokenInfo(tx *bolt.Tx, id string, h []byte) (custody.TokenInfo, error) {
	var hh custody.Hash
	copy(hh[:], h)
	info := custody.TokenInfo{ID: custody.TokenID(hh), User: id}
	b := tx.Bucket(bucketTokenInfo)
	if b == nil {
		return info, nil
	}
	if v := b.Get(tokenInfoKey(id, h)); v != nil {
		var m tokenMeta
		if err := json.Unmarshal(v, &m); err != nil {
			return info, fmt.Errorf("token %s of %s: metadata does not decode: %w", info.ID, id, custody.ErrDamaged)
		}
		info.Created, info.LastUsed = m.Created, m.LastUsed
	}
	return info, nil
}

// Token implements custody.AccountStore.
func (s *Store) Token(ctx context.Context, token custody.Hash) (custody.TokenInfo, error) {
	var info custody.TokenInfo
	err := s.view(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketTokens).Get(token[:])
		if id == nil {
			return fmt.Errorf("token: %w", custody.ErrNotFound)
		}
		var err error
		info, err = tokenInfo(tx, string(id), token[:])
		return err
	})
	return info, err
}

// userTokens lists id's tokens inside tx, oldest first (then by ID).
func userTokens(tx *bolt.Tx, id string) ([]custody.TokenInfo, map[string][]byte, error) {
	out := []custody.TokenInfo{}
	hashes := map[string][]byte{}
	err := tx.Bucket(bucketTokens).ForEach(func(k, v []byte) error {
		if string(v) != id {
			return nil
		}
		info, err := tokenInfo(tx, id, k)
		if err != nil {
			return err
		}
		out = append(out, info)
		hashes[info.ID] = bytes.Clone(k)
		return nil
	})
	slices.SortFunc(out, func(a, b custody.TokenInfo) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return bytes.Compare([]byte(a.ID), []byte(b.ID))
	})
	return out, hashes, err
}

// Tokens implements custody.AccountStore.
func (s *Store) Tokens(ctx context.Context, id string) ([]custody.TokenInfo, error) {
	var out []custody.TokenInfo
	err := s.view(func(tx *bolt.Tx) error {
		if _, err := getUser(tx, id); err != nil {
			return err
		}
		var err error
		out, _, err = userTokens(tx, id)
		return err
	})
	return out, err
}

// RevokeTokens implements custody.AccountStore.
func (s *Store) RevokeTokens(ctx context.Context, id string, tokenIDs []string, audit func(revoked []custody.TokenInfo) custody.AuditEntry) error {
	return s.update(func(tx *bolt.Tx) error {
		if _, err := getUser(tx, id); err != nil {
			return err
		}
		toks, hashes, err := userTokens(tx, id)
		if err != nil {
			return err
		}
		var revoked []custody.TokenInfo
		for _, tid := range tokenIDs {
			h, ok := hashes[tid]
			if !ok {
				return fmt.Errorf("user %s has no token %s: %w", id, tid, custody.ErrNotFound)
			}
			delete(hashes, tid) // named twice: revoked once
			if err := tx.Bucket(bucketTokens).Delete(h); err != nil {
				return err
			}
			if b := tx.Bucket(bucketTokenInfo); b != nil {
				if err := b.Delete(tokenInfoKey(id, h)); err != nil {
					return err
				}
			}
			for _, t := range toks {
				if t.ID == tid {
					revoked = append(revoked, t)
				}
			}
		}
		if len(revoked) == 0 {
			return nil
		}
		_, err = putAudit(tx, audit(revoked))
		return err
	})
}

// TouchToken implements custody.AccountStore.
func (s *Store) TouchToken(ctx context.Context, token custody.Hash, at time.Time) error {
	return s.update(func(tx *bolt.Tx) error {
		id := tx.Bucket(bucketTokens).Get(token[:])
		if id == nil {
			return fmt.Errorf("token: %w", custody.ErrNotFound)
		}
		info, err := tokenInfo(tx, string(id), token[:])
		if err != nil {
			return err
		}
		return putTokenMeta(tx, string(id), token[:], tokenMeta{Created: info.Created, LastUsed: at.UTC()})
	})
}
