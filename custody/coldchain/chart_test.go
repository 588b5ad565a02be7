package coldchain_test

import (
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
	"github.com/coid-project/coid/custody/coldchain"
)

// TestLineBreak: a chart breaks its line after two expected intervals, or
// three typical ones for a shipper that reports less often, and never
// later than the silence limit.
func TestLineBreak(t *testing.T) {
	mins := func(n int) time.Duration { return time.Duration(n) * time.Minute }
	prof := custody.Profile{ExpectedInterval: mins(1), SilenceIntervals: 10}
	for _, tc := range []struct {
		name      string
		p         custody.Profile
		intervals []time.Duration
		want      time.Duration
	}{
		{"no profile, no readings: no breaks", custody.Profile{}, nil, 0},
		{"profile only: two expected intervals", prof, nil, mins(2)},
		{"reports as expected", prof, []time.Duration{mins(1), mins(1), mins(1)}, mins(3)},
		{"one missed report does not move the median", prof, []time.Duration{mins(1), mins(2), mins(1)}, mins(3)},
		{"a slower shipper: three of its intervals", prof, []time.Duration{mins(3), mins(3), mins(3)}, mins(9)},
		{"never past the silence limit", prof, []time.Duration{mins(5), mins(5), mins(5)}, mins(10)},
		{"no profile: the readings' own rule", custody.Profile{}, []time.Duration{mins(2), mins(4), mins(2)}, mins(6)},
		{"unordered intervals: the median", prof, []time.Duration{mins(3), mins(1), mins(2)}, mins(6)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := coldchain.LineBreak(tc.p, tc.intervals); got != tc.want {
				t.Fatalf("LineBreak = %v, want %v", got, tc.want)
			}
		})
	}
}
