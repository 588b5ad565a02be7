package custody

import (
	"context"
	"fmt"
	"strconv"
)

// requireAdmin refuses every actor but an administrator, and malformed
// user IDs in ids.
func requireAdmin(op string, actor User, ids ...string) error {
	if actor.Role != RoleAdmin {
		return fmt.Errorf("%s: only an administrator may manage users (you are %s): %w", op, actor.Role, ErrForbidden)
	}
	for _, id := range ids {
		if err := ValidateUserID(id); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	return nil
}

// AdminAddUser is AddUser for an authenticated administrator: it creates
// the user and returns its first API token, shown once.
func (s *Service) AdminAddUser(ctx context.Context, actor User, id, name string, role Role, password string) (string, error) {
	return s.AdminAddUserIn(ctx, actor, id, name, role, password, "", nil)
}

// AdminUsers lists user accounts, without password hashes, for an
// administrator.
func (s *Service) AdminUsers(ctx context.Context, actor User) ([]User, error) {
	if err := requireAdmin("list users", actor); err != nil {
		return nil, err
	}
	return s.store.Users(ctx)
}

// AdminUserPage is UserAccounts for administrators only, as the API's
// user list has always been: one page of the accounts in ID order, and
// whether there are more.
func (s *Service) AdminUserPage(ctx context.Context, actor User, f UserFilter) ([]User, bool, error) {
	if err := requireAdmin("list users", actor); err != nil {
		return nil, false, err
	}
	return s.UserAccounts(ctx, actor, f)
}

// AdminUser returns one account without password material, for
// administrators only; ErrNotFound: no such user.
func (s *Service) AdminUser(ctx context.Context, actor User, id string) (User, error) {
	if err := requireAdmin("view user", actor); err != nil {
		return User{}, err
	}
	return s.UserAccount(ctx, actor, id)
}

// AdminUnlock clears a user's failed-signature lock, and every caller's
// back-off for the user's ID, while the service runs. The unlock is
// logged with the administrator who made it.
func (s *Service) AdminUnlock(ctx context.Context, actor User, id string) error {
	return s.AdminUnlockFor(ctx, actor, id, "")
}

// AdminUnlockFor is AdminUnlock with the reason recorded in the audit
// entry (optional, for the routes that predate it).
func (s *Service) AdminUnlockFor(ctx context.Context, actor User, id, reason string) error {
	if err := requireAdmin("unlock user", actor, id); err != nil {
		return err
	}
	if err := checkReason("unlock user", reason, false); err != nil {
		return err
	}
	now := s.now().UTC()
	_, err := s.store.ChangeUser(ctx, id, func(u *User) error { u.Locked, u.FailedSignatures = false, 0; return nil },
		func(before, after User) AuditEntry {
			return AuditEntry{Time: now, Actor: actor.ID, Action: AuditUserUnlock, Kind: KindUser, Code: id, Reason: reason,
				Old: AuditValues(map[string]string{"locked": strconv.FormatBool(before.Locked), "failed_signatures": strconv.Itoa(before.FailedSignatures)}),
				New: AuditValues(map[string]string{"locked": "false", "failed_signatures": "0"})}
		})
	if err != nil {
		return fmt.Errorf("unlock %s: %w", id, err)
	}
	s.backoff.clearUser(id)
	s.log.Info("user unlocked by administrator", "user", id, "by", actor.ID)
	return nil
}

// AdminSetDisabled disables or re-enables a user: a disabled user can
// neither sign nor use the API. Accounts are never deleted, because
// signatures refer to them.
func (s *Service) AdminSetDisabled(ctx context.Context, actor User, id string, disabled bool) (User, error) {
	return s.AdminSetDisabledFor(ctx, actor, id, disabled, "")
}

// AdminNewToken issues another API token for a user; the token is shown
// once.
func (s *Service) AdminNewToken(ctx context.Context, actor User, id string) (string, error) {
	return s.AdminNewTokenFor(ctx, actor, id, "")
}

// AdminNewTokenFor is AdminNewToken with the reason recorded in the audit
// entry (optional, for the routes that predate it).
func (s *Service) AdminNewTokenFor(ctx context.Context, actor User, id, reason string) (string, error) {
	if err := requireAdmin("new token", actor, id); err != nil {
		return "", err
	}
	if err := checkReason("new token", reason, false); err != nil {
		return "", err
	}
	tok, th, err := NewToken()
	if err != nil {
		return "", err
	}
	now := s.now().UTC()
	e := AuditEntry{Time: now, Actor: actor.ID, Action: AuditTokenIssue, Kind: KindUser, Code: id, Reason: reason,
		New: AuditValues(map[string]string{"token " + TokenID(th): "active"})}
	if err := s.store.AddTokenAt(ctx, id, th, now, e); err != nil {
		return "", fmt.Errorf("new token for %s: %w", id, err)
	}
	s.log.Info("api token issued", "user", id, "by", actor.ID)
	return tok, nil
}

// AuthorizeQuarantine says whether actor may read the telemetry
// quarantine (rejected payloads as received): QA, who judge the cold
// chain, and administrators (MayViewQuarantine), in the API as on the QA
// console.
func AuthorizeQuarantine(actor User) error {
	if !MayViewQuarantine(actor.Role) {
		return fmt.Errorf("the telemetry quarantine is for QA and administrators (you are %s): %w", actor.Role, ErrForbidden)
	}
	return nil
}
