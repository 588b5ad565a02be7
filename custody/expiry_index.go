package custody

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// QualificationExpiry is one entry of the index of registry expiry dates
// a store keeps (QualificationExpiryIndex): an unsuspended site's
// accreditation (while accredited) or qualification, or an unsuspended
// shipper's requalification, with the date it runs out.
type QualificationExpiry struct {
	// Date is the expiry or due date (YYYY-MM-DD).
	Date string
	// Kind is KindSite or KindShipper; Code the site's code or the
	// shipper's ID.
	Kind RegistryKind
	Code string
	// What is "accreditation", "qualification" or "requalification".
	What string
	// TimeZone is the site's zone, in which its today is counted; ""
	// for a shipper (UTC).
	TimeZone string
}

// Cursor is the entry's place in the index's order (date, kind, code,
// what), as the after of the page that follows it: "DATE/KIND/CODE/WHAT".
func (e QualificationExpiry) Cursor() string {
	return e.Date + "/" + string(e.Kind) + "/" + e.Code + "/" + e.What
}

// ParseExpiryCursor reads a cursor Cursor wrote; ErrInvalid when s is not
// one.
func ParseExpiryCursor(s string) (QualificationExpiry, error) {
	bad := fmt.Errorf("after %q is not a cursor of the expiring qualifications (DATE/KIND/CODE/WHAT, the next of a page): %w", s, ErrInvalid)
	if len(s) < len(DateLayout)+1 || s[len(DateLayout)] != '/' {
		return QualificationExpiry{}, bad
	}
	date := s[:len(DateLayout)]
	if _, err := time.Parse(DateLayout, date); err != nil {
		return QualificationExpiry{}, bad
	}
	rest := s[len(DateLayout)+1:]
	kind, rest, ok := strings.Cut(rest, "/")
	i := strings.LastIndexByte(rest, '/')
	if !ok || i < 1 || i == len(rest)-1 || (RegistryKind(kind) != KindSite && RegistryKind(kind) != KindShipper) {
		return QualificationExpiry{}, bad
	}
	return QualificationExpiry{Date: date, Kind: RegistryKind(kind), Code: rest[:i], What: rest[i+1:]}, nil
}

// QualificationExpiriesOf returns the index entries of a registry entry
// of kind as stored (value, the JSON custody encodes): none for a kind
// other than sites and shippers, a suspended entry, or a date not set.
// The stores call it in the transaction that writes the entry.
func QualificationExpiriesOf(kind RegistryKind, value []byte) ([]QualificationExpiry, error) {
	if len(value) == 0 {
		return nil, nil
	}
	var out []QualificationExpiry
	add := func(e QualificationExpiry) {
		if _, err := time.Parse(DateLayout, e.Date); err == nil {
			out = append(out, e)
		}
	}
	switch kind {
	case KindSite:
		var site Site
		if err := json.Unmarshal(value, &site); err != nil {
			return nil, fmt.Errorf("site entry: %v: %w", err, ErrInvalid)
		}
		if site.Suspended {
			return nil, nil
		}
		if site.Accreditation.Status == AccreditationAccredited {
			add(QualificationExpiry{Date: site.Accreditation.Expiry, Kind: KindSite, Code: site.Code, What: "accreditation", TimeZone: site.TimeZone})
		}
		add(QualificationExpiry{Date: site.Qualification.Expiry, Kind: KindSite, Code: site.Code, What: "qualification", TimeZone: site.TimeZone})
	case KindShipper:
		var sh Shipper
		if err := json.Unmarshal(value, &sh); err != nil {
			return nil, fmt.Errorf("shipper entry: %v: %w", err, ErrInvalid)
		}
		if !sh.Suspended {
			add(QualificationExpiry{Date: sh.RequalificationDue, Kind: KindShipper, Code: sh.ID, What: "requalification"})
		}
	}
	return out, nil
}

// QualificationExpiryIndex is a store that keeps the index of registry
// expiry dates: the entries QualificationExpiriesOf gives for each site
// and shipper, written in the transaction that writes the registry entry,
// in order of date, kind, code and what.
type QualificationExpiryIndex interface {
	// QualificationExpiries pages the index: the entries dated until or
	// earlier (YYYY-MM-DD), in the index's order, those after after (its
	// Date empty: from the first), at most limit of them (1 or more;
	// ErrInvalid otherwise). A store that has not built the index yet
	// returns an error wrapping errors.ErrUnsupported.
	QualificationExpiries(ctx context.Context, until string, after QualificationExpiry, limit int) ([]QualificationExpiry, error)
}

// DefaultExpiringPage and MaxExpiringPage bound a page of
// ExpiringQualificationsPage.
const (
	DefaultExpiringPage = 100
	MaxExpiringPage     = 1000
)

// ExpiringQualificationsPage is one page of ExpiringQualifications, in
// the index's order (soonest first, then kind, code and what), from the
// store's index of expiry dates: the entries after the cursor after
// (empty: from the first; otherwise a Next this gave), at most limit
// (1 to MaxExpiringPage). next is the after of the following page, ""
// on the last. A page costs the page, not the registries.
func (s *Service) ExpiringQualificationsPage(ctx context.Context, actor User, days int, after string, limit int) (page []Expiring, next string, err error) {
	if !MaySeeExpiringQualifications(actor.Role) {
		return nil, "", fmt.Errorf("expiring qualifications: QA, coordinators and administrators see them (you are %s): %w", actor.Role, ErrForbidden)
	}
	if days < 0 || days > MaxQualificationWarningDays {
		return nil, "", fmt.Errorf("expiring qualifications: days %d must be 0-%d: %w", days, MaxQualificationWarningDays, ErrInvalid)
	}
	if limit < 1 || limit > MaxExpiringPage {
		return nil, "", fmt.Errorf("expiring qualifications: limit %d must be 1-%d: %w", limit, MaxExpiringPage, ErrInvalid)
	}
	var from QualificationExpiry
	if after != "" {
		if from, err = ParseExpiryCursor(after); err != nil {
			return nil, "", err
		}
	}
	idx, ok := s.store.(QualificationExpiryIndex)
	if !ok {
		return nil, "", fmt.Errorf("expiring qualifications: this store keeps no index of expiry dates: %w", errors.ErrUnsupported)
	}
	now := s.now()
	// No zone is more than a day ahead of UTC: the dates up to a day past
	// UTC's horizon are read, and each judged in its own zone.
	until := now.UTC().AddDate(0, 0, days+1).Format(DateLayout)
	todays := map[string]string{}
	page = []Expiring{}
	var cursors []string
	for {
		// One more than the page still needs: to know whether another
		// page follows.
		want := limit - len(page) + 1
		batch, err := idx.QualificationExpiries(ctx, until, from, want)
		if err != nil {
			return nil, "", fmt.Errorf("expiring qualifications: %w", err)
		}
		for _, e := range batch {
			from = e
			today, ok := todays[e.TimeZone]
			if !ok {
				today = siteToday(Site{TimeZone: e.TimeZone}, now)
				todays[e.TimeZone] = today
			}
			d, err1 := time.Parse(DateLayout, e.Date)
			t, err2 := time.Parse(DateLayout, today)
			if err1 != nil || err2 != nil {
				continue
			}
			n := int(d.Sub(t).Hours() / 24)
			if n > days {
				continue // a day past the horizon in a zone behind UTC's
			}
			if len(page) == limit {
				return page, cursors[limit-1], nil
			}
			page = append(page, Expiring{Kind: e.Kind, Code: e.Code, What: e.What, Date: e.Date, Days: n})
			cursors = append(cursors, e.Cursor())
		}
		if len(batch) < want {
			return page, "", nil
		}
	}
}
