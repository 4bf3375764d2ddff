package ctxwatch

import (
	"testing"

	"github.com/tcpvsudp/tcpvsudp/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m, "ctxwatch") }
