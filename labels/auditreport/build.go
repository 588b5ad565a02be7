package auditreport

import (
	"context"
	"fmt"
	"time"

	"github.com/coid-project/coid/custody"
)

// DefaultMaxEntries is how many entries a report holds at most unless the
// caller sets another bound: a longer selection is refused, asking for a
// narrower period, so that a report is never a ten-year trail in memory.
const DefaultMaxEntries = 5000

// Source reads the entries a filter selects, one page at a time (at most
// f.Limit), as custody.Service.AuditTrail does for its actor.
type Source func(ctx context.Context, f custody.AuditFilter) ([]custody.AuditEntry, error)

// sourcePage is the page Build reads with; custody.MaxRegistryPage is the
// service's bound.
const sourcePage = custody.MaxRegistryPage

// Build collects the entries f selects (at most max; <= 0:
// DefaultMaxEntries) page by page from src, and checks the whole trail's
// hash chain, for a report made by who at the time at. A selection of more
// than max entries is refused with custody.ErrInvalid naming the bound. A
// broken chain is not an error: the report shows it (Input.VerifyErr).
func Build(ctx context.Context, src Source, f custody.AuditFilter, max int, who custody.User, at time.Time) (*Input, error) {
	if max <= 0 {
		max = DefaultMaxEntries
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	in := &Input{Filter: f, GeneratedBy: who, GeneratedAt: at.UTC(), Entries: []custody.AuditEntry{}}
	q := f
	q.Newest, q.Limit = false, sourcePage
	for {
		es, err := src(ctx, q)
		if err != nil {
			return nil, err
		}
		in.Entries = append(in.Entries, es...)
		if len(in.Entries) > max {
			return nil, fmt.Errorf("audit report: more than %d entries match; choose a narrower period or a user or object: %w", max, custody.ErrInvalid)
		}
		if len(es) < q.Limit {
			break
		}
		q.After = es[len(es)-1].Seq
	}
	n, broken, err := VerifyTrail(ctx, func(ctx context.Context, after uint64, limit int) ([]custody.AuditEntry, error) {
		return src(ctx, custody.AuditFilter{After: after, Limit: min(limit, sourcePage)})
	})
	if err != nil {
		return nil, err
	}
	in.Verified, in.VerifyErr = n, broken
	return in, nil
}
