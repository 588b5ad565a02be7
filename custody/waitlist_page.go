package custody

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// WaitlistCursor is an entry's place in the waiting-list order, as the
// after of the page that follows it: "URGENCY/SINCE/COI", SINCE in Unix
// nanoseconds. A page that starts after a cursor is stable while entries
// are added or removed between pages: it starts after that place in the
// order, wherever the entries before it went.
func WaitlistCursor(e WaitEntry) string {
	return strconv.Itoa(e.Urgency) + "/" + strconv.FormatInt(e.Since.UnixNano(), 10) + "/" + string(e.COI)
}

// parseWaitlistCursor reads a cursor WaitlistCursor wrote, as the entry
// it stands for (urgency, since and COI set).
func parseWaitlistCursor(s string) (WaitEntry, error) {
	bad := fmt.Errorf("after %q is not a waiting-list cursor (URGENCY/SINCE/COI, the next of a page): %w", s, ErrInvalid)
	u, rest, ok1 := strings.Cut(s, "/")
	ns, coi, ok2 := strings.Cut(rest, "/")
	urgency, err1 := strconv.Atoi(u)
	since, err2 := strconv.ParseInt(ns, 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil || ValidateUrgency(urgency) != nil || coi == "" {
		return WaitEntry{}, bad
	}
	return WaitEntry{Urgency: urgency, Since: time.Unix(0, since).UTC(), COI: COI(coi)}, nil
}

// WaitlistPage is Waitlist paged by cursor instead of offset: the entries
// of plant (empty: every plant) the user may read, in waiting-list order,
// those after the cursor after (empty: from the first; otherwise a next
// this gave), at most limit (1 to MaxRegistryPage); next is the after of
// the following page ("" on the last), total how many entries the user
// may read in all.
func (s *Service) WaitlistPage(ctx context.Context, actor User, plant, after string, limit int) (page []WaitEntry, next string, total int, err error) {
	if limit < 1 || limit > MaxRegistryPage {
		return nil, "", 0, fmt.Errorf("waiting list: limit %d must be 1-%d: %w", limit, MaxRegistryPage, ErrInvalid)
	}
	var from WaitEntry
	if after != "" {
		if from, err = parseWaitlistCursor(after); err != nil {
			return nil, "", 0, err
		}
	}
	all, total, err := s.Waitlist(ctx, actor, plant, 0, MaxRegistryPage)
	if err != nil {
		return nil, "", 0, err
	}
	// Waitlist's page of MaxRegistryPage holds the whole of a list the
	// programme keeps (patients waiting for a slot, not thousands); read
	// the rest when it does not.
	for len(all) < total {
		more, _, err := s.Waitlist(ctx, actor, plant, len(all), MaxRegistryPage)
		if err != nil {
			return nil, "", 0, err
		}
		if len(more) == 0 {
			break
		}
		all = append(all, more...)
	}
	i := 0
	if after != "" {
		i, _ = slices.BinarySearchFunc(all, from, WaitlistLess)
		if i < len(all) && WaitlistLess(all[i], from) == 0 {
			i++
		}
	}
	end := min(i+limit, len(all))
	page = all[i:end]
	if end < len(all) && end > i {
		next = WaitlistCursor(all[end-1])
	}
	return page, next, total, nil
}
