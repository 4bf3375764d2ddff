package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tcpvsudp/tcpvsudp/bench/report"
	"github.com/tcpvsudp/tcpvsudp/bench/transport"
	"github.com/tcpvsudp/tcpvsudp/bench/wire"
)

// ioModes are the ways a run can move messages, each of which must give the same
// known answers: UDP batched with offloads (GSO sends; a stream's receiver takes GRO
// super-packets) or without, one message per call with them or without (textbook
// I/O is batch 1, no GSO, no GRO). TestStreamOffloadModes and
// TestStreamGROCorruptInSuperPacket check receives that coalesce for certain.
var ioModes = []struct {
	name  string
	net   transport.NetOptions
	batch int
}{
	{"batch 64, gso+gro", transport.NetOptions{}, 64},
	{"batch 64, no offloads", transport.NetOptions{NoGSO: true}, 64},
	{"batch 1, gso+gro", transport.NetOptions{}, 1},
	{"batch 1, no offloads (textbook)", transport.NetOptions{NoGSO: true}, 1},
}

// TestStreamKnownAnswerIOModes: in every I/O mode, over both transports, a stream of
// 10 messages of which the sender's side drops 3 and 7, sends 5 twice, flips a
// payload bit of 4 and holds 8 back until 9 has gone is counted exactly: 10 sent;
// 4 rejected as corrupt; 8 received (5 twice); unique intact 7, so 3 lost; 1
// duplicate; 1 reordered. (GSO is UDP's: TCP runs the two batch sizes.) With
// --verify header, 4's payload goes unchecked: 9 received, none corrupt, 8 unique,
// 2 lost.
func TestStreamKnownAnswerIOModes(t *testing.T) {
	type answer struct{ recv, corrupt, lost, unique uint64 }
	for _, mode := range ioModes {
		for _, transport := range []string{"udp", "tcp"} {
			if transport == "tcp" && mode.net.NoGSO {
				continue
			}
			for _, verify := range []wire.Verify{wire.VerifyPayloadCRC, wire.VerifyHeaderCRC} {
				want := answer{recv: 8, corrupt: 1, lost: 3, unique: 7}
				if verify == wire.VerifyHeaderCRC {
					want = answer{recv: 9, corrupt: 0, lost: 2, unique: 8}
				}
				t.Run(fmt.Sprintf("%s/%s/verify=%v", transport, mode.name, verify), func(t *testing.T) {
					nw := impairedNetwork{Network: mustNetwork(t, transport, mode.net), drop: map[uint64]bool{3: true, 7: true},
						dup: map[uint64]bool{5: true}, holdBack: map[uint64]uint64{8: 9}, corrupt: map[uint64]bool{4: true}}
					e := testEnv(t)
					// The drain covers what is in flight after the last send (UDP ends it on a
					// quiet spell; TCP, which never gets 3 and 7, only at its end).
					e.batch, e.drain = mode.batch, 2*time.Second
					e.verify = verify
					m, w, err := runStream(context.Background(), e, nw, report.Params{Size: 1024, Streams: 1, Count: 10, RateBps: 200e6})
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("metrics %+v warnings %v", m, w)
					if m.SentMsgs != 10 || m.RecvMsgs != want.recv || m.CorruptMsgs != want.corrupt || m.LostMsgs != want.lost || m.DupMsgs != 1 || m.ReorderedMsgs != 1 {
						t.Errorf("sent %d recv %d corrupt %d lost %d dup %d reordered %d; want sent 10 recv %d corrupt %d lost %d dup 1 reordered 1",
							m.SentMsgs, m.RecvMsgs, m.CorruptMsgs, m.LostMsgs, m.DupMsgs, m.ReorderedMsgs, want.recv, want.corrupt, want.lost)
					}
					if w := want.unique * 1024; m.RecvBytes != w {
						t.Errorf("recv bytes %d, want %d (%d unique accepted messages)", m.RecvBytes, w, want.unique)
					}
				})
			}
		}
	}
}
