// Package chart owns the axis arithmetic that coid's temperature charts
// share, the custody report's (labels/report) and the web UI's live chart
// (api/web): how far apart the ticks of a value axis and of a time axis
// are. It imports only the standard library.
package chart

import (
	"math"
	"time"
)

// NiceStep returns a step of 1, 2 or 5 times a power of ten that cuts
// span into about n intervals; 1 for an empty span.
func NiceStep(span float64, n int) float64 {
	if span <= 0 || n <= 0 {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// timeSteps are the time-axis tick intervals a chart may use, shortest
// first.
var timeSteps = [...]time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour,
	7 * 24 * time.Hour,
}

// TimeStep returns the shortest of the usual clock intervals (1 s, 2 s,
// 5 s, ... 1 h, 2 h, 3 h, 6 h, 12 h, 1 d, 2 d, 7 d) that cuts span into at
// most n intervals, or the longest of them.
func TimeStep(span time.Duration, n int) time.Duration {
	for _, s := range timeSteps {
		if span/s <= time.Duration(n) {
			return s
		}
	}
	return timeSteps[len(timeSteps)-1]
}
