//go:build !unix

package metrics

import (
	"errors"
	"fmt"
	"runtime"
)

// ReadUsage is not implemented off Unix: it returns an error wrapping
// errors.ErrUnsupported.
func ReadUsage() (Usage, error) {
	return Usage{}, fmt.Errorf("bench: getrusage: %w on %s", errors.ErrUnsupported, runtime.GOOS)
}
