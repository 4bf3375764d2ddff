package remote

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampleMsgs holds one valid message of every type.
func sampleMsgs() []Msg {
	n32 := bytes.Repeat([]byte{7}, 32)
	n16 := bytes.Repeat([]byte{9}, 16)
	return []Msg{
		&Hello{Software: "tcpvsudp test", Caps: []string{"x-feature"}},
		&Challenge{Nonce: n32, Auth: AuthHMAC, Software: "srv"},
		&Challenge{Nonce: n32, Auth: AuthNone},
		&Auth{Nonce: n32, MAC: n32},
		&Auth{Nonce: n32},
		&AuthOK{MAC: n32, Limits: DefaultLimits().wire()},
		&Refuse{ID: 3, Limit: "max-duration", Error: "refused: duration 120s exceeds the server's --max-duration 60s"},
		&Refuse{Error: "authentication failed: wrong key"},
		&Test{ID: 1, Experiment: "stream", Transport: "udp", Size: 1200, DurationMS: 3000, RateBps: 1e6, Streams: 2, Direction: "bidir", Count: 5, Params: json.RawMessage(`{"a":[1,2,{"b":"<&>"}]}`)},
		&Test{ID: 2, Experiment: "bench.stream", Transport: "udp", Size: 1024, DurationMS: 1000, Streams: 1, Direction: "forward",
			Sockets: &SocketOptions{RecvBuffer: 1 << 20, SendBuffer: 1 << 19, NoGSO: true, BusyPoll: true, Batch: 1}},
		&Accept{ID: 1, Ports: []uint16{4000, 4001}, Token: n16},
		&Start{ID: 1, Paths: [][]byte{n16, n16}},
		&Start{ID: 1},
		&Heartbeat{},
		&ResultsMsg{ID: 1, Complete: true, Overlap: 2, Counters: json.RawMessage(`{"recv_bytes":10,"x":{"y":1.5}}`)},
		&ResultsMsg{ID: 2, Error: "stream 0: receive: connection reset"},
		&Sent{ID: 3, Counters: json.RawMessage(`{"sent":[500,0]}`)},
		&Sent{ID: 4},
		&Bye{Reason: "server shutting down"},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, m := range sampleMsgs() {
		t.Run(m.Type(), func(t *testing.T) {
			frame, err := Encode(m)
			if err != nil {
				t.Fatalf("Encode(%+v): %v", m, err)
			}
			if n := binary.BigEndian.Uint32(frame); int(n) != len(frame)-4 {
				t.Fatalf("length prefix %d, body %d bytes", n, len(frame)-4)
			}
			got, err := ReadMsg(bytes.NewReader(frame))
			if err != nil {
				t.Fatalf("ReadMsg(%s): %v", frame[4:], err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("round trip of %s:\n got %#v\nwant %#v", frame[4:], got, m)
			}
		})
	}
}

// TestWireExample pins the encoding a non-Go implementation must produce and read.
func TestWireExample(t *testing.T) {
	frame, err := Encode(&Accept{ID: 7, Ports: []uint16{5201}, Token: bytes.Repeat([]byte{0xff}, 16)})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":1,"type":"accept","id":7,"ports":[5201],"token":"/////////////////////w=="}`
	if got := string(frame[4:]); got != want {
		t.Errorf("body:\n got %s\nwant %s", got, want)
	}
	if !bytes.Equal(frame[:4], []byte{0, 0, 0, byte(len(want))}) {
		t.Errorf("length prefix % x, want 00 00 00 %02x", frame[:4], len(want))
	}
}

func TestDecodeRejects(t *testing.T) {
	n32 := `"` + strings.Repeat("A", 43) + `="` // 32 bytes
	for _, tc := range []struct {
		name, body string
		want       error
	}{
		{"empty", ``, ErrMalformed},
		{"not json", `hello`, ErrMalformed},
		{"array", `[{"v":1,"type":"heartbeat"}]`, ErrMalformed},
		{"two objects", `{"v":1,"type":"heartbeat"}{"v":1,"type":"heartbeat"}`, ErrMalformed},
		{"trailing garbage", `{"v":1,"type":"heartbeat"} x`, ErrMalformed},
		{"no version", `{"type":"heartbeat"}`, ErrMalformed},
		{"version 2", `{"v":2,"type":"heartbeat"}`, ErrVersion},
		{"version 0", `{"v":0,"type":"heartbeat"}`, ErrVersion},
		{"version float", `{"v":1.0,"type":"heartbeat"}`, ErrVersion},
		{"version string", `{"v":"1","type":"heartbeat"}`, ErrMalformed},
		{"no type", `{"v":1}`, ErrMalformed},
		{"unknown type", `{"v":1,"type":"shell"}`, ErrUnknownType},
		{"type not a string", `{"v":1,"type":7}`, ErrMalformed},
		{"unknown field", `{"v":1,"type":"heartbeat","x":1}`, ErrMalformed},
		{"duplicate key", `{"v":1,"type":"heartbeat","type":"bye"}`, ErrMalformed},
		{"uppercase key", `{"v":1,"type":"bye","Type":"heartbeat"}`, ErrMalformed},
		{"duplicate nested key", `{"v":1,"type":"results","id":1,"complete":true,"counters":{"a":1,"a":2}}`, ErrMalformed},
		{"too deep", `{"v":1,"type":"results","id":1,"complete":true,"counters":{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":1}}}}}}}}}`, ErrMalformed},
		{"invalid utf-8", "{\"v\":1,\"type\":\"bye\",\"reason\":\"\xff\"}", ErrMalformed},
		{"control character", `{"v":1,"type":"bye","reason":"a\u001b[2Jb"}`, ErrMalformed},
		{"short nonce", `{"v":1,"type":"auth","nonce":"AAAA"}`, ErrMalformed},
		{"bad base64", `{"v":1,"type":"auth","nonce":"!!!"}`, ErrMalformed},
		{"short mac", `{"v":1,"type":"auth","nonce":` + n32 + `,"mac":"AAAA"}`, ErrMalformed},
		{"auth method", `{"v":1,"type":"challenge","nonce":` + n32 + `,"auth":"md5","software":""}`, ErrMalformed},
		{"test id 0", `{"v":1,"type":"test","id":0,"experiment":"stream","transport":"tcp","size":1,"duration_ms":1,"rate_bps":0,"streams":1,"direction":"forward"}`, ErrMalformed},
		{"test transport", `{"v":1,"type":"test","id":1,"experiment":"stream","transport":"sctp","size":1,"duration_ms":1,"rate_bps":0,"streams":1,"direction":"forward"}`, ErrMalformed},
		{"test direction", `{"v":1,"type":"test","id":1,"experiment":"stream","transport":"tcp","size":1,"duration_ms":1,"rate_bps":0,"streams":1,"direction":"up"}`, ErrMalformed},
		{"test negative size", `{"v":1,"type":"test","id":1,"experiment":"stream","transport":"tcp","size":-1,"duration_ms":1,"rate_bps":0,"streams":1,"direction":"forward"}`, ErrMalformed},
		{"test negative rate", `{"v":1,"type":"test","id":1,"experiment":"stream","transport":"tcp","size":1,"duration_ms":1,"rate_bps":-5,"streams":1,"direction":"forward"}`, ErrMalformed},
		{"test huge duration", `{"v":1,"type":"test","id":1,"experiment":"stream","transport":"tcp","size":1,"duration_ms":99999999999999,"rate_bps":0,"streams":1,"direction":"forward"}`, ErrMalformed},
		{"test exponent", `{"v":1,"type":"test","id":1,"experiment":"stream","transport":"tcp","size":1e3,"duration_ms":1,"rate_bps":0,"streams":1,"direction":"forward"}`, ErrMalformed},
		{"test experiment name", `{"v":1,"type":"test","id":1,"experiment":"../etc","transport":"tcp","size":1,"duration_ms":1,"rate_bps":0,"streams":1,"direction":"forward"}`, ErrMalformed},
		{"test params not object", `{"v":1,"type":"test","id":1,"experiment":"stream","transport":"tcp","size":1,"duration_ms":1,"rate_bps":0,"streams":1,"direction":"forward","params":[1]}`, ErrMalformed},
		{"test sockets negative buffer", `{"v":1,"type":"test","id":1,"experiment":"stream","transport":"udp","size":1,"duration_ms":1,"rate_bps":0,"streams":1,"direction":"forward","sockets":{"recv_buffer":-1}}`, ErrMalformed},
		{"test sockets huge buffer", `{"v":1,"type":"test","id":1,"experiment":"stream","transport":"udp","size":1,"duration_ms":1,"rate_bps":0,"streams":1,"direction":"forward","sockets":{"send_buffer":2000000000}}`, ErrMalformed},
		{"test sockets batch", `{"v":1,"type":"test","id":1,"experiment":"stream","transport":"udp","size":1,"duration_ms":1,"rate_bps":0,"streams":1,"direction":"forward","sockets":{"batch":1025}}`, ErrMalformed},
		{"test sockets unknown option", `{"v":1,"type":"test","id":1,"experiment":"stream","transport":"udp","size":1,"duration_ms":1,"rate_bps":0,"streams":1,"direction":"forward","sockets":{"nodelay":true}}`, ErrMalformed},
		{"test sockets not object", `{"v":1,"type":"test","id":1,"experiment":"stream","transport":"udp","size":1,"duration_ms":1,"rate_bps":0,"streams":1,"direction":"forward","sockets":[1]}`, ErrMalformed},
		{"accept port 0", `{"v":1,"type":"accept","id":1,"ports":[0],"token":"AAAAAAAAAAAAAAAAAAAAAA=="}`, ErrMalformed},
		{"accept port too big", `{"v":1,"type":"accept","id":1,"ports":[70000],"token":"AAAAAAAAAAAAAAAAAAAAAA=="}`, ErrMalformed},
		{"accept no ports", `{"v":1,"type":"accept","id":1,"ports":[],"token":"AAAAAAAAAAAAAAAAAAAAAA=="}`, ErrMalformed},
		{"refuse without error", `{"v":1,"type":"refuse"}`, ErrMalformed},
		{"results counters not object", `{"v":1,"type":"results","id":1,"complete":true,"counters":"x"}`, ErrMalformed},
		{"null", `null`, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode([]byte(tc.body))
			if !errors.Is(err, tc.want) {
				t.Errorf("Decode(%s) = %#v, %v; want error %v", tc.body, m, err, tc.want)
			}
		})
	}
}

// onlyReader fails the test if more than limit bytes are read from it.
type onlyReader struct {
	tb    testing.TB
	r     io.Reader
	limit int
	n     int
}

func (o *onlyReader) Read(p []byte) (int, error) {
	n, err := o.r.Read(p)
	o.n += n
	if o.n > o.limit {
		o.tb.Errorf("read %d bytes, want at most %d", o.n, o.limit)
	}
	return n, err
}

func TestReadFrame(t *testing.T) {
	frame := func(n uint32, body string) []byte {
		b := binary.BigEndian.AppendUint32(nil, n)
		return append(b, body...)
	}
	for _, tc := range []struct {
		name  string
		in    []byte
		limit int // bytes ReadFrame may read
		want  error
	}{
		{"oversized refused before the body", frame(MaxMsgLen+1, strings.Repeat("x", 100)), 4, ErrTooLarge},
		{"4 GiB refused before the body", frame(0xffffffff, "x"), 4, ErrTooLarge},
		{"zero length", frame(0, ""), 4, ErrMalformed},
		{"short body", frame(10, "abc"), 7, io.ErrUnexpectedEOF},
		{"short header", []byte{0, 0}, 2, io.ErrUnexpectedEOF},
		{"nothing", nil, 0, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &onlyReader{tb: t, r: bytes.NewReader(tc.in), limit: tc.limit}
			_, err := ReadFrame(r)
			if !errors.Is(err, tc.want) {
				t.Errorf("ReadFrame(% x...) error %v, want %v", tc.in[:min(len(tc.in), 8)], err, tc.want)
			}
		})
	}
	// The largest legal frame is read whole.
	body := `{"v":1,"type":"bye","reason":"` + strings.Repeat("x", 900) + `"}`
	b, err := ReadFrame(bytes.NewReader(frame(uint32(len(body)), body)))
	if err != nil || string(b) != body {
		t.Errorf("ReadFrame of a %d-byte frame: %v", len(body), err)
	}
}

func TestEncodeRefusesOversized(t *testing.T) {
	_, err := Encode(&ResultsMsg{ID: 1, Counters: json.RawMessage(`{"x":"` + strings.Repeat("a", MaxMsgLen) + `"}`)})
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("Encode of a message above MaxMsgLen: %v, want ErrTooLarge", err)
	}
	if _, err := Encode(&Refuse{}); !errors.Is(err, ErrMalformed) {
		t.Errorf("Encode of a refuse without error: %v, want ErrMalformed", err)
	}
}

// TestControlConnDeadline: a peer that sends half a frame, or trickles one byte at a
// time, cannot hold a reader past its timeout (the deadline is set once per message):
// the read fails not before the timeout (exact), and not long after it (a bound a
// loaded machine holds; the figure is logged).
func TestControlConnDeadline(t *testing.T) {
	frame, _ := Encode(&Bye{Reason: strings.Repeat("r", 200)})
	for _, tc := range []struct {
		name string
		send func(c net.Conn)
	}{
		{"stalled after 3 bytes", func(c net.Conn) { c.Write(frame[:3]) }},
		{"stalled mid-body", func(c net.Conn) { c.Write(frame[:40]) }},
		{"trickle", func(c net.Conn) {
			for i := range frame {
				if _, err := c.Write(frame[i : i+1]); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond) // the trickle's pace: the experiment
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tcpPair(t)
			done := make(chan struct{})
			go func() { defer close(done); tc.send(b) }()
			cc := NewControlConn(a)
			const timeout = 300 * time.Millisecond
			start := time.Now()
			_, err := cc.ReadMsg(t.Context(), timeout)
			el := time.Since(start)
			t.Logf("ReadMsg failed after %v with a %v timeout", el, timeout)
			if !isTimeout(err) {
				t.Errorf("ReadMsg: %v, want a timeout", err)
			}
			if el < timeout || el > timeout+5*time.Second {
				t.Errorf("ReadMsg took %v with a %v timeout; want %v..%v", el, timeout, timeout, timeout+5*time.Second)
			}
			b.Close()
			<-done
		})
	}
	t.Run("session deadline", func(t *testing.T) {
		a, _ := tcpPair(t)
		cc := NewControlConn(a)
		const left = 100 * time.Millisecond
		start := time.Now()
		cc.SetSessionDeadline(start.Add(left))
		_, err := cc.ReadMsg(t.Context(), time.Hour)
		el := time.Since(start)
		t.Logf("ReadMsg failed after %v with the session deadline %v away", el, left)
		if !isTimeout(err) {
			t.Errorf("ReadMsg: %v, want a timeout", err)
		}
		if el < left || el > left+5*time.Second {
			t.Errorf("ReadMsg took %v with the session deadline %v away; want %v..%v", el, left, left, left+5*time.Second)
		}
	})
}

// tcpPair returns both ends of a loopback TCP connection, closed at cleanup.
func tcpPair(tb testing.TB) (a, b net.Conn) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	b, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	a, err = ln.Accept()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestSocketsAbsentByDefault: a request with default socket options carries no
// "sockets" field, which a server without CapSockets would refuse as unknown; with
// any option it does, and the server reads back what was asked.
func TestSocketsAbsentByDefault(t *testing.T) {
	req := TestRequest{ID: 1, Experiment: "stream", Transport: "udp", Size: 100, Duration: time.Second, Streams: 1, Direction: Forward}
	frame, err := Encode(req.wire())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(frame[4:]), "sockets") {
		t.Errorf("default request on the wire: %s; want no sockets field", frame[4:])
	}
	req.Sockets = SocketOptions{RecvBuffer: 1 << 20, NoGSO: true, Batch: 1}
	if frame, err = Encode(req.wire()); err != nil {
		t.Fatal(err)
	}
	m, err := ReadMsg(bytes.NewReader(frame))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.(*Test).Request().Sockets; got != req.Sockets {
		t.Errorf("the server reads sockets %+v from %s; want %+v", got, frame[4:], req.Sockets)
	}
}
