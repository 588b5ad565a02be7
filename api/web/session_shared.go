package web

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/coid-project/coid/custody"
)

// Sessions of instances sharing a store: with a shared state (PostgreSQL)
// each session is a shared entry, so that another instance behind the
// load balancer, or this one after a restart, knows the browser. The
// entry expires webIdleTimeout after the session's last request; each
// request reads it and writes it back. A bedside check in progress is
// the exception: its wristband code is a patient identifier and stays in
// the memory of the instance that scanned it (bedside), so a check moved
// to another instance, or across a restart, starts again. The table-wide
// bound (webMaxSessions) is the memory store's: shared entries are bounded
// by their expiry.
//
// Keys: "session/" and the hex SHA-256 of the cookie (sessionKey), with
// the user ID as subject.

// sharedSession is a session as stored: webSession without the bedside
// check.
type sharedSession struct {
	User     custody.User   `json:"user"`
	CSRF     string         `json:"csrf"`
	LastSeen time.Time      `json:"last_seen"`
	SignedIn time.Time      `json:"signed_in"`
	Mismatch *mismatchState `json:"mismatch,omitempty"`
	Flash    string         `json:"flash,omitempty"`
}

func sharedKey(k [32]byte) string { return "session/" + hex.EncodeToString(k[:]) }

// encode returns s as its shared entry.
func (st *sessionStore) encode(k [32]byte, s *webSession) (custody.SharedEntry, error) {
	b, err := json.Marshal(sharedSession{User: s.User, CSRF: s.CSRF, LastSeen: s.LastSeen, SignedIn: s.SignedIn, Mismatch: s.Mismatch, Flash: s.Flash})
	if err != nil {
		return custody.SharedEntry{}, err
	}
	return custody.SharedEntry{Key: sharedKey(k), Subject: s.User.ID, Value: b, Expires: s.LastSeen.Add(st.idle)}, nil
}

// decode returns the session of a shared entry, with this instance's
// bedside check of it.
func (st *sessionStore) decode(k [32]byte, e custody.SharedEntry) (*webSession, error) {
	var ss sharedSession
	if err := json.Unmarshal(e.Value, &ss); err != nil {
		return nil, fmt.Errorf("web session %s: %w", e.Key[:16], err)
	}
	s := &webSession{User: ss.User, CSRF: ss.CSRF, LastSeen: ss.LastSeen, SignedIn: ss.SignedIn, Mismatch: ss.Mismatch, Flash: ss.Flash, key: k}
	st.mu.Lock()
	s.Bedside = st.bedside[k]
	st.mu.Unlock()
	return s, nil
}

// keepBedside remembers (or forgets) s's bedside check in this instance.
func (st *sessionStore) keepBedside(s *webSession) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if s.Bedside == nil {
		delete(st.bedside, s.key)
	} else {
		st.bedside[s.key] = s.Bedside
	}
}

func (st *sessionStore) sharedCreate(id string, sess *webSession) error {
	ctx, now := context.Background(), st.now()
	sess.key = sessionKey(id)
	mine, err := st.shared.SharedBySubject(ctx, "session/", sess.User.ID, now)
	if err != nil {
		return err
	}
	keys := []string{sharedKey(sess.key)}
	for _, e := range mine {
		keys = append(keys, e.Key)
	}
	e, err := st.encode(sess.key, sess)
	if err != nil {
		return err
	}
	return st.shared.UpdateShared(ctx, keys, now, func(cur []custody.SharedEntry) ([]custody.SharedEntry, error) {
		// The user's live sessions, least recently seen first: those
		// beyond webMaxSessionsPerUser-1 end.
		type seen struct {
			key string
			at  time.Time
		}
		var live []seen
		for _, c := range cur[1:] {
			var ss sharedSession
			if c.Value != nil && json.Unmarshal(c.Value, &ss) == nil {
				live = append(live, seen{c.Key, ss.LastSeen})
			}
		}
		slices.SortFunc(live, func(a, b seen) int { return a.at.Compare(b.at) })
		out := []custody.SharedEntry{e}
		for len(live) >= webMaxSessionsPerUser {
			out = append(out, custody.SharedEntry{Key: live[0].key})
			live = live[1:]
		}
		return out, nil
	})
}

func (st *sessionStore) sharedGet(id string) (sess *webSession, expired bool) {
	k, now := sessionKey(id), st.now()
	err := st.shared.UpdateShared(context.Background(), []string{sharedKey(k)}, now, func(cur []custody.SharedEntry) ([]custody.SharedEntry, error) {
		sess, expired = nil, false
		if cur[0].Value == nil {
			return nil, nil
		}
		s, err := st.decode(k, cur[0])
		if err != nil {
			return nil, err
		}
		if now.Sub(s.LastSeen) > st.idle {
			expired = true
			return []custody.SharedEntry{{Key: cur[0].Key}}, nil
		}
		s.LastSeen = now
		e, err := st.encode(k, s)
		if err != nil {
			return nil, err
		}
		sess = s
		return []custody.SharedEntry{e}, nil
	})
	if err != nil {
		st.log.Error("web session: the shared session cannot be read; the browser is asked to sign in", "err", err)
		return nil, false
	}
	if sess == nil {
		st.forgetBedside(k)
	}
	return sess, expired
}

func (st *sessionStore) forgetBedside(k [32]byte) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.bedside, k)
}

// sharedUpdate runs f on the session as stored now (another request may
// have changed it) and on s, and stores the result.
func (st *sessionStore) sharedUpdate(s *webSession, f func(*webSession)) {
	f(s)
	st.keepBedside(s)
	err := st.shared.UpdateShared(context.Background(), []string{sharedKey(s.key)}, st.now(), func(cur []custody.SharedEntry) ([]custody.SharedEntry, error) {
		if cur[0].Value == nil {
			return nil, nil // ended meanwhile
		}
		stored, err := st.decode(s.key, cur[0])
		if err != nil {
			return nil, err
		}
		f(stored)
		e, err := st.encode(s.key, stored)
		if err != nil {
			return nil, err
		}
		return []custody.SharedEntry{e}, nil
	})
	if err != nil {
		st.log.Error("web session: a change of the session was not stored", "err", err)
	}
}

func (st *sessionStore) sharedDelete(keys ...[32]byte) {
	ss := make([]string, len(keys))
	for i, k := range keys {
		ss[i] = sharedKey(k)
		st.forgetBedside(k)
	}
	if err := st.shared.UpdateShared(context.Background(), ss, st.now(), func(cur []custody.SharedEntry) ([]custody.SharedEntry, error) {
		out := make([]custody.SharedEntry, len(cur))
		for i, c := range cur {
			out[i] = custody.SharedEntry{Key: c.Key}
		}
		return out, nil
	}); err != nil {
		st.log.Error("web session: sessions were not ended", "err", err)
	}
}

func (st *sessionStore) sharedDropUser(userID string) {
	es, err := st.shared.SharedBySubject(context.Background(), "session/", userID, st.now())
	if err != nil {
		st.log.Error("web session: the user's sessions cannot be listed to end them", "user", userID, "err", err)
		return
	}
	var keys [][32]byte
	for _, e := range es {
		var k [32]byte
		if b, err := hex.DecodeString(e.Key[len("session/"):]); err == nil && len(b) == 32 {
			copy(k[:], b)
			keys = append(keys, k)
		}
	}
	if len(keys) > 0 {
		st.sharedDelete(keys...)
	}
}
