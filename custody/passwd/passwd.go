// Package passwd hashes and verifies passwords with argon2id (RFC 9106),
// encoded as PHC strings ($argon2id$v=19$m=...,t=...,p=...$salt$hash) so the
// parameters can be raised later without breaking stored hashes. It is the
// only package that imports golang.org/x/crypto/argon2.
package passwd

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/coid-project/coid/custody"
	"golang.org/x/crypto/argon2"
)

// Argon2id is a custody.PasswordHasher. The zero value is not usable; use
// Default or Fast.
type Argon2id struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
}

var _ custody.PasswordHasher = Argon2id{}

// Default returns the production parameters: 64 MiB, 1 pass, 2 lanes
// (RFC 9106's second recommended option scaled to a 2-core server).
func Default() Argon2id { return Argon2id{MemoryKiB: 64 * 1024, Time: 1, Threads: 2} }

// Fast returns cheap parameters for tests only. Hashes made with them still
// verify with any Argon2id value, since the parameters are in the hash.
func Fast() Argon2id { return Argon2id{MemoryKiB: 64, Time: 1, Threads: 1} }

const keyLen = 32

// Hash implements custody.PasswordHasher.
func (a Argon2id) Hash(password string) (string, error) {
	if a.MemoryKiB == 0 || a.Time == 0 || a.Threads == 0 {
		return "", fmt.Errorf("hash password: zero argon2id parameters: %w", custody.ErrInvalid)
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, a.Time, a.MemoryKiB, a.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, a.MemoryKiB, a.Time, a.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// Verify implements custody.PasswordHasher, using the parameters stored in
// encoded. It compares in constant time.
func (a Argon2id) Verify(encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, fmt.Errorf("verify password: not an argon2id hash: %w", custody.ErrInvalid)
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, fmt.Errorf("verify password: unsupported argon2 version: %w", custody.ErrInvalid)
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || t == 0 || p == 0 || m > 4<<20 || t > 64 {
		return false, fmt.Errorf("verify password: bad argon2id parameters: %w", custody.ErrInvalid)
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	key, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(key) == 0 {
		return false, fmt.Errorf("verify password: malformed hash: %w", custody.ErrInvalid)
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// Limited runs at most a fixed number of a hasher's derivations at
// once. An argon2id derivation takes MemoryKiB of memory and a core for
// tens of milliseconds, and sign-ins and MQTT connects reach it before
// anyone is authenticated: unbounded, a burst of attempts could exhaust
// the machine's memory. Beyond the limit, callers wait their turn.
type Limited struct {
	h   custody.PasswordHasher
	sem chan struct{}
}

// NewLimited returns h with at most n derivations at once (at least 1).
func NewLimited(h custody.PasswordHasher, n int) *Limited {
	return &Limited{h: h, sem: make(chan struct{}, max(1, n))}
}

// Hash implements custody.PasswordHasher within the limit.
func (l *Limited) Hash(password string) (string, error) {
	l.sem <- struct{}{}
	defer func() { <-l.sem }()
	return l.h.Hash(password)
}

// Verify implements custody.PasswordHasher within the limit.
func (l *Limited) Verify(encoded, password string) (bool, error) {
	l.sem <- struct{}{}
	defer func() { <-l.sem }()
	return l.h.Verify(encoded, password)
}
