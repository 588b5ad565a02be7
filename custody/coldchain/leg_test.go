package coldchain

import (
	"testing"
	"time"

	"github.com/coid-project/coid/custody"
)

// TestEvaluateLeg: a received leg's excursions going on at the receipt end
// there; an open leg's stay open; closed ones are as Evaluate gives them.
func TestEvaluateLeg(t *testing.T) {
	cryo := custody.BuiltinProfiles()["cryogenic"]
	received := minute(40)
	// Warm from minute 10 to 20 (closed), warm again from minute 30 on.
	rs := temps(0, cat(fill(10, -180), fill(10, -100), fill(10, -180), fill(11, -100))...)
	tests := []struct {
		name       string
		receivedAt *time.Time
		want       []want
	}{
		{"open leg", nil, []want{
			{kind: custody.ExcursionTemperature, start: 10, end: 20, dur: 10, breach: 10, worst: -100, limit: -150, worstRequired: true},
			{kind: custody.ExcursionTemperature, start: 30, end: -1, dur: 10, breach: 10, worst: -100, limit: -150, worstRequired: true},
		}},
		{"received leg", &received, []want{
			{kind: custody.ExcursionTemperature, start: 10, end: 20, dur: 10, breach: 10, worst: -100, limit: -150, worstRequired: true},
			{kind: custody.ExcursionTemperature, start: 30, end: 40, dur: 10, breach: 10, worst: -100, limit: -150, worstRequired: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := custody.LegRef{COI: "COI-1", Profile: cryo, From: t0, To: minute(40),
				Leg: custody.Leg{N: 1, Shipper: shipper, ReceivedAt: tt.receivedAt}}
			check(t, onlyKind(custody.ExcursionTemperature, EvaluateLeg(l, rs)), tt.want...)
		})
	}
}
