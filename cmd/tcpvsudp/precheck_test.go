package main

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// notLocalIP is an address no host has (TEST-NET-3, RFC 5737).
const notLocalIP = "203.0.113.9"

// TestLocalHost: --host must be loopback, unspecified or one of this host's
// interface addresses; anything else is refused naming --host, before a cell binds.
func TestLocalHost(t *testing.T) {
	ifaces := func() ([]net.Addr, error) {
		return []net.Addr{
			&net.IPNet{IP: net.IPv4(127, 0, 0, 1), Mask: net.CIDRMask(8, 32)},
			&net.IPNet{IP: net.ParseIP("192.0.2.2"), Mask: net.CIDRMask(24, 32)},
			&net.IPNet{IP: net.ParseIP("fd00::2"), Mask: net.CIDRMask(64, 128)},
		}, nil
	}
	for _, tc := range []struct {
		name, host string
		want       string // "" for accepted, else what the error says
	}{
		{"loopback v4", "127.0.0.1", ""},
		{"loopback elsewhere in 127/8", "127.0.0.2", ""},
		{"loopback v6", "::1", ""},
		{"unspecified v4", "0.0.0.0", ""},
		{"unspecified v6", "::", ""},
		{"an interface's v4", "192.0.2.2", ""},
		{"an interface's v6", "fd00::2", ""},
		{"v4-mapped interface address", "::ffff:192.0.2.2", ""},
		{"another host's", notLocalIP, "an address of this host"},
		{"same subnet, another host", "192.0.2.1", "192.0.2.2, fd00::2"},
		{"link-local v6", "fe80::1", "needs a zone"},
		{"not an address", "localhost", "must be an IP address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := localHost(tc.host, ifaces)
			if tc.want == "" {
				if err != nil {
					t.Errorf("localHost(%q) = %v, want nil", tc.host, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "--host") || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.host) {
				t.Errorf("localHost(%q) = %v, want an error naming --host, %q and the value", tc.host, err, tc.want)
			}
		})
	}
	t.Run("interfaces unknown", func(t *testing.T) {
		fail := func() ([]net.Addr, error) { return nil, errors.New("no netlink") }
		if err := localHost(notLocalIP, fail); err != nil {
			t.Errorf("localHost with no interface list = %v, want nil (a bind will say)", err)
		}
	})
}

// TestOutDir: --out is made if missing and must take a file; an existing file or an
// unwritable directory is refused naming --out; the check leaves nothing behind.
func TestOutDir(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("made if missing", func(t *testing.T) {
		out := filepath.Join(dir, "a", "b")
		if err := outDir(out); err != nil {
			t.Fatalf("outDir(%s) = %v", out, err)
		}
		if ents, err := os.ReadDir(out); err != nil || len(ents) != 0 {
			t.Errorf("after the check %s holds %v (%v), want it empty", out, ents, err)
		}
	})
	for _, tc := range []struct {
		name, out, want string
	}{
		{"a file", file, "is a regular file, not a directory"},
		{"under a file", filepath.Join(file, "sub"), "cannot make the directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := outDir(tc.out)
			if err == nil || !strings.HasPrefix(err.Error(), "--out: ") || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.out) {
				t.Errorf("outDir(%s) = %v, want an error naming --out, the path and %q", tc.out, err, tc.want)
			}
		})
	}
	t.Run("not writable", func(t *testing.T) {
		ro := "/sys/kernel" // not writable even by root
		if f, err := os.CreateTemp(ro, ".tcpvsudp-test-*"); err == nil {
			f.Close()
			os.Remove(f.Name())
			t.Skipf("%s is writable here", ro)
		} else if os.IsNotExist(err) {
			t.Skipf("no %s here", ro)
		}
		err := outDir(ro)
		if err == nil || !strings.Contains(err.Error(), "--out: cannot write in "+ro) || !errors.Is(err, os.ErrPermission) {
			t.Errorf("outDir(%s) = %v, want an error naming --out and the directory, errno EACCES or EPERM", ro, err)
		}
	})
}
