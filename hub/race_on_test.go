//go:build race

package hub_test

// raceEnabled shortens the linearizability run: the race detector slows the
// history checker by an order of magnitude.
const raceEnabled = true
