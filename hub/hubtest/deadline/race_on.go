//go:build race

package deadline

// raceEnabled tells Scale that the race detector slows this binary down.
const raceEnabled = true
