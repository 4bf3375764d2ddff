//go:build !linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"runtime"
)

func newLab(context.Context, Config) (*Lab, error) {
	return nil, fmt.Errorf("lab: network namespaces and TUN devices: %w on %s (the lab needs Linux)", errors.ErrUnsupported, runtime.GOOS)
}

// A netns exists only on Linux; New never returns a Lab elsewhere.
type netns struct{}

func (*netns) do(func() error) error {
	return fmt.Errorf("lab: network namespaces: %w on %s", errors.ErrUnsupported, runtime.GOOS)
}

func (*netns) close() error { return nil }

func newPair(context.Context) (*Pair, error) {
	return nil, fmt.Errorf("lab: network namespaces and veth pairs: %w on %s (the pair needs Linux)", errors.ErrUnsupported, runtime.GOOS)
}

func lineDrops(string) (uint64, error) { return 0, nil }
