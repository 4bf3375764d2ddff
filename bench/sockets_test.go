package bench

import (
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
)

func u64(n uint64) *uint64 { return &n }

// TestSockMerge: a run's description of one end takes each cell's: the smallest
// grants, the endpoints and send counts summed, each refusal once.
func TestSockMerge(t *testing.T) {
	var run report.Sock
	run.Merge(report.Sock{RecvBuffer: 2 << 20, SendBuffer: 1 << 20, Batch: 1, DataSockets: 1, SendCalls: u64(503), SentDatagrams: u64(503), Refused: []string{"a"}})
	run.Merge(report.Sock{RecvBuffer: 1 << 20, SendBuffer: 0, Batch: 1, DataSockets: 2, Refused: []string{"a", "b"}}) // a receiver: no send counts, send buffer unread
	run.Merge(report.Sock{RecvBuffer: 2 << 20, SendBuffer: 1 << 20, Batch: 1, DataSockets: 1, SendCalls: u64(10), SentDatagrams: u64(10)})
	want := report.Sock{RecvBuffer: 1 << 20, SendBuffer: 1 << 20, Batch: 1, DataSockets: 4, SendCalls: u64(513), SentDatagrams: u64(513), Refused: []string{"a", "b"}}
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
		want transport.NetOptions
		got  report.Sock
		flag []string // the flags the refusals name, in order
	}{
		{"granted", transport.NetOptions{RecvBuffer: 1 << 20, SendBuffer: 1 << 20}, report.Sock{RecvBuffer: 2 << 20, SendBuffer: 2 << 20}, nil},
		{"no request", transport.NetOptions{}, report.Sock{RecvBuffer: 212992, SendBuffer: 212992}, nil},
		{"rmem_max caps", transport.NetOptions{RecvBuffer: 64 << 20}, report.Sock{RecvBuffer: 8 << 20}, []string{"--rcvbuf"}},
		{"both capped", transport.NetOptions{RecvBuffer: 8 << 20, SendBuffer: 8 << 20}, report.Sock{RecvBuffer: 8 << 20, SendBuffer: 8 << 20}, []string{"--rcvbuf", "--sndbuf"}},
		{"busy poll refused", transport.NetOptions{BusyPoll: true}, report.Sock{BusyPoll: true}, []string{"--busy-poll"}},
		{"busy poll granted", transport.NetOptions{BusyPoll: true}, report.Sock{BusyPoll: true, BusyPollUs: 50}, nil},
		{"unread grant", transport.NetOptions{RecvBuffer: 1 << 20}, report.Sock{}, nil},
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
