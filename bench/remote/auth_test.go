package remote

import (
	"bytes"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		content string
		mode    os.FileMode
		want    string // the key, or "" for an error
		errHas  []string
	}{
		{"plain", "0123456789abcdef", 0o600, "0123456789abcdef", nil},
		{"whitespace trimmed", "  \n\t0123456789abcdefXYZ\r\n\n", 0o400, "0123456789abcdefXYZ", nil},
		{"inner space kept", "0123456789 abcdef", 0o600, "0123456789 abcdef", nil},
		{"short", "0123456789abcde\n", 0o600, "", []string{"15 bytes", "at least 16"}},
		{"only whitespace", " \n \n", 0o600, "", []string{"0 bytes"}},
		{"world readable", "0123456789abcdef", 0o644, "", []string{"group or others", "chmod 600", "0644"}},
		{"group readable", "0123456789abcdef", 0o640, "", []string{"chmod 600"}},
		{"group writable", "0123456789abcdef", 0o620, "", []string{"chmod 600"}},
		{"too large", strings.Repeat("k", maxKeyFile+1), 0o600, "", []string{"larger than 4096"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			key, err := LoadKey(path)
			if tc.want != "" {
				if err != nil || string(key) != tc.want {
					t.Errorf("LoadKey(%q) = %q, %v; want %q", tc.content, key, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("LoadKey(%q, mode %o) = %q, want an error", tc.content, tc.mode, key)
			}
			for _, s := range append(tc.errHas, path) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("LoadKey error %q does not say %q", err, s)
				}
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		if _, err := LoadKey(filepath.Join(dir, "nope")); err == nil || !os.IsNotExist(unwrapAll(err)) {
			t.Errorf("LoadKey of a missing file: %v", err)
		}
	})
	t.Run("directory", func(t *testing.T) {
		sub := filepath.Join(dir, "sub")
		os.Mkdir(sub, 0o700)
		if _, err := LoadKey(sub); err == nil || !strings.Contains(err.Error(), "is a directory, want a regular file") {
			t.Errorf("LoadKey of a directory: %v", err)
		}
	})
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// TestMACKnownAnswer pins the transcript so another implementation can check itself:
// key "0123456789abcdef0123456789abcdef", server nonce 00..1f, client nonce 20..3f.
func TestMACKnownAnswer(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	sn, cn := make([]byte, 32), make([]byte, 32)
	for i := range sn {
		sn[i], cn[i] = byte(i), byte(32+i)
	}
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"client", ClientMAC(key, sn, cn), "6a256a923eae7fbffa7921ab719dfc17912002e7d7052a4f2674478b2ba706bf"},
		{"server", ServerMAC(key, sn, cn), "75b5a04935ec704105365ba536c4721f57227d2243dce32de5df6d213f615f3a"},
	} {
		if got := hex.EncodeToString(tc.got); got != tc.want {
			t.Errorf("%s MAC = %s, want %s", tc.name, got, tc.want)
		}
	}
	if bytes.Equal(ClientMAC(key, sn, cn), ServerMAC(key, sn, cn)) {
		t.Error("client and server proofs are equal: one could be replayed as the other")
	}
	if bytes.Equal(ClientMAC(key, sn, cn), ClientMAC(key, cn, sn)) {
		t.Error("swapping the nonces gives the same proof")
	}
}

func TestNonceCache(t *testing.T) {
	n := func(i byte) []byte { return bytes.Repeat([]byte{i}, nonceLen) }
	t0 := time.Unix(1000, 0)
	c := newNonceCache(3, time.Minute)
	steps := []struct {
		nonce byte
		at    time.Duration
		fresh bool
	}{
		{1, 0, true},
		{1, time.Second, false}, // replay within the window
		{2, time.Second, true},
		{3, time.Second, true},
		{4, 2 * time.Second, true},    // full: 1 is forgotten early
		{1, 2 * time.Second, true},    // ...so it is fresh again (the cache is bounded)
		{3, 3 * time.Second, false},   // still held
		{3, 2 * time.Minute, true},    // left the window
		{2, 2 * time.Minute, true},    // left the window
		{2, 2*time.Minute + 1, false}, // and is held again
	}
	for i, s := range steps {
		if got := c.add(n(s.nonce), t0.Add(s.at)); got != s.fresh {
			t.Fatalf("step %d: add(%d at %v) = %v, want %v", i, s.nonce, s.at, got, s.fresh)
		}
		if c.len() > 3 {
			t.Fatalf("step %d: cache holds %d, capacity 3", i, c.len())
		}
	}
}

func TestPeerAllowed(t *testing.T) {
	tcp := func(s string) net.Addr { return net.TCPAddrFromAddrPort(mustAP(s)) }
	for _, tc := range []struct {
		name           string
		peer           net.Addr
		haveKey, allow bool
		ok             bool
	}{
		{"loopback v4, no key", tcp("127.0.0.1:5000"), false, false, true},
		{"loopback 127/8, no key", tcp("127.9.8.7:5000"), false, false, true},
		{"loopback v6, no key", tcp("[::1]:5000"), false, false, true},
		{"loopback v4-mapped, no key", tcp("[::ffff:127.0.0.1]:5000"), false, false, true},
		{"remote v4, no key", tcp("192.0.2.7:5000"), false, false, false},
		{"remote v6, no key", tcp("[2001:db8::1]:5000"), false, false, false},
		{"remote v4-mapped, no key", tcp("[::ffff:192.0.2.7]:5000"), false, false, false},
		{"remote, key", tcp("192.0.2.7:5000"), true, false, true},
		{"remote, no key, allowed", tcp("192.0.2.7:5000"), false, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := peerAllowed(tc.peer, tc.haveKey, tc.allow)
			if (err == nil) != tc.ok {
				t.Errorf("peerAllowed(%v, key=%v, allow=%v) = %v, want ok=%v", tc.peer, tc.haveKey, tc.allow, err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "--allow-unauthenticated") {
				t.Errorf("refusal %q does not say how to allow the peer", err)
			}
		})
	}
}
