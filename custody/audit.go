package custody

import (
	"context"
	"fmt"
	"time"
)

// Administrative audit entries: each change an administrator (or a user to
// their own account) makes to an account is kept with who, when, what,
// why and the old and new values (EU GMP Annex 11 section 9, 21 CFR Part
// 11 11.10(e)). Entries never hold patient identifiers, passwords, their
// hashes or API tokens: a token is named by its TokenID only.

// Audit actions on accounts.
const (
	AuditUserAdd        = "user.add"
	AuditUserDisable    = "user.disable"
	AuditUserEnable     = "user.enable"
	AuditUserUnlock     = "user.unlock"
	AuditPasswordReset  = "user.password_reset"
	AuditPasswordChange = "user.password_change"
	AuditTokenIssue     = "token.issue"
	AuditTokenRevoke    = "token.revoke"
)

// AuditEntry is one administrative change.
type AuditEntry struct {
	// Seq is the entry's position in the audit log, from 1, assigned by
	// the store.
	Seq uint64 `json:"seq"`
	// Time is when the change was made (the service clock, UTC).
	Time time.Time `json:"time"`
	// Actor is the ID of the user who made the change.
	Actor string `json:"actor"`
	// Action says what was done, one of the Audit* constants.
	Action string `json:"action"`
	// Object names what was changed, e.g. "user:nurse1".
	Object string `json:"object"`
	// Reason is why, as the actor gave it.
	Reason string `json:"reason,omitempty"`
	// Old and New are the changed values before and after, by name.
	Old map[string]string `json:"old,omitempty"`
	New map[string]string `json:"new,omitempty"`
}

// Validate checks an entry before it is stored: time, actor, action and
// object are required, and the texts are printable.
func (e AuditEntry) Validate() error {
	if e.Time.IsZero() {
		return fmt.Errorf("audit entry: time is required: %w", ErrInvalid)
	}
	for _, f := range []struct {
		n, v string
		max  int
	}{{"actor", e.Actor, 64}, {"action", e.Action, 64}, {"object", e.Object, 200}} {
		if err := validText("audit "+f.n, f.v, true, f.max); err != nil {
			return err
		}
	}
	return validText("audit reason", e.Reason, false, MaxReasonLen)
}

// MaxReasonLen bounds the reason given for an administrative change.
const MaxReasonLen = 500

// AuditFilter selects audit entries; zero fields select all.
type AuditFilter struct {
	// Object keeps entries of this object only ("user:nurse1").
	Object string
	// Limit keeps at most this many entries, the newest; <= 0: all.
	Limit int
}

// AuditLog keeps the administrative audit entries, append only.
type AuditLog interface {
	// AppendAudit stores e durably and returns it with its Seq.
	AppendAudit(ctx context.Context, e AuditEntry) (AuditEntry, error)
	// AuditEntries returns the entries f selects, oldest first.
	AuditEntries(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
}

// AuditUserObject is the audit object name of a user account.
func AuditUserObject(id string) string { return "user:" + id }
