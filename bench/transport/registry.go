package transport

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/tcpvsudp/tcpvsudp/tcp"
	"github.com/tcpvsudp/tcpvsudp/udp"
)

// A Spec is one transport as the runner knows it: its name, how to open it
// with the run's socket flags, and what it can do. A transport is a leaf package
// (tcp, udp) plus one Register call; experiments never test a transport's
// name, they ask for its Caps.
type Spec struct {
	Name string                   // as flags and reports spell it: "tcp", "udp"
	Open func(NetOptions) Network // opens both ends with the run's socket flags
	Caps Caps
}

// Caps are what a transport does that experiments, warnings and reports must know.
type Caps struct {
	// Reliable: every message arrives once and in order, or the connection fails
	// (TCP). A reliable stream's losses show as retransmits, never as lost messages.
	Reliable bool
	// Connected: a server endpoint per client (Listener.Accept returns one for each),
	// where a connectionless transport has one endpoint serve every client (UDP).
	Connected bool
	// Datagrams: each message travels as one IP datagram (UDP). Larger than a
	// link's MTU, it fragments; the lab counts such messages one for one.
	Datagrams bool
	// TextbookIO: besides its batched path, it can send and receive one message per
	// system call with no offloads (--udp-io textbook), so a reader sees what each
	// costs.
	TextbookIO bool
}

var transportRegistry struct {
	sync.RWMutex
	specs map[string]Spec
}

// Register makes a transport known to the runner, the flags and the
// reports. It panics on an empty name, a nil Open or a name already registered: a
// registration is a program's constant, made at init.
func Register(s Spec) {
	if s.Name == "" || s.Open == nil {
		panic("transport: Register needs a name and an Open function")
	}
	transportRegistry.Lock()
	defer transportRegistry.Unlock()
	if _, dup := transportRegistry.specs[s.Name]; dup {
		panic(fmt.Sprintf("transport: %q registered twice", s.Name))
	}
	if transportRegistry.specs == nil {
		transportRegistry.specs = map[string]Spec{}
	}
	transportRegistry.specs[s.Name] = s
}

func init() {
	Register(Spec{Name: "tcp", Caps: Caps{Reliable: true, Connected: true},
		Open: func(o NetOptions) Network {
			return tcpNetwork{tcp.Options{NoDelay: o.NoDelay, RecvBuffer: o.RecvBuffer, SendBuffer: o.SendBuffer, BusyPoll: o.BusyPoll}}
		}})
	Register(Spec{Name: "udp", Caps: Caps{Datagrams: true, TextbookIO: true},
		Open: func(o NetOptions) Network {
			return udpNetwork{udp.Options{RecvBuffer: o.RecvBuffer, SendBuffer: o.SendBuffer, NoGSO: o.NoGSO, BusyPoll: o.BusyPoll, Batch: o.Batch}}
		}})
}

// Names lists the registered transport names, sorted.
func Names() []string {
	transportRegistry.RLock()
	defer transportRegistry.RUnlock()
	names := make([]string, 0, len(transportRegistry.specs))
	for n := range transportRegistry.specs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// CapsOf is what the transport named name can do; the zero Caps for a name not
// registered.
func CapsOf(name string) Caps {
	transportRegistry.RLock()
	defer transportRegistry.RUnlock()
	return transportRegistry.specs[name].Caps
}

// NetworkByName returns the Network of a registered transport, opened with o.
func NetworkByName(name string, o NetOptions) (Network, error) {
	transportRegistry.RLock()
	s, ok := transportRegistry.specs[name]
	transportRegistry.RUnlock()
	if !ok {
		return nil, fmt.Errorf("transport: unknown transport %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return s.Open(o), nil
}
