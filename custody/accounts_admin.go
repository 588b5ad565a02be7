package custody

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
)

// The administration screens' view of the accounts: a filtered, paged
// list and one account, for those who may view the administration (QA
// reads, administrators change), and an account created with a temporary
// password the person must change at the first sign-in.

// MaxUserPage bounds one page of UserAccounts.
const MaxUserPage = 200

// UserFilter selects accounts for UserAccounts. Empty fields select all.
type UserFilter struct {
	// Organisation keeps the accounts bound to this organisation code.
	Organisation string
	// Site keeps the accounts bound to this site code.
	Site string
	// Role keeps the accounts of this role.
	Role Role
	// Text keeps the accounts whose ID or name contains it, ignoring case.
	Text string
	// After keeps the accounts whose ID sorts after it (a page's last).
	After string
	// Limit is the page size: 1-MaxUserPage; 0 is MaxUserPage.
	Limit int
}

// matches reports whether u is one f selects (After and Limit aside).
func (f UserFilter) matches(u User, text string) bool {
	switch {
	case f.Organisation != "" && u.Organisation != f.Organisation,
		f.Site != "" && !u.WorksAt(f.Site),
		f.Role != "" && u.Role != f.Role:
		return false
	}
	return text == "" || strings.Contains(strings.ToLower(u.ID), text) || strings.Contains(strings.ToLower(u.Name), text)
}

// UserAccounts lists the accounts f selects in ID order, without password
// material, one page at a time: more says whether another page follows
// (its After is the last ID returned). QA and administrators only
// (MayViewAdministration).
func (s *Service) UserAccounts(ctx context.Context, actor User, f UserFilter) (page []User, more bool, err error) {
	if !MayViewAdministration(actor.Role) {
		return nil, false, fmt.Errorf("list users: only QA and administrators view the accounts (you are %s): %w", actor.Role, ErrForbidden)
	}
	if f.Limit < 0 || f.Limit > MaxUserPage {
		return nil, false, fmt.Errorf("list users: limit %d must be 1-%d: %w", f.Limit, MaxUserPage, ErrInvalid)
	}
	if f.Role != "" && !ValidUserRole(f.Role) {
		return nil, false, fmt.Errorf("list users: role %q is not one of %v: %w", f.Role, UserRoles, ErrInvalid)
	}
	if len(f.Text) > 200 {
		return nil, false, fmt.Errorf("list users: the search text is at most 200 characters: %w", ErrInvalid)
	}
	if f.Limit == 0 {
		f.Limit = MaxUserPage
	}
	// The store's pages in ID order, until this page is full and one more
	// match shows there is a next: unfiltered, a page reads about its
	// own accounts; a filter reads on until enough match.
	text := strings.ToLower(strings.TrimSpace(f.Text))
	for after := f.After; ; {
		chunk, err := s.store.UsersAfter(ctx, after, f.Limit+1)
		if err != nil {
			return nil, false, fmt.Errorf("list users: %w", err)
		}
		for _, u := range chunk {
			if !f.matches(u, text) {
				continue
			}
			if len(page) == f.Limit {
				return page, true, nil
			}
			page = append(page, u.Public())
		}
		if len(chunk) < f.Limit+1 {
			return page, false, nil
		}
		after = chunk[len(chunk)-1].ID
	}
}

// UserAccount returns one account without password material, for QA and
// administrators (MayViewAdministration). ErrNotFound: no such user.
func (s *Service) UserAccount(ctx context.Context, actor User, id string) (User, error) {
	if !MayViewAdministration(actor.Role) {
		return User{}, fmt.Errorf("user %s: only QA and administrators view the accounts (you are %s): %w", id, actor.Role, ErrForbidden)
	}
	if err := ValidateUserID(id); err != nil {
		return User{}, err
	}
	u, err := s.store.User(ctx, id)
	if err != nil {
		return User{}, fmt.Errorf("user %s: %w", id, err)
	}
	return u.Public(), nil
}

// NewAccount is an account an administrator creates: the person, their
// role, and the organisation and sites they are bound to
// (checkUserNetwork's rules; both empty: unbound).
type NewAccount struct {
	ID           string
	Name         string
	Role         Role
	Organisation string
	Sites        []string
}

// AdminCreateAccount creates the account a with the temporary password
// the person must change at the first sign-in (until then the account may
// do nothing else), for an administrator, who must give a reason. The
// account, its first API token and the audit entry are stored together;
// the token is returned, to be shown once.
func (s *Service) AdminCreateAccount(ctx context.Context, actor User, a NewAccount, temporary, reason string) (string, error) {
	const op = "add user"
	if err := requireAdmin(op, actor); err != nil {
		return "", err
	}
	if err := checkReason(op, reason, true); err != nil {
		return "", err
	}
	tok, err := s.addUserFor(ctx, a.ID, a.Name, a.Role, temporary, actor.ID, a.Organisation, a.Sites, true, reason)
	if err != nil {
		return "", err
	}
	s.log.Info("user added by administrator", "user", a.ID, "by", actor.ID, "change_required", true)
	return tok, nil
}

// NewTemporaryPassword returns a random password (26 base32 characters,
// 130 bits: crypto/rand.Text) for an administrator to hand to a person,
// who must change it at the first sign-in.
func NewTemporaryPassword() string { return rand.Text() }

// NewAccountProblems checks each field of an account to create on its own,
// with CheckNewUser's rules, so that a form can say what is wrong beside
// each field: the problems by field, "id", "name", "role" and "password";
// empty when there is none. The binding and a taken ID are checked when
// the account is created.
func NewAccountProblems(a NewAccount, password string) map[string]error {
	out := map[string]error{}
	if err := ValidateUserID(a.ID); err != nil {
		out["id"] = err
	}
	if err := validText("name", a.Name, true, 200); err != nil {
		out["name"] = err
	}
	if !ValidUserRole(a.Role) {
		out["role"] = fmt.Errorf("role %q is not one of %v: %w", a.Role, UserRoles, ErrInvalid)
	}
	if err := checkPasswordRule(password); err != nil {
		out["password"] = err
	}
	return out
}
