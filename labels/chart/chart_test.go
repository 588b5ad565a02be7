package chart_test

import (
	"testing"
	"time"

	"github.com/coid-project/coid/labels/chart"
)

func TestNiceStep(t *testing.T) {
	for _, tc := range []struct {
		span float64
		n    int
		want float64
	}{
		{0, 5, 1}, {-3, 5, 1}, {10, 0, 1},
		{10, 5, 2}, {11, 5, 5}, {4.5, 5, 1}, {200, 5, 50}, {0.3, 5, 0.1}, {190, 5, 50}, {100, 5, 20},
	} {
		if got := chart.NiceStep(tc.span, tc.n); got != tc.want {
			t.Errorf("NiceStep(%v, %d) = %v, want %v", tc.span, tc.n, got, tc.want)
		}
	}
}

func TestTimeStep(t *testing.T) {
	for _, tc := range []struct {
		span time.Duration
		n    int
		want time.Duration
	}{
		{3 * time.Second, 6, time.Second},
		{40 * time.Second, 6, 10 * time.Second},
		{time.Hour, 6, 10 * time.Minute},
		{25 * time.Hour, 6, 6 * time.Hour},
		{3 * 24 * time.Hour, 6, 12 * time.Hour}, {4 * 24 * time.Hour, 6, 24 * time.Hour},
		{60 * 24 * time.Hour, 6, 7 * 24 * time.Hour}, // longer than any: the longest
	} {
		if got := chart.TimeStep(tc.span, tc.n); got != tc.want {
			t.Errorf("TimeStep(%v, %d) = %v, want %v", tc.span, tc.n, got, tc.want)
		}
	}
}
