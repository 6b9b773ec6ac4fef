//go:build race

package main_test

// raceEnabled builds the command with the race detector when its tests run with it.
const raceEnabled = true
