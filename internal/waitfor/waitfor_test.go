package waitfor

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m, "waitfor") }

// blockedRead reads from c until it is closed; it is the call the tests look for.
func blockedRead(c net.Conn, done chan<- error) {
	_, err := c.Read(make([]byte, 1))
	done <- err
}

func TestInCall(t *testing.T) {
	a, b := net.Pipe() // a pipe parks in a channel receive, not the poller
	defer b.Close()
	done := make(chan error, 1)
	go blockedRead(a, done)
	if err := InCall("waitfor.blockedRead(", false, done, 10*time.Second); err != nil {
		t.Fatalf("a read seen running: %v", err)
	}
	if err := InCall("waitfor.blockedRead(", true, done, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "after 50ms") {
		t.Fatalf("a pipe read is never in the poller: got %v, want a timeout", err)
	}
	a.Close()
	<-done
	if err := InCall("waitfor.noSuchCall(", false, nil, 10*time.Millisecond); err == nil {
		t.Fatal("a call nobody makes: got nil, want a timeout")
	}
}

func TestInCallParked(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go blockedRead(c, done)
	if err := InCall("waitfor.blockedRead(", true, done, 10*time.Second); err != nil {
		t.Fatalf("a TCP read with nothing to read: %v", err)
	}
	c.Close()
	<-done
}

func TestInCallReturnedFirst(t *testing.T) {
	done := make(chan error, 1)
	done <- net.ErrClosed
	err := InCall("waitfor.blockedRead(", false, done, 10*time.Second)
	if err == nil || !strings.Contains(err.Error(), "returned use of closed network connection before") {
		t.Fatalf("got %v, want the call's own result in an error", err)
	}
}

func TestCond(t *testing.T) {
	n := 0
	if !Cond(10*time.Second, func() bool { n++; return n == 3 }) || n != 3 {
		t.Fatalf("a condition true on its third call: n = %d, want 3", n)
	}
	calls := 0
	if Cond(5*time.Millisecond, func() bool { calls++; return false }) || calls < 1 {
		t.Fatalf("a condition never true: held, or called %d times", calls)
	}
}
