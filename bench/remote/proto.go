package remote

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tcpvsudp/tcpvsudp/internal/ctxwatch"
)

// Version is the control protocol version this build speaks (the "v" of every message).
const Version = 1

// MaxMsgLen is the largest control message body, in bytes. A frame announcing more
// is refused before its body is read.
const MaxMsgLen = 64 << 10

// frameHeaderLen is the 4-byte big-endian body length that precedes every body.
const frameHeaderLen = 4

// Limits of the JSON document inside a body, as doc.go states them.
const (
	maxDepth     = 8   // objects and arrays nested at most this deep
	maxKeyLen    = 64  // object keys: [a-z0-9_]{1,64}
	maxShortStr  = 128 // software, experiment, cap and limit names, bye reasons
	maxErrStr    = 1024
	maxCaps      = 32
	maxPorts     = 1024 // ports in accept and paths in start: at most one per stream
	nonceLen     = 32
	macLen       = 32
	tokenLen     = 16
	challengeLen = 16
)

// Message types, as the "type" field spells them.
const (
	TypeHello     = "hello"
	TypeChallenge = "challenge"
	TypeAuth      = "auth"
	TypeAuthOK    = "auth-ok"
	TypeRefuse    = "refuse"
	TypeTest      = "test"
	TypeAccept    = "accept"
	TypeStart     = "start"
	TypeHeartbeat = "heartbeat"
	TypeResults   = "results"
	TypeSent      = "sent"
	TypeBye       = "bye"
)

// Errors of the control protocol. Decoding and reading errors wrap one of these, so
// errors.Is tells them apart; after any of them the connection is out of step and
// must be closed.
var (
	ErrTooLarge    = errors.New("remote: control message too large")
	ErrMalformed   = errors.New("remote: malformed control message")
	ErrVersion     = errors.New("remote: unsupported control protocol version")
	ErrUnknownType = errors.New("remote: unknown control message type")
	ErrUnexpected  = errors.New("remote: unexpected control message")
)

// A Msg is one control message: one of *Hello, *Challenge, *Auth, *AuthOK, *Refuse,
// *Test, *Accept, *Start, *Heartbeat, *Sent, *ResultsMsg, *Bye.
type Msg interface {
	// Type is the message's "type" on the wire.
	Type() string
	validate() error
}

// header is the part every message carries. Encode fills it in.
type header struct {
	V    int    `json:"v"`
	Kind string `json:"type"`
}

// Hello opens a session (client to server).
type Hello struct {
	header
	Software string   `json:"software"`       // e.g. "tcpvsudp 0.3", informational
	Caps     []string `json:"caps,omitempty"` // optional features; v1 defines none
}

// Challenge answers Hello (server to client) with the server's fresh nonce.
type Challenge struct {
	header
	Nonce    []byte   `json:"nonce"` // 32 random bytes, fresh for this connection
	Auth     string   `json:"auth"`  // "hmac-sha256", or "none" when the server has no key
	Software string   `json:"software"`
	Caps     []string `json:"caps,omitempty"`
}

// Auth proves the client holds the key (client to server).
type Auth struct {
	header
	Nonce []byte `json:"nonce"`         // the client's 32 random bytes
	MAC   []byte `json:"mac,omitempty"` // ClientMAC; absent when the challenge said "none"
}

// AuthOK accepts the client and proves the server holds the key too (server to client).
type AuthOK struct {
	header
	MAC    []byte     `json:"mac,omitempty"` // ServerMAC; absent when the challenge said "none"
	Limits WireLimits `json:"limits"`        // what this server will accept
}

// Refuse ends a handshake, or refuses one test, with the reason. ID is the refused
// test's id, or 0 for the session itself (the server then closes the connection).
type Refuse struct {
	header
	ID    uint32 `json:"id,omitempty"`
	Limit string `json:"limit,omitempty"` // the limit's flag name ("max-duration"), when a limit refused
	Error string `json:"error"`
}

// Test asks for one test (client to server). See TestRequest for the fields.
type Test struct {
	header
	ID         uint32          `json:"id"`
	Experiment string          `json:"experiment"`
	Transport  string          `json:"transport"`
	Size       int             `json:"size"`
	DurationMS uint64          `json:"duration_ms"`
	RateBps    uint64          `json:"rate_bps"`
	Streams    int             `json:"streams"`
	Direction  string          `json:"direction"`
	Count      uint64          `json:"count,omitempty"`
	Params     json.RawMessage `json:"params,omitempty"`
	Listen     bool            `json:"listen,omitempty"` // with CapListen only
	// Sockets shape both ends' data sockets (SocketOptions); only to a server that
	// listed CapSockets. Absent: every default.
	Sockets *SocketOptions `json:"sockets,omitempty"`
}

// Accept grants a test (server to client): where its data goes and its token.
type Accept struct {
	header
	ID    uint32   `json:"id"`
	Ports []uint16 `json:"ports"` // tcp: one listener; udp: one socket per stream
	Token []byte   `json:"token"` // 16 random bytes that open every data connection and datagram
}

// Start says the data path is ready (client to server, with the UDP path proofs),
// then that the test runs (server to client, without).
type Start struct {
	header
	ID    uint32   `json:"id"`
	Paths [][]byte `json:"paths,omitempty"` // udp: per socket, the 16-byte challenge it received
}

// Heartbeat says the sender is alive; each side sends one at least every
// HeartbeatInterval while a test runs, and may between tests.
type Heartbeat struct {
	header
}

// Sent says the server's senders are done, during a test (server to client, only
// when both sides listed CapSent): Counters, the runner's own, say what they sent,
// so the client's receiver knows what to wait for before the results exchange.
type Sent struct {
	header
	ID       uint32          `json:"id"`
	Counters json.RawMessage `json:"counters,omitempty"`
}

// ResultsMsg carries one side's measurement of a test: the client's first, then the
// server's.
type ResultsMsg struct {
	header
	ID       uint32          `json:"id"`
	Complete bool            `json:"complete"`
	Error    string          `json:"error,omitempty"`
	Overlap  int             `json:"overlap,omitempty"` // server: most other tests running at once during this one
	Counters json.RawMessage `json:"counters,omitempty"`
}

// Bye ends a session, from either side.
type Bye struct {
	header
	Reason string `json:"reason,omitempty"`
}

// WireLimits are the server's limits as auth-ok states them (durations in ms).
type WireLimits struct {
	MaxSessions   int    `json:"max_sessions"`
	MaxStreams    int    `json:"max_streams"`
	MaxDurationMS uint64 `json:"max_duration_ms"`
	MaxRateBps    uint64 `json:"max_rate_bps"`
	MaxSize       int    `json:"max_size"`
	IdleTimeoutMS uint64 `json:"idle_timeout_ms"`
}

// Type returns the message's "type" on the wire; so do the other messages' Type.
func (*Hello) Type() string      { return TypeHello }
func (*Challenge) Type() string  { return TypeChallenge }
func (*Auth) Type() string       { return TypeAuth }
func (*AuthOK) Type() string     { return TypeAuthOK }
func (*Refuse) Type() string     { return TypeRefuse }
func (*Test) Type() string       { return TypeTest }
func (*Accept) Type() string     { return TypeAccept }
func (*Start) Type() string      { return TypeStart }
func (*Heartbeat) Type() string  { return TypeHeartbeat }
func (*ResultsMsg) Type() string { return TypeResults }
func (*Sent) Type() string       { return TypeSent }
func (*Bye) Type() string        { return TypeBye }

// newMsg returns an empty message of the named type, or nil.
func newMsg(kind string) Msg {
	switch kind {
	case TypeHello:
		return &Hello{}
	case TypeChallenge:
		return &Challenge{}
	case TypeAuth:
		return &Auth{}
	case TypeAuthOK:
		return &AuthOK{}
	case TypeRefuse:
		return &Refuse{}
	case TypeTest:
		return &Test{}
	case TypeAccept:
		return &Accept{}
	case TypeStart:
		return &Start{}
	case TypeHeartbeat:
		return &Heartbeat{}
	case TypeResults:
		return &ResultsMsg{}
	case TypeSent:
		return &Sent{}
	case TypeBye:
		return &Bye{}
	}
	return nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// checkText checks a string field: at most max bytes, no character textRefused
// refuses (so that a peer's text cannot drive a terminal, nor hide or reorder what it
// shows), empty allowed unless required.
func checkText(field, s string, max int, required bool) error {
	if required && s == "" {
		return malformed("%s: required", field)
	}
	if len(s) > max {
		return malformed("%s: %d bytes, at most %d", field, len(s), max)
	}
	for _, r := range s {
		if textRefused(r) {
			return malformed("%s: control character %U", field, r)
		}
	}
	return nil
}

// textRefused reports whether a text field may not carry r (doc.go): the C0
// controls and DEL, the C1 controls U+0080..U+009F (among them the 8-bit CSI,
// U+009B), and the invisible characters that break, reorder or hide text: the
// Arabic letter mark U+061C, U+200B..U+200F (zero widths, LRM, RLM),
// U+2028..U+202E (line and paragraph separators, bidirectional embeddings and
// overrides), U+2060..U+206F (word joiner, invisible operators, bidirectional
// isolates), U+FEFF (zero-width no-break space) and U+FFF9..U+FFFB (interlinear
// annotations), and the tags U+E0000..U+E007F. A fixed list rather than Unicode's
// tables, so that builds of different Unicode versions agree on what is malformed.
func textRefused(r rune) bool {
	switch {
	case r < 0x20, r >= 0x7f && r <= 0x9f:
		return true
	case r == 0x061c, r >= 0x200b && r <= 0x200f, r >= 0x2028 && r <= 0x202e, r >= 0x2060 && r <= 0x206f:
		return true
	case r == 0xfeff, r >= 0xfff9 && r <= 0xfffb, r >= 0xe0000 && r <= 0xe007f:
		return true
	}
	return false
}

// Printable returns s fit for a terminal, whoever wrote it: every character that
// textRefused refuses or that is not printable (unicode.IsPrint, and the ASCII space)
// is shown escaped as Go writes it in a string literal (\x1b, \u009b, \u202e,
// \U000e0041), and so is each byte of invalid UTF-8 (\xff); the rest is left as it
// is. The client passes every word of a server it shows or reports through it.
func Printable(s string) string {
	ok := true
	for _, r := range s {
		if !printableRune(r) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case printableRune(r):
			b.WriteString(s[i : i+n])
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += n
	}
	return b.String()
}

// printableRune reports whether Printable leaves r as it is.
func printableRune(r rune) bool {
	return r != utf8.RuneError && !textRefused(r) && (r == ' ' || unicode.IsPrint(r))
}

// checkName checks a name field: 1..max bytes of [a-z0-9.-].
func checkName(field, s string, max int) error {
	if s == "" || len(s) > max {
		return malformed("%s: must be 1..%d bytes of [a-z0-9.-], got %q", field, max, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return malformed("%s: must be 1..%d bytes of [a-z0-9.-], got %q", field, max, s)
		}
	}
	return nil
}

func checkBytes(field string, b []byte, n int) error {
	if len(b) != n {
		return malformed("%s: must be %d bytes (base64), got %d", field, n, len(b))
	}
	return nil
}

func checkCaps(caps []string) error {
	if len(caps) > maxCaps {
		return malformed("caps: %d entries, at most %d", len(caps), maxCaps)
	}
	for _, c := range caps {
		if err := checkName("caps", c, maxShortStr); err != nil {
			return err
		}
	}
	return nil
}

func (m *Hello) validate() error {
	if err := checkText("software", m.Software, maxShortStr, false); err != nil {
		return err
	}
	return checkCaps(m.Caps)
}

func (m *Challenge) validate() error {
	if err := checkBytes("nonce", m.Nonce, nonceLen); err != nil {
		return err
	}
	if m.Auth != AuthHMAC && m.Auth != AuthNone {
		return malformed("auth: must be %q or %q, got %q", AuthHMAC, AuthNone, m.Auth)
	}
	if err := checkText("software", m.Software, maxShortStr, false); err != nil {
		return err
	}
	return checkCaps(m.Caps)
}

func (m *Auth) validate() error {
	if err := checkBytes("nonce", m.Nonce, nonceLen); err != nil {
		return err
	}
	if m.MAC != nil {
		return checkBytes("mac", m.MAC, macLen)
	}
	return nil
}

func (m *AuthOK) validate() error {
	if m.MAC != nil {
		if err := checkBytes("mac", m.MAC, macLen); err != nil {
			return err
		}
	}
	l := m.Limits
	if l.MaxSessions < 0 || l.MaxStreams < 0 || l.MaxSize < 0 {
		return malformed("limits: negative")
	}
	// Compared in ms, as the wire has them, before anyone makes a time.Duration of them.
	if l.MaxDurationMS > maxWireDurationMS {
		return malformed("limits.max_duration_ms: must be 0..%d, got %d", uint64(maxWireDurationMS), l.MaxDurationMS)
	}
	if l.IdleTimeoutMS > maxWireDurationMS {
		return malformed("limits.idle_timeout_ms: must be 0..%d, got %d", uint64(maxWireDurationMS), l.IdleTimeoutMS)
	}
	return nil
}

func (m *Refuse) validate() error {
	if m.Limit != "" {
		if err := checkName("limit", m.Limit, maxShortStr); err != nil {
			return err
		}
	}
	return checkText("error", m.Error, maxErrStr, true)
}

func (m *Test) validate() error {
	if m.ID == 0 {
		return malformed("id: must be 1..4294967295")
	}
	if err := checkName("experiment", m.Experiment, maxShortStr); err != nil {
		return err
	}
	if m.Transport != "tcp" && m.Transport != "udp" {
		return malformed("transport: must be \"tcp\" or \"udp\", got %q", m.Transport)
	}
	if m.Size < 1 {
		return malformed("size: must be at least 1, got %d", m.Size)
	}
	if m.DurationMS < 1 || m.DurationMS > maxWireDurationMS {
		return malformed("duration_ms: must be 1..%d, got %d", uint64(maxWireDurationMS), m.DurationMS)
	}
	if m.Streams < 1 || m.Streams > maxPorts {
		return malformed("streams: must be 1..%d, got %d", maxPorts, m.Streams)
	}
	switch Direction(m.Direction) {
	case Forward, Reverse, Bidir:
	default:
		return malformed("direction: must be forward, reverse or bidir, got %q", m.Direction)
	}
	if m.Params != nil && (len(m.Params) == 0 || m.Params[0] != '{') {
		return malformed("params: must be a JSON object")
	}
	if m.Sockets != nil {
		return m.Sockets.validate()
	}
	return nil
}

// maxWireDurationMS is the longest duration the wire carries: a day, far beyond
// any sane limit, and small enough that time.Duration cannot overflow.
const maxWireDurationMS = 24 * 3600 * 1000

func (m *Accept) validate() error {
	if m.ID == 0 {
		return malformed("id: must be 1..4294967295")
	}
	if len(m.Ports) == 0 || len(m.Ports) > maxPorts {
		return malformed("ports: must list 1..%d ports, got %d", maxPorts, len(m.Ports))
	}
	for _, p := range m.Ports {
		if p == 0 {
			return malformed("ports: port 0")
		}
	}
	return checkBytes("token", m.Token, tokenLen)
}

func (m *Start) validate() error {
	if m.ID == 0 {
		return malformed("id: must be 1..4294967295")
	}
	if len(m.Paths) > maxPorts {
		return malformed("paths: %d entries, at most %d", len(m.Paths), maxPorts)
	}
	for _, p := range m.Paths {
		if err := checkBytes("paths", p, challengeLen); err != nil {
			return err
		}
	}
	return nil
}

func (m *Heartbeat) validate() error { return nil }

func (m *ResultsMsg) validate() error {
	if m.ID == 0 {
		return malformed("id: must be 1..4294967295")
	}
	if m.Overlap < 0 {
		return malformed("overlap: negative")
	}
	if m.Counters != nil && (len(m.Counters) == 0 || m.Counters[0] != '{') {
		return malformed("counters: must be a JSON object")
	}
	return checkText("error", m.Error, maxErrStr, false)
}

func (m *Sent) validate() error {
	if m.ID == 0 {
		return malformed("id: must be 1..4294967295")
	}
	if m.Counters != nil && (len(m.Counters) == 0 || m.Counters[0] != '{') {
		return malformed("counters: must be a JSON object")
	}
	return nil
}

func (m *Bye) validate() error { return checkText("reason", m.Reason, maxErrStr, false) }

// Encode returns the frame of m: its 4-byte big-endian length, then its JSON body. It
// fills in the version and type, and checks m as Decode would.
func Encode(m Msg) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("remote: encode %s: %w", m.Type(), err)
	}
	h := header{V: Version, Kind: m.Type()}
	setHeader(m, h)
	var buf bytes.Buffer
	buf.Write(make([]byte, frameHeaderLen))
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("remote: encode %s: %w", m.Type(), err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	n := len(b) - frameHeaderLen
	if n > MaxMsgLen {
		return nil, fmt.Errorf("%w: %s is %d bytes, at most %d", ErrTooLarge, m.Type(), n, MaxMsgLen)
	}
	binary.BigEndian.PutUint32(b, uint32(n))
	return b, nil
}

func setHeader(m Msg, h header) {
	switch m := m.(type) {
	case *Hello:
		m.header = h
	case *Challenge:
		m.header = h
	case *Auth:
		m.header = h
	case *AuthOK:
		m.header = h
	case *Refuse:
		m.header = h
	case *Test:
		m.header = h
	case *Accept:
		m.header = h
	case *Start:
		m.header = h
	case *Heartbeat:
		m.header = h
	case *ResultsMsg:
		m.header = h
	case *Sent:
		m.header = h
	case *Bye:
		m.header = h
	}
}

// Decode parses one message body (the bytes after the length). It accepts only what
// doc.go describes: valid UTF-8, one JSON object, unique lowercase keys, "v" equal to
// Version, a known "type", no field that type does not define, and field values in
// range. It never panics.
func Decode(body []byte) (Msg, error) {
	if len(body) == 0 {
		return nil, malformed("empty body")
	}
	if len(body) > MaxMsgLen {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(body), MaxMsgLen)
	}
	if !utf8.Valid(body) {
		return nil, malformed("body is not valid UTF-8")
	}
	if err := checkJSON(body); err != nil {
		return nil, err
	}
	var h struct {
		V    *json.Number `json:"v"`
		Type *string      `json:"type"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return nil, malformed("%v", err)
	}
	if h.V == nil {
		return nil, malformed("no \"v\" field")
	}
	if string(*h.V) != fmt.Sprint(Version) {
		return nil, fmt.Errorf("%w: peer speaks %s, this build speaks %d", ErrVersion, truncate(string(*h.V), 32), Version)
	}
	if h.Type == nil {
		return nil, malformed("no \"type\" field")
	}
	m := newMsg(*h.Type)
	if m == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownType, truncate(*h.Type, 32))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(m); err != nil {
		return nil, malformed("%s: %v", *h.Type, err)
	}
	if err := normalize(m); err != nil {
		return nil, err
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", *h.Type, err)
	}
	return m, nil
}

// normalize rewrites the free-form objects of m without insignificant space, and
// empty lists as absent ones, so that Decode(Encode(m)) equals m.
func normalize(m Msg) error {
	var raw *json.RawMessage
	switch m := m.(type) {
	case *Hello:
		if len(m.Caps) == 0 {
			m.Caps = nil
		}
		return nil
	case *Challenge:
		if len(m.Caps) == 0 {
			m.Caps = nil
		}
		return nil
	case *Start:
		if len(m.Paths) == 0 {
			m.Paths = nil
		}
		return nil
	case *Test:
		raw = &m.Params
	case *ResultsMsg:
		raw = &m.Counters
	case *Sent:
		raw = &m.Counters
	default:
		return nil
	}
	if *raw == nil {
		return nil
	}
	if string(*raw) == "null" {
		*raw = nil
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, *raw); err != nil {
		return malformed("%v", err)
	}
	*raw = buf.Bytes()
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// checkJSON walks body's tokens: exactly one JSON object, nested at most maxDepth
// deep, keys [a-z0-9_]{1,64} and unique within each object, nothing after it.
// Lowercase keys make Go's case-insensitive field matching agree with an exact one.
func checkJSON(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return malformed("%v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return malformed("body must be a JSON object")
	}
	if err := walkObject(dec, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return malformed("data after the JSON object")
	}
	return nil
}

// walkObject reads an object's members after its '{' and its closing '}'.
func walkObject(dec *json.Decoder, depth int) error {
	seen := map[string]bool{}
	for {
		tok, err := dec.Token()
		if err != nil {
			return malformed("%v", err)
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			return nil
		}
		key, ok := tok.(string)
		if !ok {
			return malformed("object key expected")
		}
		if !validKey(key) {
			return malformed("key %q: keys must be 1..%d bytes of [a-z0-9_]", truncate(key, 32), maxKeyLen)
		}
		if seen[key] {
			return malformed("duplicate key %q", key)
		}
		seen[key] = true
		if err := walkValue(dec, depth); err != nil {
			return err
		}
	}
}

// walkValue reads one value; depth is the depth of the container holding it.
func walkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return malformed("%v", err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	if depth+1 > maxDepth {
		return malformed("nested deeper than %d", maxDepth)
	}
	switch d {
	case '{':
		return walkObject(dec, depth+1)
	case '[':
		for dec.More() {
			if err := walkValue(dec, depth+1); err != nil {
				return err
			}
		}
		tok, err := dec.Token()
		if err != nil {
			return malformed("%v", err)
		}
		if d, ok := tok.(json.Delim); !ok || d != ']' {
			return malformed("array not closed")
		}
		return nil
	}
	return malformed("unexpected %v", d)
}

func validKey(k string) bool {
	if k == "" || len(k) > maxKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// ReadFrame reads one frame from r and returns its body. A length of 0 or above
// MaxMsgLen is an error before any body byte is read; a short body is
// io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader) ([]byte, error) {
	var hdr [frameHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return nil, malformed("zero-length frame")
	}
	if n > MaxMsgLen {
		return nil, fmt.Errorf("%w: frame announces %d bytes, at most %d", ErrTooLarge, n, MaxMsgLen)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return body, nil
}

// ReadMsg reads and decodes one frame from r.
func ReadMsg(r io.Reader) (Msg, error) {
	body, err := ReadFrame(r)
	if err != nil {
		return nil, err
	}
	return Decode(body)
}

// A ControlConn reads and writes control messages on one connection with deadlines:
// each read must complete within its timeout, each write within WriteTimeout, and
// nothing goes past the session deadline. One goroutine may read while others write.
type ControlConn struct {
	conn net.Conn

	// WriteTimeout bounds each WriteMsg; 0 means defaultWriteTimeout.
	WriteTimeout time.Duration

	mu       sync.Mutex // guards deadline; serialises writes
	deadline time.Time  // the session deadline; zero = none
}

// defaultWriteTimeout bounds a control write: a peer that stops reading cannot hold
// a writer longer.
const defaultWriteTimeout = 5 * time.Second

// NewControlConn wraps c. The caller keeps ownership of c (Close closes it).
func NewControlConn(c net.Conn) *ControlConn { return &ControlConn{conn: c} }

// Conn returns the underlying connection.
func (c *ControlConn) Conn() net.Conn { return c.conn }

// Close closes the underlying connection.
func (c *ControlConn) Close() error { return c.conn.Close() }

// SetSessionDeadline sets the time after which every read and write fails; zero
// removes it.
func (c *ControlConn) SetSessionDeadline(t time.Time) {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
}

func (c *ControlConn) bound(timeout time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.boundLocked(timeout)
}

func (c *ControlConn) boundLocked(timeout time.Duration) time.Time {
	t := time.Now().Add(timeout)
	if !c.deadline.IsZero() && c.deadline.Before(t) {
		t = c.deadline
	}
	return t
}

// ReadMsg reads one message. It fails when timeout passes, the session deadline
// passes, or ctx is done (then with ctx's error wrapped). The deadline is set once per
// message: a peer trickling bytes cannot stretch it.
func (c *ControlConn) ReadMsg(ctx context.Context, timeout time.Duration) (Msg, error) {
	if err := c.conn.SetReadDeadline(c.bound(timeout)); err != nil {
		return nil, err
	}
	// Waited for: a late deadline would cut short the next read, under another context.
	stop := ctxwatch.OnDone(ctx, func() { c.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	m, err := ReadMsg(c.conn)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("remote: control read: %w", context.Cause(ctx))
	}
	return m, err
}

// WriteMsg encodes m and writes it whole within the write timeout.
func (c *ControlConn) WriteMsg(m Msg) error {
	b, err := Encode(m)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	to := c.WriteTimeout
	if to <= 0 {
		to = defaultWriteTimeout
	}
	if err := c.conn.SetWriteDeadline(c.boundLocked(to)); err != nil {
		return err
	}
	if _, err := c.conn.Write(b); err != nil {
		return fmt.Errorf("remote: control write %s: %w", m.Type(), err)
	}
	return nil
}

// poke makes a read blocked in ReadMsg return at once.
func (c *ControlConn) poke() { c.conn.SetReadDeadline(time.Unix(1, 0)) }

// maxSkippedHeartbeats bounds the heartbeats expect skips while it waits.
const maxSkippedHeartbeats = 64

// expect reads a message and returns it as T, or an error naming what came instead.
// Heartbeats are skipped (at most maxSkippedHeartbeats; they do not extend timeout).
// A Refuse is returned as a *RefusedError.
func expect[T Msg](ctx context.Context, c *ControlConn, timeout time.Duration) (T, error) {
	var zero T
	deadline := time.Now().Add(timeout)
	var m Msg
	for i := 0; ; i++ {
		var err error
		m, err = c.ReadMsg(ctx, time.Until(deadline))
		if err != nil {
			return zero, err
		}
		if _, ok := m.(*Heartbeat); !ok || i >= maxSkippedHeartbeats || zero.Type() == TypeHeartbeat {
			break
		}
	}
	if t, ok := m.(T); ok {
		return t, nil
	}
	if r, ok := m.(*Refuse); ok {
		return zero, &RefusedError{ID: r.ID, Limit: r.Limit, Reason: r.Error}
	}
	if b, ok := m.(*Bye); ok {
		return zero, fmt.Errorf("%w: peer said bye: %s", ErrUnexpected, b.Reason)
	}
	return zero, fmt.Errorf("%w: got %s, want %s", ErrUnexpected, m.Type(), zero.Type())
}

// isProtocolError reports whether err is the peer's fault at the protocol level (a
// message that does not decode, or comes out of turn), which deserves a refusal
// saying so before the connection closes.
func isProtocolError(err error) bool {
	return errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrVersion) ||
		errors.Is(err, ErrUnknownType) || errors.Is(err, ErrUnexpected)
}

// RefusedError is a refusal from the server: a limit, a failed authentication, or a
// test it cannot run.
type RefusedError struct {
	ID     uint32 // the refused test, or 0 for the session
	Limit  string // the limit's flag name, when a limit refused
	Reason string // the server's words
}

func (e *RefusedError) Error() string {
	reason := Printable(e.Reason) // checkText refused the worst at decode already
	if strings.HasPrefix(reason, "refused") {
		return "remote: server " + reason
	}
	return "remote: server refused: " + reason
}
