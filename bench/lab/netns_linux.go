package lab

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// threadNetns is the calling thread's network namespace. /proc/self/ns/net would name
// the thread group leader's, which is not the thread we are locked to.
const threadNetns = "/proc/thread-self/ns/net"

// A netns is a network namespace held by an open file descriptor: the namespace lives
// at least as long as the descriptor (and after it, as long as a socket or device in it
// does). It has no name in /run/netns, so nothing of it outlives the process.
type netns struct {
	name string // "client" or "server", for errors

	mu sync.Mutex // guards fd
	fd int        // an open /proc/thread-self/ns/net of a thread inside it; -1 once closed
}

// newNetns creates a network namespace and runs setup inside it, on the thread that
// created it, before returning the thread to the namespace it came from.
func newNetns(name string, setup func() error) (*netns, error) {
	ns := &netns{name: name, fd: -1}
	err := onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			err = os.NewSyscallError("unshare", err)
			if errors.Is(err, os.ErrPermission) {
				return fmt.Errorf("lab: creating a network namespace needs CAP_SYS_ADMIN: run as root, or in a user namespace that allows it (unshare -rn): %w", err)
			}
			return fmt.Errorf("lab: creating the %s network namespace: %w", name, err)
		}
		return nil
	}, func() error {
		fd, err := unix.Open(threadNetns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("lab: opening the %s network namespace: %w", name, &os.PathError{Op: "open", Path: threadNetns, Err: err})
		}
		ns.fd = fd // only this goroutine has ns yet
		return setup()
	})
	if err != nil {
		ns.close()
		return nil, err
	}
	return ns, nil
}

// do runs f inside ns, on a goroutine locked to its OS thread, and waits for it; a
// panic or runtime.Goexit in f is passed on to the caller's goroutine.
func (ns *netns) do(f func() error) error {
	fd, err := ns.dup()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return onThread(func() error {
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("lab: entering the %s network namespace: %w", ns.name, os.NewSyscallError("setns", err))
		}
		return nil
	}, f)
}

// dup returns a new descriptor of ns, so that a concurrent close cannot pull the
// namespace (or, once the number is reused, something else) from under a user.
func (ns *netns) dup() (int, error) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.fd < 0 {
		return -1, fmt.Errorf("lab: the %s network namespace: %w", ns.name, os.ErrClosed)
	}
	fd, err := unix.FcntlInt(uintptr(ns.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("lab: the %s network namespace: %w", ns.name, os.NewSyscallError("fcntl", err))
	}
	return fd, nil
}

// close closes ns's descriptor; the namespace goes when nothing else holds it. A nil
// ns or a second close does nothing.
func (ns *netns) close() error {
	if ns == nil {
		return nil
	}
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.fd < 0 {
		return nil
	}
	err := unix.Close(ns.fd)
	ns.fd = -1
	if err != nil {
		return fmt.Errorf("lab: closing the %s network namespace: %w", ns.name, os.NewSyscallError("close", err))
	}
	return nil
}

// onThread runs enter and then f on a new goroutine locked to its OS thread, and then
// returns the thread to the network namespace it started in. If that fails, the
// goroutine ends without unlocking, so the runtime discards the thread rather than run
// other goroutines in the wrong namespace. enter must move the thread or fail without
// moving it; f runs only if it succeeds. A panic or
// runtime.Goexit in f is passed on to the caller's goroutine, after the restore.
func onThread(enter, f func() error) error {
	type result struct {
		err      error
		panicked bool
		panicVal any
		goexit   bool
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open(threadNetns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("lab: opening the current network namespace: %w", &os.PathError{Op: "open", Path: threadNetns, Err: err})}
			return
		}
		defer unix.Close(orig) // after the restore below
		if err := enter(); err != nil {
			runtime.UnlockOSThread() // enter failed: the thread did not move
			done <- result{err: err}
			return
		}
		var r result
		returned := false
		defer func() {
			if !returned {
				if p := recover(); p != nil {
					r.panicked, r.panicVal = true, p
				} else {
					r.goexit = true
				}
			}
			if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
				// Never unlock: the thread ends with this goroutine.
				r.err = errors.Join(r.err, fmt.Errorf("lab: returning a thread to its network namespace (the thread is discarded): %w", os.NewSyscallError("setns", err)))
			} else {
				runtime.UnlockOSThread()
			}
			done <- r
		}()
		r.err = f()
		returned = true
	}()
	r := <-done
	switch {
	case r.panicked:
		panic(r.panicVal)
	case r.goexit:
		runtime.Goexit()
	}
	return r.err
}
