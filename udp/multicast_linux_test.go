//go:build linux

package udp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// loMembers returns how many sockets are joined to group on lo, from /proc/net/igmp
// (the Users column of the group's line under lo; 0 when the group is absent).
func loMembers(tb testing.TB, group netip.Addr) int {
	tb.Helper()
	f, err := os.Open("/proc/net/igmp")
	if err != nil {
		tb.Skipf("membership table unreadable: %v", err)
	}
	defer f.Close()
	// The kernel prints the group's __be32 with %08X, so the digits follow the
	// host's byte order.
	hex := fmt.Sprintf("%08X", binary.NativeEndian.Uint32(group.AsSlice()))
	inLo := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if !strings.HasPrefix(line, "\t") { // "Idx Device : Count Querier"
			inLo = len(fields) > 1 && fields[1] == "lo"
			continue
		}
		if inLo && fields[0] == hex && len(fields) > 1 {
			n, err := strconv.Atoi(fields[1])
			if err != nil {
				tb.Fatalf("/proc/net/igmp: users %q: %v", fields[1], err)
			}
			return n
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return 0
}

// TestMulticastMembershipOnLoopback: receivers join the group on lo, one membership
// per socket, and closing them leaves it.
func TestMulticastMembershipOnLoopback(t *testing.T) {
	a := listenGroupT(t, LocalGroup(), true)
	group := groupOf(t, a)
	b := listenGroupT(t, group, true)
	if got := loMembers(t, group.Addr()); got != 2 {
		t.Errorf("after two joins: %d members of %v on lo, want 2", got, group.Addr())
	}
	notJoined := listenGroupT(t, group, false)
	if got := loMembers(t, group.Addr()); got != 2 {
		t.Errorf("after a socket that did not join: %d members of %v on lo, want 2", got, group.Addr())
	}
	for _, c := range []*Conn{a, b, notJoined} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := loMembers(t, group.Addr()); got != 0 {
		t.Errorf("after closing every receiver: %d members of %v on lo, want 0", got, group.Addr())
	}
}

// loDownEnv marks the child process of TestMulticastLoopbackDown.
const loDownEnv = "UDP_TEST_IN_NEW_NETNS"

// TestMulticastLoopbackDown: in a fresh network namespace lo is down and has no
// address. Joining and sending must then fail with an error that wraps
// errors.ErrUnsupported and says how to enable it. The test runs itself again in a
// child process in a new namespace: moving one of this process's threads there
// could move the main thread, and with it /proc/self/net, for every later test.
func TestMulticastLoopbackDown(t *testing.T) {
	if os.Getenv(loDownEnv) != "1" {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestMulticastLoopbackDown$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), loDownEnv+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
		out, err := cmd.CombinedOutput()
		if errors.Is(err, os.ErrPermission) {
			t.Skipf("new network namespace: %v (needs CAP_SYS_ADMIN)", err)
		}
		if err != nil {
			t.Fatalf("child in a new network namespace: %v\n%s", err, out)
		}
		t.Logf("child in a new network namespace:\n%s", out)
		return
	}
	if ifi, err := net.InterfaceByName("lo"); err != nil || ifi.Flags&net.FlagUp != 0 {
		t.Fatalf("lo: %+v, %v; want a fresh namespace with lo down", ifi, err)
	}
	ctx := t.Context()
	var listenErr, dialErr error
	if c, err := ListenMulticast(ctx, netip.MustParseAddrPort("239.255.9.9:0"), Options{}); err == nil {
		c.Close()
	} else {
		listenErr = err
	}
	if c, err := DialMulticast(ctx, netip.MustParseAddrPort("239.255.9.9:9999"), Options{}); err == nil {
		c.Close()
	} else {
		dialErr = err
	}
	for _, tc := range []struct {
		name string
		err  error
	}{{"ListenMulticast", listenErr}, {"DialMulticast", dialErr}, {"ProbeMulticast", ProbeMulticast(ctx)}} {
		t.Logf("%s with lo down: %v", tc.name, tc.err)
		if !errors.Is(tc.err, errors.ErrUnsupported) || !strings.Contains(fmt.Sprint(tc.err), "ip link set lo up") {
			t.Errorf("%s with lo down: %v; want an error wrapping errors.ErrUnsupported that says \"ip link set lo up\"", tc.name, tc.err)
		}
	}
}
