package transport_test

import (
	"testing"

	"github.com/tcpvsudp/tcpvsudp/internal/leakcheck"
)

// TestMain ends the package's tests with a goroutine leak check.
func TestMain(m *testing.M) { leakcheck.Main(m, "transport") }
