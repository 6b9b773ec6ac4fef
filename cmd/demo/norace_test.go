//go:build !race

package main_test

// raceEnabled builds the demo with the race detector when its tests run with it.
const raceEnabled = false
