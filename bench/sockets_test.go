package bench

import (
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func u64(n uint64) *uint64 { return &n }

// TestSockMerge: a run's description of one end takes each cell's: the smallest
// grants, the endpoints and send counts summed, each refusal once.
func TestSockMerge(t *testing.T) {
	var run Sock
	run.Merge(Sock{RecvBuffer: 2 << 20, SendBuffer: 1 << 20, Batch: 1, DataSockets: 1, SendCalls: u64(503), SentDatagrams: u64(503), Refused: []string{"a"}})
	run.Merge(Sock{RecvBuffer: 1 << 20, SendBuffer: 0, Batch: 1, DataSockets: 2, Refused: []string{"a", "b"}}) // a receiver: no send counts, send buffer unread
	run.Merge(Sock{RecvBuffer: 2 << 20, SendBuffer: 1 << 20, Batch: 1, DataSockets: 1, SendCalls: u64(10), SentDatagrams: u64(10)})
	want := Sock{RecvBuffer: 1 << 20, SendBuffer: 1 << 20, Batch: 1, DataSockets: 4, SendCalls: u64(513), SentDatagrams: u64(513), Refused: []string{"a", "b"}}
	if !reflect.DeepEqual(run, want) {
		t.Errorf("merged %+v (calls %v, datagrams %v)\nwant %+v (calls 513, datagrams 513)", run, *run.SendCalls, *run.SentDatagrams, want)
	}
}

// TestRefusals: a grant below what Linux gives for a request (twice it) names the
// flag; a full grant, or no request, says nothing.
func TestRefusals(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skipf("the doubling of a request is Linux's; this is %s", runtime.GOOS)
	}
	for _, tc := range []struct {
		name string
		want NetOptions
		got  Sock
		flag []string // the flags the refusals name, in order
	}{
		{"granted", NetOptions{RecvBuffer: 1 << 20, SendBuffer: 1 << 20}, Sock{RecvBuffer: 2 << 20, SendBuffer: 2 << 20}, nil},
		{"no request", NetOptions{}, Sock{RecvBuffer: 212992, SendBuffer: 212992}, nil},
		{"rmem_max caps", NetOptions{RecvBuffer: 64 << 20}, Sock{RecvBuffer: 8 << 20}, []string{"--rcvbuf"}},
		{"both capped", NetOptions{RecvBuffer: 8 << 20, SendBuffer: 8 << 20}, Sock{RecvBuffer: 8 << 20, SendBuffer: 8 << 20}, []string{"--rcvbuf", "--sndbuf"}},
		{"busy poll refused", NetOptions{BusyPoll: true}, Sock{BusyPoll: true}, []string{"--busy-poll"}},
		{"busy poll granted", NetOptions{BusyPoll: true}, Sock{BusyPoll: true, BusyPollUs: 50}, nil},
		{"unread grant", NetOptions{RecvBuffer: 1 << 20}, Sock{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Refusals(tc.want, "udp", tc.got)
			var flags []string
			for _, r := range got {
				flags = append(flags, r[:strings.Index(r, ":")])
			}
			if !slices.Equal(flags, tc.flag) {
				t.Errorf("Refusals(%+v, %+v) = %q; want refusals of %v", tc.want, tc.got, got, tc.flag)
			}
		})
	}
}

// TestRenderBothEnds: a remote run's markdown says what each end's data sockets got
// and how its datagrams left, this host's and the server's.
func TestRenderBothEnds(t *testing.T) {
	r := testReport()
	r.Env.Link = Link{Kind: "remote", Addr: "192.0.2.10:5299"}
	sk := Sock{RecvBuffer: 2097152, SendBuffer: 212992, Batch: 1, DataSockets: 2, SendCalls: u64(503), SentDatagrams: u64(503)}
	r.Env.Sockets = map[string]Sock{"udp": sk}
	r.Env.Peer = &Env{Host: "far", OS: "linux", Sockets: map[string]Sock{"udp": sk}}
	var b strings.Builder
	if err := RenderMarkdown(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"granted to this host's data sockets: udp receive 2,097,152 B, send 212,992 B, 503 datagrams sent in 503 calls (batch 1, without GSO).",
		"To the server's: udp receive 2,097,152 B, send 212,992 B, 503 datagrams sent in 503 calls (batch 1, without GSO).",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, b.String())
		}
	}
}
