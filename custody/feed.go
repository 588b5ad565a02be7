package custody

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Calendar feeds: a user's feed tokens, which read a site's calendar
// (its upcoming apheresis days, manufacturing starts and infusion
// windows) and nothing else. Calendar applications cannot send headers,
// so the token travels in the feed's URL; it names its user, and only its
// hash is stored, in the user's account. Issue and revocation are audit
// entries.

// FeedTokenPrefix starts every feed token so leaked ones are
// recognisable (and never mistaken for API tokens).
const FeedTokenPrefix = "coidcal_"

// The audit actions on feed tokens.
const (
	AuditFeedTokenIssue  AuditAction = "feed_token.issue"
	AuditFeedTokenRevoke AuditAction = "feed_token.revoke"
)

// MaxFeedTokens bounds how many feed tokens a user holds at once.
const MaxFeedTokens = 10

// FeedDays is how many days ahead a feed lists.
const FeedDays = 366

// FeedToken is one feed token as the account stores it.
type FeedToken struct {
	// ID names the token: the first 16 hex digits of its hash.
	ID string `json:"id"`
	// Hash is the hex SHA-256 of the token.
	Hash string `json:"hash"`
	// Created is when it was issued.
	Created time.Time `json:"created"`
}

// FeedTokenInfo describes a feed token without the token or its hash.
type FeedTokenInfo struct {
	ID      string    `json:"id"`
	User    string    `json:"user"`
	Created time.Time `json:"created"`
}

// NewFeedToken is an issued feed token: the token itself, shown once.
type NewFeedToken struct {
	FeedTokenInfo
	Token string `json:"token"`
}

// feedTokenUser splits a feed token into its user ID; ok is false when
// it is not shaped like one.
func feedTokenUser(token string) (string, bool) {
	rest, ok := strings.CutPrefix(token, FeedTokenPrefix)
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(rest, '_')
	if i <= 0 || len(rest)-i-1 != 64 || !isLowerHex(rest[i+1:]) {
		return "", false
	}
	return rest[:i], ValidateUserID(rest[:i]) == nil
}

func feedHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// CreateFeedToken issues a feed token for the actor: the token is in the
// answer only.
func (s *Service) CreateFeedToken(ctx context.Context, actor User) (NewFeedToken, error) {
	const op = "create feed token"
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return NewFeedToken{}, fmt.Errorf("%s: %w", op, err)
	}
	tok := FeedTokenPrefix + actor.ID + "_" + hex.EncodeToString(b[:])
	h := feedHash(tok)
	now := s.now().UTC()
	ft := FeedToken{ID: h[:16], Hash: h, Created: now}
	_, err := s.store.ChangeUser(ctx, actor.ID, func(u *User) error {
		if len(u.FeedTokens) >= MaxFeedTokens {
			return fmt.Errorf("a user holds at most %d feed tokens; revoke one first: %w", MaxFeedTokens, ErrConflict)
		}
		u.FeedTokens = append(u.FeedTokens, ft)
		return nil
	}, func(before, after User) AuditEntry {
		return AuditEntry{Time: now, Actor: actor.ID, Action: AuditFeedTokenIssue, Kind: KindUser, Code: actor.ID,
			Reason: "issued by the user", New: AuditValues(map[string]string{"feed token " + ft.ID: "active"})}
	})
	if err != nil {
		return NewFeedToken{}, fmt.Errorf("%s: %w", op, err)
	}
	s.log.Info("feed token issued", "user", actor.ID, "token", ft.ID)
	return NewFeedToken{FeedTokenInfo: FeedTokenInfo{ID: ft.ID, User: actor.ID, Created: now}, Token: tok}, nil
}

// FeedTokens lists a user's feed tokens: the actor's own, or any user's
// for an administrator.
func (s *Service) FeedTokens(ctx context.Context, actor User, id string) ([]FeedTokenInfo, error) {
	if err := mayManageTokens("list feed tokens", actor, id); err != nil {
		return nil, err
	}
	u, err := s.store.User(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("list feed tokens of %s: %w", id, err)
	}
	out := []FeedTokenInfo{}
	for _, t := range u.FeedTokens {
		out = append(out, FeedTokenInfo{ID: t.ID, User: id, Created: t.Created})
	}
	return out, nil
}

// RevokeFeedToken revokes one of a user's feed tokens at once: the
// actor's own, or any user's for an administrator, who must give a
// reason. ErrNotFound: the user has no such token.
func (s *Service) RevokeFeedToken(ctx context.Context, actor User, id, tokenID, reason string) error {
	const op = "revoke feed token"
	if err := mayManageTokens(op, actor, id); err != nil {
		return err
	}
	if err := checkReason(op, reason, actor.ID != id); err != nil {
		return err
	}
	if len(tokenID) != 16 || !isLowerHex(tokenID) {
		return fmt.Errorf("%s: a feed token ID is 16 hex digits: %w", op, ErrInvalid)
	}
	if reason == "" {
		reason = "revoked by the user"
	}
	now := s.now().UTC()
	_, err := s.store.ChangeUser(ctx, id, func(u *User) error {
		i := slices.IndexFunc(u.FeedTokens, func(t FeedToken) bool { return t.ID == tokenID })
		if i < 0 {
			return fmt.Errorf("user %s has no feed token %s: %w", id, tokenID, ErrNotFound)
		}
		u.FeedTokens = slices.Delete(u.FeedTokens, i, i+1)
		return nil
	}, func(before, after User) AuditEntry {
		return AuditEntry{Time: now, Actor: actor.ID, Action: AuditFeedTokenRevoke, Kind: KindUser, Code: id, Reason: reason,
			Old: AuditValues(map[string]string{"feed token " + tokenID: "active"}),
			New: AuditValues(map[string]string{"feed token " + tokenID: "revoked"})}
	})
	if err != nil {
		return fmt.Errorf("%s %s of %s: %w", op, tokenID, id, err)
	}
	s.log.Info("feed token revoked", "user", id, "token", tokenID, "by", actor.ID)
	return nil
}

// FeedUser returns the user a feed token belongs to; ErrUnauthenticated
// for a token that is unknown, revoked, or whose user is disabled, and
// ErrPasswordChange while the user must change the password (the account
// may do nothing else meanwhile).
func (s *Service) FeedUser(ctx context.Context, token string) (User, error) {
	bad := fmt.Errorf("feed token unknown or revoked: %w", ErrUnauthenticated)
	id, ok := feedTokenUser(token)
	if !ok {
		return User{}, bad
	}
	u, err := s.store.User(ctx, id)
	if err != nil {
		return User{}, bad
	}
	h := feedHash(token)
	for _, t := range u.FeedTokens {
		if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(h)) == 1 {
			if u.Disabled {
				return User{}, bad
			}
			if err := s.PasswordChangeDue(u); err != nil {
				return User{}, fmt.Errorf("feed: %w", err)
			}
			return u.Public(), nil
		}
	}
	return User{}, bad
}

// FeedEvent is one event of a site's calendar: a day milestone of a
// chain. It carries the COI and product only, never patient identifiers.
type FeedEvent struct {
	// UID is stable across feeds: the chain and the milestone.
	UID     string
	COI     COI
	Product string
	// Kind is "apheresis", "manufacturing-start" or "infusion-window".
	Kind string
	// From and To are the first and last day (YYYY-MM-DD, the site's
	// calendar), both included.
	From, To string
	// Stamp is when the booking was recorded.
	Stamp time.Time
}

// SiteFeed lists the site's upcoming calendar events, in day order: the
// apheresis days, manufacturing starts and infusion windows at the site
// of the chains booked, from the site's today on for FeedDays days. Only
// chains actor may read are listed; a site whose bookings actor may not
// see answers ErrNotFound (a feed does not tell which sites exist).
func (s *Service) SiteFeed(ctx context.Context, actor User, site string) ([]FeedEvent, error) {
	op := "calendar of " + site
	if !MaySeeSiteBookings(actor, site) {
		return nil, fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	reg, err := readEntry[Site](ctx, s, KindSite, site)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	today := siteToday(reg, s.now())
	t0, _ := time.Parse(DateLayout, today)
	last := t0.AddDate(0, 0, FeedDays-1).Format(DateLayout)
	chains, err := s.VisibleChains(ctx, actor, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	out := []FeedEvent{}
	res := s.scope()
	for _, ci := range chains {
		if ci.State.Terminal() {
			continue // infused or cancelled: nothing ahead
		}
		if ci.Sites != (Sites{}) {
			here := false
			for _, name := range []string{ci.Sites.Collection, ci.Sites.Manufacturing, ci.Sites.Treatment} {
				st, ok, err := res.site(ctx, name)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", op, err)
				}
				here = here || ok && st.Code == site
			}
			if !here {
				continue // a plan's milestones are at the chain's registered sites
			}
		}
		c, err := s.Chain(ctx, ci.COI)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		b := BookingOf(c)
		if b.Current == nil {
			continue
		}
		var stamp time.Time
		for i := range c.Records {
			if c.Records[i].Seq == b.Seq {
				stamp = c.Records[i].Time.UTC()
			}
		}
		p := b.Current.Plan
		add := func(kind string, from, to Milestone) {
			if from.Site != site || to.Date < today || from.Date > last {
				return
			}
			out = append(out, FeedEvent{UID: string(c.COI) + "-" + kind, COI: c.COI, Product: b.Current.Product,
				Kind: kind, From: from.Date, To: to.Date, Stamp: stamp})
		}
		add("apheresis", p.Apheresis, p.Apheresis)
		add("manufacturing-start", p.ManufacturingStart, p.ManufacturingStart)
		add("infusion-window", p.InfusionFrom, p.InfusionTo)
	}
	slices.SortStableFunc(out, func(a, b FeedEvent) int {
		if c := strings.Compare(a.From, b.From); c != 0 {
			return c
		}
		return strings.Compare(a.UID, b.UID)
	})
	return out, nil
}
