package remote

import (
	"errors"
	"net/netip"
	"strings"
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
		{"handshake timeout negative", Limits{HandshakeTimeout: -time.Second}, "--handshake-timeout: must be 100ms..1m, got -1s"},
		{"handshake timeout too short", Limits{HandshakeTimeout: 99 * time.Millisecond}, "--handshake-timeout: must be 100ms..1m, got 99ms"},
		{"handshake timeout too long", Limits{HandshakeTimeout: time.Hour}, "--handshake-timeout: must be 100ms..1m, got 1h0m0s"},
		{"idle timeout too short", Limits{IdleTimeout: 200 * time.Millisecond}, "--idle-timeout: must be 1s..24h, got 200ms"},
		{"idle timeout too long", Limits{IdleTimeout: 25 * time.Hour}, "--idle-timeout: must be 1s..24h, got 25h0m0s"},
		{"session shorter than a test", Limits{MaxDuration: time.Hour, MaxSessionTime: 30 * time.Minute},
			"--max-session-time: must be at least --max-duration plus 10s for a test's end (1h0m10s here), got 30m0s"},
		{"session just too short", Limits{MaxDuration: time.Minute, MaxSessionTime: time.Minute + 9*time.Second}, "--max-session-time"},
		{"session negative", Limits{MaxSessionTime: -time.Second}, "--max-session-time"},
		{"data ports reversed", Limits{DataPorts: PortRange{5399, 5300}}, "--data-ports: must be LO-HI with 1 <= LO <= HI <= 65535, got 5399-5300"},
		{"data ports from 0", Limits{DataPorts: PortRange{0, 5300}}, "--data-ports"},
		{"data ports fewer than streams", Limits{MaxStreams: 8, DataPorts: PortRange{5300, 5303}},
			"--data-ports: 5300-5303 holds 4 ports, fewer than --max-streams 8 (a UDP test opens one port per stream)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.l.WithDefaults().Validate()
			if err == nil || !strings.HasPrefix(err.Error(), tc.flag) {
				t.Errorf("Validate(%+v) = %v, want an error starting %q", tc.l, err, tc.flag)
			}
		})
	}
	for _, tc := range []struct {
		name string
		l    Limits
	}{
		{"minimum timeouts", Limits{HandshakeTimeout: MinHandshakeTimeout, IdleTimeout: MinIdleTimeout}},
		{"maximum timeouts", Limits{HandshakeTimeout: MaxHandshakeTimeout, IdleTimeout: MaxIdleTimeout}},
		{"session just long enough", Limits{MaxDuration: time.Minute, MaxSessionTime: time.Minute + runGrace}},
		{"data ports as many as streams", Limits{MaxStreams: 4, DataPorts: PortRange{5300, 5303}}},
		{"one data port, one stream", Limits{MaxStreams: 1, DataPorts: PortRange{65535, 65535}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.l.WithDefaults().Validate(); err != nil {
				t.Errorf("Validate(%+v) = %v, want nil", tc.l, err)
			}
		})
	}
}

func TestParsePortRange(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    PortRange
		wantErr string
	}{
		{in: "", want: PortRange{}},
		{in: "5300-5399", want: PortRange{5300, 5399}},
		{in: "5300", want: PortRange{5300, 5300}},
		{in: "1-65535", want: PortRange{1, 65535}},
		{in: "5399-5300", wantErr: "LO must not exceed HI"},
		{in: "0-10", wantErr: "1..65535"},
		{in: "0", wantErr: "1..65535"},
		{in: "5300-65536", wantErr: "1..65535"},
		{in: "5300-", wantErr: "1..65535"},
		{in: "-5300", wantErr: "1..65535"},
		{in: "a-b", wantErr: "1..65535"},
		{in: "5300:5399", wantErr: "LO-HI"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePortRange(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.HasPrefix(err.Error(), "--data-ports: ") || !strings.Contains(err.Error(), `"`+tc.in+`"`) {
					t.Fatalf("ParsePortRange(%q) = %v, %v; want an error naming --data-ports, saying %q and quoting the input", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParsePortRange(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			if got.String() != tc.in && !(tc.in == "5300" && got.String() == "5300") {
				t.Errorf("ParsePortRange(%q).String() = %q, want the input back", tc.in, got.String())
			}
		})
	}
}
