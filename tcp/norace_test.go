//go:build !race

package tcp

// raceEnabled reports a -race build, whose instrumentation allocates.
const raceEnabled = false
