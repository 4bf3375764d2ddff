//go:build !linux

package udp

import "time"

// blocker is empty here: Options.Blocking changes nothing.
type blocker struct{ on bool }

func (c *Conn) initBlocking(o Options) error    { return nil }
func (c *Conn) setBlockingDeadline(t time.Time) {}
func (c *Conn) closeBlocking()                  {}
