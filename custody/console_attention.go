package custody

import "slices"

// AttentionKind names a panel of the QA console's attention strip: a kind
// of thing waiting for someone, counted from its own index or list.
type AttentionKind string

// The attention panels, in the order the console shows them (the order of
// AttentionOrder): what puts a patient's product at risk first.
const (
	// AttentionExcursions counts the open excursions of the chains the
	// user may read.
	AttentionExcursions AttentionKind = "open-excursions"
	// AttentionQuarantine counts the refused telemetry payloads.
	AttentionQuarantine AttentionKind = "quarantined-telemetry"
	// AttentionDeadlines counts the overdue after-the-fact steps of
	// expanded-access requests (such as the IRB report after an
	// emergency authorisation).
	AttentionDeadlines AttentionKind = "overdue-access-deadlines"
	// AttentionHeld counts the chains on hold for QA's disposition: a
	// bag set aside after a failed bedside check, or a shipment received
	// with its seal broken.
	AttentionHeld AttentionKind = "held-for-qa"
	// AttentionExpiring counts the qualifications expiring within the
	// warning days, or expired.
	AttentionExpiring AttentionKind = "expiring-qualifications"
)

// AttentionOrder is the order of the attention panels.
var AttentionOrder = [...]AttentionKind{AttentionExcursions, AttentionQuarantine, AttentionDeadlines, AttentionHeld, AttentionExpiring}

// AttentionPanel is one panel of the attention strip: how many things of
// its kind wait, and whether there are more than Count (the count stopped
// at a bound, so that a panel costs its bound, not the store).
type AttentionPanel struct {
	Kind  AttentionKind `json:"kind"`
	Count int           `json:"count"`
	More  bool          `json:"more,omitempty"`
}

// SortAttention puts panels in AttentionOrder and drops those with
// nothing waiting.
func SortAttention(panels []AttentionPanel) []AttentionPanel {
	panels = slices.DeleteFunc(panels, func(p AttentionPanel) bool { return p.Count == 0 && !p.More })
	slices.SortStableFunc(panels, func(a, b AttentionPanel) int {
		return slices.Index(AttentionOrder[:], a.Kind) - slices.Index(AttentionOrder[:], b.Kind)
	})
	return panels
}

// consoleAttention counts, from what the console gathered, its own
// panels: open excursions and chains held for QA (from the folded chains
// with open issues) and overdue expanded-access deadlines.
func consoleAttention(issues []*Chain, deadlines []OwedDeadline) []AttentionPanel {
	excursions, held := 0, 0
	for _, c := range issues {
		hold := false
		for _, is := range c.OpenIssues() {
			if _, ok := is.Excursion(); ok {
				excursions++
			} else {
				hold = true
			}
		}
		if hold {
			held++
		}
	}
	overdue := 0
	for _, d := range deadlines {
		if d.Status == "overdue" {
			overdue++
		}
	}
	return SortAttention([]AttentionPanel{
		{Kind: AttentionExcursions, Count: excursions},
		{Kind: AttentionDeadlines, Count: overdue},
		{Kind: AttentionHeld, Count: held},
	})
}
