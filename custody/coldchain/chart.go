package coldchain

import (
	"slices"
	"time"

	"github.com/coid-project/coid/custody"
)

// LineBreak returns how long two consecutive readings may be apart before
// a chart of them breaks its line between them: two of the profile's
// expected intervals (a missed report shows), or three typical (median)
// intervals of these readings when the shipper reports less often, never
// more than the profile's silence limit, so that a silence is always a
// break. intervals are the times between consecutive readings; LineBreak
// sorts them in place. With neither an expected interval nor an interval
// it is 0: no breaks. The custody report and the live chart both draw by
// this rule.
func LineBreak(p custody.Profile, intervals []time.Duration) time.Duration {
	g := 2 * p.ExpectedInterval
	if len(intervals) > 0 {
		slices.Sort(intervals)
		g = max(g, 3*intervals[len(intervals)/2])
	}
	if silence := p.SilenceAfter(); silence > 0 && g > silence {
		g = silence
	}
	return max(g, 0)
}
