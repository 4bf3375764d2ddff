package lab

import (
	"strings"
	"testing"
	"time"
)

func TestParseImpair(t *testing.T) {
	tests := []struct {
		spec    string
		want    Impair
		wantErr string
	}{
		{spec: "", want: Impair{}},
		{spec: "loss=1%,delay=20ms,jitter=5ms,reorder=2%,dup=1%,corrupt=0.5%,rate=50M,queue=64",
			want: Impair{Loss: 0.01, Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Reorder: 0.02, Duplicate: 0.01, Corrupt: 0.005, RateBps: 50e6, Queue: 64}},
		{spec: "loss=0.05, burst=4, mtu=9000", want: Impair{Loss: 0.05, Burst: 4, MTU: 9000}},
		{spec: "rate=1.5G", want: Impair{RateBps: 1.5e9}},
		{spec: "rate=800k", want: Impair{RateBps: 800e3}},
		{spec: "loss=5", wantErr: "loss"},
		{spec: "loss=200%", wantErr: "0..100%"},
		{spec: "delay=fast", wantErr: "delay"},
		{spec: "rate=50", wantErr: "unit"},
		{spec: "teleport=1%", wantErr: `unknown key "teleport"`},
		{spec: "loss=1%,loss=2%", wantErr: "twice"},
		{spec: "jitter=5ms", wantErr: "larger than delay"},
		{spec: "mtu=100", wantErr: "576..65535"},
		{spec: "loss", wantErr: "key=value"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := ParseImpair("--impair", tc.spec)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "--impair") {
					t.Fatalf("ParseImpair(%q) = %+v, %v; want an error naming --impair with %q", tc.spec, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseImpair(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
			}
			if tc.want.RateBps == 50e6 && !strings.Contains(got.String(), "rate=50M") {
				t.Errorf("String() = %q, want rate=50M", got.String())
			}
			again, err := ParseImpair("--impair", got.String())
			if err != nil || again != got {
				t.Fatalf("round trip through %q: %+v, %v", got.String(), again, err)
			}
		})
	}
}

func TestPresets(t *testing.T) {
	for _, name := range []string{"lan", "wan", "lossy-wifi", "satellite", "lte"} {
		p, err := PresetByName(name)
		if err != nil || p.Up.IsZero() || p.Down.IsZero() || p.About == "" {
			t.Errorf("preset %s: %+v, %v", name, p, err)
		}
	}
	if _, err := PresetByName("moon"); err == nil || !strings.Contains(err.Error(), "lte") {
		t.Errorf("unknown preset: %v, want an error listing the known ones", err)
	}
}
