package custody

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Account management as a validated system needs it: self-service
// password change, an administrator's reset that forces a change at the
// next sign-in, password expiry and history, disable and enable, and the
// list and revocation of API tokens. Every change is an audit entry
// (audit.go) written in the same store transaction as the change.
//
// What a password change does to the user's other credentials: it ends
// them. A user changes a password because it may be known to someone
// else, so every API token of the user but the one the change was made
// with is revoked (a change made in the web UI keeps none), and the web
// UI ends the user's other sessions. An administrator's reset revokes
// nothing: until the user changes the password, every token and session
// of the account is held to the password change alone
// (ErrPasswordChange), and that change needs the temporary password.

// ErrPasswordChange means the user must change the password before doing
// anything else: an administrator reset it, or it expired. errors.Is(err,
// ErrForbidden) holds for it too.
var ErrPasswordChange = fmt.Errorf("password change required: %w", ErrForbidden)

// PasswordPolicy is the configured password rules, beyond the length
// every password must have (8-1024 characters).
type PasswordPolicy struct {
	// ExpiryDays is how many days a password is good for; 0: no expiry.
	ExpiryDays int
	// History is how many of the user's most recent passwords, the
	// current one included, a new one may not repeat; 0 or 1: only the
	// current one.
	History int
}

// MaxPasswordHistory bounds PasswordPolicy.History: every remembered hash
// costs one password derivation at each change.
const MaxPasswordHistory = 24

// MaxPasswordExpiryDays bounds PasswordPolicy.ExpiryDays.
const MaxPasswordExpiryDays = 3650

// Check reports whether the policy's numbers are in range.
func (p PasswordPolicy) Check() error {
	if p.ExpiryDays < 0 || p.ExpiryDays > MaxPasswordExpiryDays {
		return fmt.Errorf("password expiry must be 0 (none) to %d days: %w", MaxPasswordExpiryDays, ErrInvalid)
	}
	if p.History < 0 || p.History > MaxPasswordHistory {
		return fmt.Errorf("password history must be 0 to %d passwords: %w", MaxPasswordHistory, ErrInvalid)
	}
	return nil
}

// checkPasswordRule is the rule every password meets: 8-1024 characters.
func checkPasswordRule(password string) error {
	if len(password) < 8 || len(password) > 1024 {
		return fmt.Errorf("password must be 8-1024 characters: %w", ErrInvalid)
	}
	return nil
}

// TokenInfo describes one API token without the token or its hash.
type TokenInfo struct {
	// ID names the token: the first 16 hex digits of its hash.
	ID string `json:"id"`
	// User is the ID of the token's owner.
	User string `json:"user"`
	// Created is when the token was issued; zero for tokens issued
	// before coid recorded it.
	Created time.Time `json:"created,omitzero"`
	// LastUsed is when the token last authenticated a request, to within
	// TokenUseResolution; zero if never.
	LastUsed time.Time `json:"last_used,omitzero"`
}

// TokenUseResolution is how stale a token's LastUsed may be: the store is
// written at most once per token in this time, not on every request.
const TokenUseResolution = time.Minute

// TokenID returns the ID that names the token stored under hash h.
func TokenID(h Hash) string { return hex.EncodeToString(h[:8]) }

// AccountStore is what account management needs from a store beyond
// UserStore: changes written with their audit entry in one transaction,
// and the tokens' metadata.
type AccountStore interface {
	AuditLog
	// ChangeUser applies fn to the stored user and appends the entry
	// audit returns for the user before and after, atomically: both or
	// neither are stored. fn's error leaves everything unchanged.
	ChangeUser(ctx context.Context, id string, fn func(*User) error, audit func(before, after User) AuditEntry) (User, error)
	// CreateUserAudited is CreateUser with the audit entry of the
	// creation, stored together or not at all.
	CreateUserAudited(ctx context.Context, u User, token Hash, audit AuditEntry) error
	// AddTokenAt stores another API token hash for an existing user,
	// issued at created, with its audit entry.
	AddTokenAt(ctx context.Context, id string, token Hash, created time.Time, audit AuditEntry) error
	// Token returns the metadata of the token stored under hash token.
	Token(ctx context.Context, token Hash) (TokenInfo, error)
	// Tokens lists the user's tokens, oldest first (ErrNotFound: no such
	// user).
	Tokens(ctx context.Context, id string) ([]TokenInfo, error)
	// RevokeTokens deletes the user's tokens with the given IDs and, if
	// any was deleted, the entry audit returns for them, atomically.
	// ErrNotFound: the user has no token with one of the IDs (nothing is
	// deleted).
	RevokeTokens(ctx context.Context, id string, tokenIDs []string, audit func(revoked []TokenInfo) AuditEntry) error
	// TouchToken records that the token stored under hash token was used
	// at at.
	TouchToken(ctx context.Context, token Hash, at time.Time) error
}

// passwordChangedAt is when u's password was last set.
func passwordChangedAt(u User) time.Time {
	if !u.PasswordChanged.IsZero() {
		return u.PasswordChanged
	}
	return u.Created
}

// PasswordExpires returns when u's password expires under the service's
// policy; zero when passwords do not expire.
func (s *Service) PasswordExpires(u User) time.Time {
	if s.passwords.ExpiryDays <= 0 {
		return time.Time{}
	}
	return passwordChangedAt(u).Add(time.Duration(s.passwords.ExpiryDays) * 24 * time.Hour).UTC()
}

// PasswordChangeDue returns an error wrapping ErrPasswordChange when u
// must change the password before anything else: an administrator reset
// it, or it expired. Nil otherwise.
func (s *Service) PasswordChangeDue(u User) error {
	if u.MustChangePassword {
		return fmt.Errorf("user %s: an administrator reset the password; change it before anything else: %w", u.ID, ErrPasswordChange)
	}
	if exp := s.PasswordExpires(u); !exp.IsZero() && !s.now().Before(exp) {
		return fmt.Errorf("user %s: the password expired on %s (passwords are good for %d days); change it before anything else: %w",
			u.ID, FormatTime(exp), s.passwords.ExpiryDays, ErrPasswordChange)
	}
	return nil
}

// PasswordChange is a user's request to change their own password.
type PasswordChange struct {
	// Current is the password now in force (the temporary one after a
	// reset).
	Current string `json:"current_password"`
	// New is the password wanted.
	New string `json:"new_password"`
}

// PasswordChanged is the outcome of a password change.
type PasswordChanged struct {
	// User is the account after the change, without its hashes.
	User User `json:"user"`
	// RevokedTokens names the API tokens the change revoked.
	RevokedTokens []string `json:"revoked_tokens"`
	// Expires is when the new password expires; zero: never.
	Expires time.Time `json:"expires,omitzero"`
}

// ChangePassword changes the actor's own password. The current password
// is checked as a signature of the actor's own is (wrong ones count
// towards the lock); the new one must meet the password rule and differ
// from the current and the remembered ones (PasswordPolicy.History). Every
// other API token of the actor is revoked; keep names the token the
// request came with (zero: none, a web session), which stays. Web
// sessions are the web UI's to end (User.PasswordChanged tells it).
func (s *Service) ChangePassword(ctx context.Context, actor User, req PasswordChange, keep Hash) (PasswordChanged, error) {
	const op = "change password"
	if req.Current == "" || req.New == "" {
		return PasswordChanged{}, fmt.Errorf("%s: the current and the new password are required: %w", op, ErrInvalid)
	}
	if err := checkPasswordRule(req.New); err != nil {
		return PasswordChanged{}, fmt.Errorf("%s: new %w", op, err)
	}
	u, err := s.checkPassword(ctx, Caller{User: actor.ID}, actor.ID, req.Current)
	if err != nil {
		return PasswordChanged{}, fmt.Errorf("%s: current password: %w", op, err)
	}
	if err := s.checkReuse(u, req.New); err != nil {
		return PasswordChanged{}, fmt.Errorf("%s: %w", op, err)
	}
	enc, err := s.hasher.Hash(req.New)
	if err != nil {
		return PasswordChanged{}, fmt.Errorf("%s: %w", op, err)
	}
	now := s.now().UTC()
	changed, err := s.store.ChangeUser(ctx, actor.ID, func(x *User) error {
		if x.PasswordHash != u.PasswordHash {
			return fmt.Errorf("the password changed meanwhile; try again: %w", ErrRetry)
		}
		s.setPassword(x, enc, now)
		x.MustChangePassword = false
		return nil
	}, func(before, after User) AuditEntry {
		return AuditEntry{Time: now, Actor: actor.ID, Action: AuditPasswordChange, Kind: KindUser, Code: actor.ID,
			Reason: "changed by the user", Old: AuditValues(map[string]string{"change_required": strconv.FormatBool(before.MustChangePassword),
				"credential_set": FormatTime(passwordChangedAt(before))}),
			New: AuditValues(map[string]string{"change_required": "false", "credential_set": FormatTime(now)})}
	})
	if err != nil {
		return PasswordChanged{}, fmt.Errorf("%s: %w", op, err)
	}
	out := PasswordChanged{User: changed.Public(), RevokedTokens: []string{}, Expires: s.PasswordExpires(changed)}
	toks, err := s.store.Tokens(ctx, actor.ID)
	if err != nil {
		return out, fmt.Errorf("%s: the password was changed, but the other tokens could not be listed: %w", op, err)
	}
	var ids []string
	for _, t := range toks {
		if t.ID != TokenID(keep) || keep == (Hash{}) {
			ids = append(ids, t.ID)
		}
	}
	if len(ids) > 0 {
		err := s.store.RevokeTokens(ctx, actor.ID, ids, func(revoked []TokenInfo) AuditEntry {
			return s.revokeEntry(now, actor.ID, actor.ID, "password changed: the user's other tokens end", revoked)
		})
		if err != nil {
			return out, fmt.Errorf("%s: the password was changed, but the other tokens could not be revoked: %w", op, err)
		}
		out.RevokedTokens = ids
	}
	s.log.Info("password changed", "user", actor.ID, "tokens_revoked", len(ids))
	return out, nil
}

// setPassword makes enc x's password at now, remembering the old hash
// as the policy asks.
func (s *Service) setPassword(x *User, enc string, now time.Time) {
	if keep := s.passwords.History - 1; keep > 0 && x.PasswordHash != "" {
		x.PasswordHistory = append([]string{x.PasswordHash}, x.PasswordHistory...)
		x.PasswordHistory = x.PasswordHistory[:min(len(x.PasswordHistory), keep)]
	} else {
		x.PasswordHistory = nil
	}
	x.PasswordHash, x.PasswordChanged = enc, now
}

// checkReuse refuses a new password equal to u's current one or to one
// of the remembered ones the policy still counts.
func (s *Service) checkReuse(u User, password string) error {
	hashes := []string{u.PasswordHash}
	if keep := s.passwords.History - 1; keep > 0 {
		hashes = append(hashes, u.PasswordHistory[:min(len(u.PasswordHistory), keep)]...)
	}
	for i, h := range hashes {
		ok, err := s.hasher.Verify(h, password)
		if err != nil {
			return err
		}
		if ok && i == 0 {
			return fmt.Errorf("the new password must differ from the current one: %w", ErrInvalid)
		}
		if ok {
			return fmt.Errorf("the new password was used before; it may not be one of the last %d: %w", s.passwords.History, ErrInvalid)
		}
	}
	return nil
}

// checkReason checks the reason an administrator gives for a change.
func checkReason(op, reason string, required bool) error {
	if err := validText("reason", reason, required, MaxReasonLen); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// AdminResetPassword sets a temporary password for a user, which the
// user must change at the next sign-in; until then the account can do
// nothing else (PasswordChangeDue). A reason is required. The lock and
// failed signatures are cleared with it: the reset is how a user who
// forgot the password gets back in.
func (s *Service) AdminResetPassword(ctx context.Context, actor User, id, temporary, reason string) (User, error) {
	const op = "reset password"
	if err := requireAdmin(op, actor, id); err != nil {
		return User{}, err
	}
	if err := checkReason(op, reason, true); err != nil {
		return User{}, err
	}
	if err := checkPasswordRule(temporary); err != nil {
		return User{}, fmt.Errorf("%s: temporary %w", op, err)
	}
	enc, err := s.hasher.Hash(temporary)
	if err != nil {
		return User{}, fmt.Errorf("%s: %w", op, err)
	}
	now := s.now().UTC()
	u, err := s.store.ChangeUser(ctx, id, func(x *User) error {
		s.setPassword(x, enc, now)
		x.MustChangePassword, x.Locked, x.FailedSignatures = true, false, 0
		return nil
	}, func(before, after User) AuditEntry {
		return AuditEntry{Time: now, Actor: actor.ID, Action: AuditPasswordReset, Kind: KindUser, Code: id, Reason: reason,
			Old: AuditValues(map[string]string{"change_required": strconv.FormatBool(before.MustChangePassword), "locked": strconv.FormatBool(before.Locked)}),
			New: AuditValues(map[string]string{"change_required": "true", "locked": "false"})}
	})
	if err != nil {
		return User{}, fmt.Errorf("%s %s: %w", op, id, err)
	}
	s.backoff.clearUser(id)
	s.log.Info("password reset by administrator", "user", id, "by", actor.ID)
	return u.Public(), nil
}

// AdminSetDisabledFor is AdminSetDisabled with the reason recorded in the
// audit entry (optional here, for the routes that predate it).
func (s *Service) AdminSetDisabledFor(ctx context.Context, actor User, id string, disabled bool, reason string) (User, error) {
	op := "enable user"
	action := AuditUserEnable
	if disabled {
		op, action = "disable user", AuditUserDisable
	}
	if err := requireAdmin(op, actor, id); err != nil {
		return User{}, err
	}
	if err := checkReason(op, reason, false); err != nil {
		return User{}, err
	}
	if id == actor.ID && disabled {
		return User{}, fmt.Errorf("disable user: administrators may not disable themselves: %w", ErrConflict)
	}
	now := s.now().UTC()
	u, err := s.store.ChangeUser(ctx, id, func(u *User) error { u.Disabled = disabled; return nil },
		func(before, after User) AuditEntry {
			return AuditEntry{Time: now, Actor: actor.ID, Action: action, Kind: KindUser, Code: id, Reason: reason,
				Old: AuditValues(map[string]string{"disabled": strconv.FormatBool(before.Disabled)}), New: AuditValues(map[string]string{"disabled": strconv.FormatBool(disabled)})}
		})
	if err != nil {
		return User{}, fmt.Errorf("%s %s: %w", op, id, err)
	}
	s.log.Info("user disabled changed", "user", id, "disabled", disabled, "by", actor.ID)
	return u.Public(), nil
}

// mayManageTokens says whether actor may list or revoke id's tokens: their
// own, or anyone's for an administrator.
func mayManageTokens(op string, actor User, id string) error {
	if actor.ID == id {
		return ValidateUserID(id)
	}
	return requireAdmin(op, actor, id)
}

// Tokens lists a user's API tokens (IDs and times, never the tokens):
// the actor's own, or any user's for an administrator.
func (s *Service) Tokens(ctx context.Context, actor User, id string) ([]TokenInfo, error) {
	if err := mayManageTokens("list tokens", actor, id); err != nil {
		return nil, err
	}
	toks, err := s.store.Tokens(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("list tokens of %s: %w", id, err)
	}
	return toks, nil
}

// RevokeToken revokes one of a user's API tokens by its ID, at once: the
// actor's own, or any user's for an administrator, who must give a
// reason. ErrNotFound: the user has no such token.
func (s *Service) RevokeToken(ctx context.Context, actor User, id, tokenID, reason string) error {
	const op = "revoke token"
	if err := mayManageTokens(op, actor, id); err != nil {
		return err
	}
	if err := checkReason(op, reason, actor.ID != id); err != nil {
		return err
	}
	if len(tokenID) != 16 || !isLowerHex(tokenID) {
		return fmt.Errorf("%s: a token ID is 16 hex digits (coid user tokens lists them): %w", op, ErrInvalid)
	}
	if reason == "" {
		reason = "revoked by the user"
	}
	now := s.now().UTC()
	err := s.store.RevokeTokens(ctx, id, []string{tokenID}, func(revoked []TokenInfo) AuditEntry {
		return s.revokeEntry(now, actor.ID, id, reason, revoked)
	})
	if err != nil {
		return fmt.Errorf("%s %s of %s: %w", op, tokenID, id, err)
	}
	s.log.Info("api token revoked", "user", id, "token", tokenID, "by", actor.ID)
	return nil
}

func (s *Service) revokeEntry(now time.Time, actor, id, reason string, revoked []TokenInfo) AuditEntry {
	ids := make([]string, len(revoked))
	for i, t := range revoked {
		ids[i] = t.ID
	}
	slices.Sort(ids)
	old := map[string]string{}
	for _, t := range ids {
		old["token "+t] = "active"
	}
	nw := map[string]string{}
	for _, t := range ids {
		nw["token "+t] = "revoked"
	}
	return AuditEntry{Time: now, Actor: actor, Action: AuditTokenRevoke, Kind: KindUser, Code: id, Reason: reason, Old: AuditValues(old), New: AuditValues(nw)}
}

func isLowerHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// maxTouchedTokens bounds the service's memory of when it last recorded
// each token's use; when full it is emptied (the next use of each token
// is then written again).
const maxTouchedTokens = 10000

// touchToken records that the token stored under h was used now, at most
// once per TokenUseResolution (remembered in memory, so that a request
// costs no store read for it). A failure is logged, never refused: the
// token did authenticate.
func (s *Service) touchToken(ctx context.Context, h Hash) {
	now := s.now().UTC()
	s.touchMu.Lock()
	last, ok := s.touched[h]
	fresh := ok && !now.Before(last) && now.Sub(last) < TokenUseResolution
	if !fresh {
		if s.touched == nil || len(s.touched) >= maxTouchedTokens {
			s.touched = map[Hash]time.Time{}
		}
		s.touched[h] = now
	}
	s.touchMu.Unlock()
	if fresh {
		return
	}
	if err := s.store.TouchToken(ctx, h, now); err != nil && !errors.Is(err, ErrNotFound) {
		s.log.Warn("token use not recorded", "token", TokenID(h), "err", err)
	}
}
