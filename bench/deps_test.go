package bench

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLeafDeps enforces the one-way dependency: tcp and udp are leaves that know
// nothing of bench (or of anything beyond std, x/net and x/sys).
func TestLeafDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../tcp", "../udp").CombinedOutput()
	if err != nil {
		t.Skipf("go list unavailable: %v: %s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case strings.HasSuffix(dep, "/bench") || strings.Contains(dep, "/bench/") || strings.Contains(dep, "/cmd/"):
			t.Errorf("a leaf package depends on %s", dep)
		case strings.Contains(dep, "."): // a module path: only x/net and x/sys are allowed
			if !strings.HasPrefix(dep, "golang.org/x/net") && !strings.HasPrefix(dep, "golang.org/x/sys") &&
				!strings.HasPrefix(dep, "github.com/tcpvsudp/tcpvsudp/tcp") && !strings.HasPrefix(dep, "github.com/tcpvsudp/tcpvsudp/udp") &&
				!strings.HasPrefix(dep, "vendor/golang.org/x/") {
				t.Errorf("a leaf package depends on %s (allowed: std, x/net, x/sys)", dep)
			}
		}
	}
}
