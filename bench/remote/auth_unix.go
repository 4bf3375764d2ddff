//go:build unix

package remote

import "syscall"

// openNoWait makes LoadKey's open return at once whatever the path is: opening a
// FIFO otherwise waits for a writer, with no way to interrupt it.
const openNoWait = syscall.O_NONBLOCK
