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

// TestModelAndRendererDeps: the report model and the renderers know nothing of how
// figures are measured (no bench, transports, lab or remote), and the server side
// (bench/farend, `serve`) links no renderer; bench itself imports neither the
// renderers nor the far end's package nor the CLI, which sit above it; bench/wire
// and bench/metrics sit below it.
func TestModelAndRendererDeps(t *testing.T) {
	const mod = "github.com/tcpvsudp/tcpvsudp/"
	deps := func(pkgs ...string) []string {
		out, err := exec.Command("go", append([]string{"list", "-deps"}, pkgs...)...).CombinedOutput()
		if err != nil {
			t.Skipf("go list unavailable: %v: %s", err, out)
		}
		return strings.Fields(string(out))
	}
	for _, dep := range deps("./farend") {
		if dep == mod+"bench/render" || strings.HasPrefix(dep, "gonum.org/") || strings.Contains(dep, "tablewriter") {
			t.Errorf("the server side (bench/farend) links %s", dep)
		}
	}
	for _, dep := range deps(".") {
		if dep == mod+"bench/render" || dep == mod+"bench/farend" || strings.HasPrefix(dep, mod+"cmd/") {
			t.Errorf("bench (the runner and experiments) depends on %s, which depends on it", dep)
		}
	}
	// The transports' layer (bench/transport) sits on the leaf transports alone, and
	// the conformance suite on it: neither knows the experiments.
	for _, dep := range deps("./transport", "./transporttest") {
		if !strings.HasPrefix(dep, mod) {
			continue
		}
		switch rest := strings.TrimPrefix(dep, mod); {
		case rest == "bench/transport", rest == "bench/transporttest", rest == "tcp", rest == "udp", strings.HasPrefix(rest, "internal/"):
		default:
			t.Errorf("bench/transport or bench/transporttest depends on %s", dep)
		}
	}
	// The instruments (bench/wire, bench/metrics) sit below the experiments: they
	// know the report model and nothing else of the project.
	for _, dep := range deps("./wire", "./metrics") {
		if !strings.HasPrefix(dep, mod) {
			continue
		}
		switch strings.TrimPrefix(dep, mod) {
		case "bench/wire", "bench/metrics", "bench/report", "internal/units":
		default:
			t.Errorf("bench/wire or bench/metrics depends on %s", dep)
		}
	}
	for _, dep := range deps("./report", "./render") {
		if !strings.HasPrefix(dep, mod) {
			continue
		}
		switch strings.TrimPrefix(dep, mod) {
		case "bench/report", "bench/render", "internal/units":
		default:
			t.Errorf("the report model or a renderer depends on %s", dep)
		}
	}
}
