//go:build !linux

package bench

import "runtime"

// kernelRelease is not read on this OS: the OS name stands in for it.
func kernelRelease() string { return runtime.GOOS + " (release not read)" }
