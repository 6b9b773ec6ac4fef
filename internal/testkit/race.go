//go:build race

package testkit

// raceEnabled: the tests run with the race detector, and so do the commands Build compiles.
const raceEnabled = true
