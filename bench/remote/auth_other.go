//go:build !unix

package remote

// openNoWait is 0 where there are no FIFOs to wait on; LoadKey's check of the
// file's kind before it opens still refuses anything but a regular file.
const openNoWait = 0
