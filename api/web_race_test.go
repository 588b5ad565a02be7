//go:build race

package api_test

// raceSlowdown widens timing limits under the race detector, which slows
// code down several times.
const raceSlowdown = 10
