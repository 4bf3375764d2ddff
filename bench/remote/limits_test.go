package remote

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

func mustAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func validRequest() TestRequest {
	return TestRequest{ID: 1, Experiment: "stream", Transport: "tcp", Size: 1000, Duration: time.Second, Streams: 1, Direction: Forward}
}

func TestLimitsCheck(t *testing.T) {
	l := Limits{MaxStreams: 4, MaxDuration: 60 * time.Second, MaxRateBps: 1e9, MaxSize: 65536}.WithDefaults()
	for _, tc := range []struct {
		name    string
		edit    func(*TestRequest)
		limit   string // the LimitError's, or "" for none
		message string // the whole message, when given
		err     bool   // some error
	}{
		{"within", func(r *TestRequest) {}, "", "", false},
		{"at every limit", func(r *TestRequest) {
			r.Streams, r.Duration, r.RateBps, r.Size = 4, 60*time.Second, 1e9, 65536
		}, "", "", false},
		{"duration", func(r *TestRequest) { r.Duration = 120 * time.Second }, "max-duration", "refused: duration 120s exceeds the server's --max-duration 60s", true},
		{"streams", func(r *TestRequest) { r.Streams = 5 }, "max-streams", "refused: streams 5 exceeds the server's --max-streams 4", true},
		{"rate", func(r *TestRequest) { r.RateBps = 2500e6 }, "max-rate", "refused: rate 2.5 Gbit/s exceeds the server's --max-rate 1 Gbit/s", true},
		{"size", func(r *TestRequest) { r.Size = 65537 }, "max-size", "refused: size 65537 bytes exceeds the server's --max-size 65536 bytes", true},
		{"udp size", func(r *TestRequest) { r.Transport, r.Size = "udp", MaxUDPMessage+1 }, "", "", true},
		{"no duration", func(r *TestRequest) { r.Duration = 0 }, "", "", true},
		{"sub-millisecond", func(r *TestRequest) { r.Duration = 1500 * time.Microsecond }, "", "", true},
		{"no streams", func(r *TestRequest) { r.Streams = 0 }, "", "", true},
		{"direction", func(r *TestRequest) { r.Direction = "sideways" }, "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := validRequest()
			tc.edit(&r)
			err := l.Check(r)
			if (err != nil) != tc.err {
				t.Fatalf("Check(%+v) = %v, want error: %v", r, err, tc.err)
			}
			var le *LimitError
			isLimit := errors.As(err, &le)
			if tc.limit == "" && isLimit {
				t.Errorf("Check(%+v) = limit error %v, want a plain one", r, err)
			}
			if tc.limit != "" && (!isLimit || le.Limit != tc.limit) {
				t.Errorf("Check(%+v) = %v, want a refusal by %s", r, err, tc.limit)
			}
			if tc.message != "" && err.Error() != tc.message {
				t.Errorf("message:\n got %s\nwant %s", err, tc.message)
			}
		})
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := DefaultLimits().Validate(); err != nil {
		t.Errorf("DefaultLimits().Validate() = %v", err)
	}
	if got := (Limits{}).WithDefaults(); got != DefaultLimits() {
		t.Errorf("zero Limits with defaults = %+v, want %+v", got, DefaultLimits())
	}
	for _, tc := range []struct {
		name string
		l    Limits
		flag string
	}{
		{"sessions", Limits{MaxSessions: -1}, "--max-sessions"},
		{"rate", Limits{MaxRateBps: 10}, "--max-rate"},
		{"duration", Limits{MaxDuration: time.Millisecond}, "--max-duration"},
		{"pre-auth", Limits{PreAuthConns: -3}, "--pre-auth-conns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.l.WithDefaults().Validate()
			if err == nil || err.Error()[:len(tc.flag)] != tc.flag {
				t.Errorf("Validate(%+v) = %v, want an error naming %s", tc.l, err, tc.flag)
			}
		})
	}
}
