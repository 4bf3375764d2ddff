package remote

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// Authentication methods, as the challenge's "auth" field names them.
const (
	AuthHMAC = "hmac-sha256"
	AuthNone = "none"
)

// MinKeyLen is the shortest pre-shared key LoadKey accepts, in bytes.
const MinKeyLen = 16

// maxKeyFile is the largest key file LoadKey reads, in bytes.
const maxKeyFile = 4096

// Errors of authentication.
var (
	ErrAuth   = errors.New("remote: authentication failed")
	ErrReplay = errors.New("remote: authentication replayed")
)

// LoadKey reads a pre-shared key: the file's bytes, surrounding whitespace ignored.
// It refuses anything but a regular file (a named pipe, a device, a directory), a
// file that group or others may access in any way (the key is a password), a key
// shorter than MinKeyLen bytes, and a file larger than 4 KiB.
//
// It never waits on the file: it checks the kind before it opens, opens without
// blocking where the OS can (O_NONBLOCK, so a path that became a FIFO since the
// check does not wait for a writer), and checks again on what it opened before it
// reads anything.
func LoadKey(path string) ([]byte, error) {
	checked, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("remote: key file: %w", err)
	}
	if err := keyFileKind(path, checked); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|openNoWait, 0)
	if err != nil {
		return nil, fmt.Errorf("remote: key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("remote: key file: %w", err)
	}
	if err := keyFileKind(path, fi); err != nil {
		return nil, err
	}
	if !os.SameFile(checked, fi) {
		return nil, fmt.Errorf("remote: key file %s was replaced while it was opened: try again", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("remote: key file %s is accessible by group or others (mode %04o): run chmod 600 %s", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("remote: key file %s: %w", path, err)
	}
	if len(b) > maxKeyFile {
		return nil, fmt.Errorf("remote: key file %s is larger than %d bytes: is it the right file?", path, maxKeyFile)
	}
	key, err := parseKey(b)
	if err != nil {
		return nil, fmt.Errorf("remote: key file %s: %w", path, err)
	}
	return key, nil
}

// keyFileKind refuses a key file that is not a regular file, naming what it is.
func keyFileKind(path string, fi os.FileInfo) error {
	if fi.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("remote: key file %s is %s, want a regular file", path, FileKind(fi.Mode()))
}

// FileKind names a file's type for an error ("a named pipe (FIFO)", "a directory").
func FileKind(m os.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m.IsDir():
		return "a directory"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeCharDevice != 0:
		return "a character device"
	case m&os.ModeDevice != 0:
		return "a block device"
	case m&os.ModeSymlink != 0:
		return "a symbolic link"
	}
	return fmt.Sprintf("not a regular file (mode %v)", m)
}

// parseKey trims surrounding whitespace and checks the length.
func parseKey(b []byte) ([]byte, error) {
	key := bytes.TrimSpace(b)
	if len(key) < MinKeyLen {
		return nil, fmt.Errorf("key is %d bytes, need at least %d (make one: head -c 32 /dev/urandom | base64 > FILE; chmod 600 FILE)", len(key), MinKeyLen)
	}
	return bytes.Clone(key), nil
}

// checkKey applies LoadKey's length rule to a key given in code.
func checkKey(key []byte) error {
	if key != nil && len(key) < MinKeyLen {
		return fmt.Errorf("remote: key is %d bytes, need at least %d", len(key), MinKeyLen)
	}
	return nil
}

// Transcript labels. Each side's proof is an HMAC over its own label, so a server
// proof can never pass as a client proof or the other way round.
const (
	labelClient = "tcpvsudp-remote v1 client"
	labelServer = "tcpvsudp-remote v1 server"
)

// transcript is label, one zero byte, the server nonce, the client nonce.
func transcript(label string, serverNonce, clientNonce []byte) []byte {
	t := make([]byte, 0, len(label)+1+2*nonceLen)
	t = append(t, label...)
	t = append(t, 0)
	t = append(t, serverNonce...)
	return append(t, clientNonce...)
}

func mac(key []byte, label string, serverNonce, clientNonce []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(transcript(label, serverNonce, clientNonce))
	return h.Sum(nil)
}

// ClientMAC is the client's proof: HMAC-SHA256(key, "tcpvsudp-remote v1 client" ||
// 0x00 || server nonce || client nonce).
func ClientMAC(key, serverNonce, clientNonce []byte) []byte {
	return mac(key, labelClient, serverNonce, clientNonce)
}

// ServerMAC is the server's proof: HMAC-SHA256(key, "tcpvsudp-remote v1 server" ||
// 0x00 || server nonce || client nonce).
func ServerMAC(key, serverNonce, clientNonce []byte) []byte {
	return mac(key, labelServer, serverNonce, clientNonce)
}

// verifyMAC compares in constant time.
func verifyMAC(want, got []byte) bool { return hmac.Equal(want, got) }

// newNonce returns nonceLen fresh random bytes.
func newNonce() ([]byte, error) {
	b := make([]byte, nonceLen)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("remote: random nonce: %w", err)
	}
	return b, nil
}

// nonceCache remembers client nonces of successful authentications for a window, so
// a nonce used twice is refused even if a server nonce ever repeated. It holds at
// most capacity nonces: when full, the oldest is forgotten early. Only key holders
// can add entries (a nonce is added after its MAC verified), so a flood of bad
// attempts cannot flush it.
type nonceCache struct {
	window time.Duration

	mu   sync.Mutex // guards ring, head, n, seen
	ring []nonceEntry
	head int // oldest entry
	n    int // entries held
	seen map[[nonceLen]byte]struct{}
}

type nonceEntry struct {
	k [nonceLen]byte
	t time.Time
}

func newNonceCache(capacity int, window time.Duration) *nonceCache {
	return &nonceCache{window: window, ring: make([]nonceEntry, capacity), seen: make(map[[nonceLen]byte]struct{}, capacity)}
}

// add records n at now and reports whether it was new (not seen within the window).
func (c *nonceCache) add(n []byte, now time.Time) bool {
	var k [nonceLen]byte
	copy(k[:], n)
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.n > 0 && now.Sub(c.ring[c.head].t) >= c.window { // forget what left the window
		c.pop()
	}
	if _, ok := c.seen[k]; ok {
		return false
	}
	if c.n == len(c.ring) {
		c.pop()
	}
	c.ring[(c.head+c.n)%len(c.ring)] = nonceEntry{k, now}
	c.n++
	c.seen[k] = struct{}{}
	return true
}

func (c *nonceCache) pop() {
	delete(c.seen, c.ring[c.head].k)
	c.head = (c.head + 1) % len(c.ring)
	c.n--
}

// len is the number of nonces held.
func (c *nonceCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// peerAllowed is the policy for a server without a key: only loopback peers, unless
// allowUnauthenticated. With a key every peer may try to authenticate.
func peerAllowed(peer net.Addr, haveKey, allowUnauthenticated bool) error {
	if haveKey || allowUnauthenticated {
		return nil
	}
	ip, ok := addrIP(peer)
	if ok && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("authentication required: this server has no key and accepts only loopback peers (start it with --key-file, or --allow-unauthenticated on a trusted network); peer %v", peer)
}

// addrIP returns a TCP or UDP address's IP, IPv4-mapped addresses unmapped.
func addrIP(a net.Addr) (netip.Addr, bool) {
	switch a := a.(type) {
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	case *net.UDPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}
