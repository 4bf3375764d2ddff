//go:build !race

package lab

// raceEnabled reports a -race build, whose instrumentation slows the emulator
// several times.
const raceEnabled = false
