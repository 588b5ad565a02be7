package custody

import (
	"context"
	"fmt"
	"io"
)

// AuthorizeBackup says whether actor may copy the data file: only admin and
// QA, since it holds the patient identifiers and the user accounts.
func (s *Service) AuthorizeBackup(actor User) error {
	if actor.Role != RoleAdmin && actor.Role != RoleQA {
		return fmt.Errorf("backup: role %s may not copy the data file (admin or qa): %w", actor.Role, ErrForbidden)
	}
	return nil
}

// Backup writes a consistent copy of the data file to w after checking
// AuthorizeBackup.
func (s *Service) Backup(ctx context.Context, actor User, w io.Writer) (int64, error) {
	if err := s.AuthorizeBackup(actor); err != nil {
		return 0, err
	}
	n, err := s.store.Backup(ctx, w)
	if err != nil {
		s.log.Error("backup failed", "user", actor.ID, "err", err)
		return n, err
	}
	s.log.Info("backup taken", "user", actor.ID, "bytes", n)
	return n, nil
}
