package remote

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the dependencies one way: bench/remote imports neither cmd nor bench
// (it is a leaf the CLI wires to bench), and bench does not import bench/remote.
func TestDeps(t *testing.T) {
	for _, tc := range []struct {
		name, pkg string
		banned    func(dep string) bool
	}{
		{"remote imports no cmd or bench", ".", func(dep string) bool {
			return strings.Contains(dep, "/cmd/") || strings.HasSuffix(dep, "tcpvsudp/bench") || strings.HasSuffix(dep, "tcpvsudp/bench/lab")
		}},
		{"bench does not import remote", "..", func(dep string) bool { return strings.HasSuffix(dep, "/bench/remote") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command("go", "list", "-deps", tc.pkg).CombinedOutput()
			if err != nil {
				t.Skipf("go list unavailable: %v: %s", err, out)
			}
			for _, dep := range strings.Fields(string(out)) {
				if tc.banned(dep) {
					t.Errorf("go list -deps %s: depends on %s", tc.pkg, dep)
				}
			}
		})
	}
}
