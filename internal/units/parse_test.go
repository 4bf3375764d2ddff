package units

import (
	"strings"
	"testing"
)

func TestBitRate(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr string // a part of the error; "" = no error
	}{
		{in: "0", want: 0},
		{in: "500M", want: 500e6},
		{in: "1.5G", want: 1.5e9},
		{in: "800k", want: 800e3},
		{in: "800K", want: 800e3},
		{in: "2T", want: 2e12},
		{in: " 10M ", want: 10e6},
		{in: "10Mbit", want: 10e6},
		{in: "10mbit", want: 10e6},
		{in: "10Mbits", want: 10e6},
		{in: "10Mbit/s", want: 10e6},
		{in: "10Mbits/s", want: 10e6},
		{in: "10Mbps", want: 10e6},
		{in: "10mbps", want: 10e6},
		{in: "10Mb", want: 10e6},
		{in: "10Mb/s", want: 10e6},
		{in: "0M", want: 0},
		{in: "10MB", wantErr: `for "10MB" (bytes/s) give 80M`},
		{in: "10MB/s", wantErr: `for "10MB/s" (bytes/s) give 80M`},
		{in: "1.5GBps", wantErr: `give 12G`},
		{in: "100kB", wantErr: `give 800k`},
		{in: "10B", wantErr: "B is bytes"},
		{in: "500", wantErr: "with a unit"},
		{in: "", wantErr: "with a unit"},
		{in: "bits", wantErr: "with a unit"},
		{in: "10bit", wantErr: "with a unit"},
		{in: "10x", wantErr: "with a unit"},
		{in: "fastM", wantErr: "with a unit"},
		{in: "NaNM", wantErr: "with a unit"},
		{in: "InfG", wantErr: "with a unit"},
		{in: "-5M", wantErr: "must not be negative"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := BitRate(tc.in)
			switch {
			case tc.wantErr == "" && (err != nil || got != tc.want):
				t.Errorf("BitRate(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("BitRate(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.wantErr)
			}
		})
	}
}

func TestPerSecond(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{in: "0", want: 0},
		{in: "5000", want: 5000},
		{in: "2.5", want: 2.5},
		{in: "5k", want: 5000},
		{in: "1M", want: 1e6},
		{in: "1m", want: 1e6},
		{in: "fast", wantErr: true},
		{in: "1x", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "NaN", wantErr: true},
		{in: "Inf", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := PerSecond(tc.in)
			if (err != nil) != tc.wantErr || err == nil && got != tc.want {
				t.Errorf("PerSecond(%q) = %v, %v; want %v (error: %v)", tc.in, got, err, tc.want, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), tc.in) {
				t.Errorf("PerSecond(%q): %v does not quote the input", tc.in, err)
			}
		})
	}
}

func TestBytes(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr string // a part of the error; "" = no error
	}{
		{in: "0", want: 0},
		{in: "4096", want: 4096},
		{in: "256K", want: 256 << 10},
		{in: "256k", want: 256 << 10},
		{in: "1M", want: 1 << 20},
		{in: " 1MiB ", want: 1 << 20},
		{in: "1MB", want: 1 << 20},
		{in: "1G", want: 1 << 30},
		{in: "2G", wantErr: "at most 1073741824"},
		{in: "1.5M", wantErr: "whole number"},
		{in: "-1", wantErr: "negative"},
		{in: "", wantErr: "whole number"},
		{in: "M", wantErr: "whole number"},
		{in: "10x", wantErr: "whole number"},
		{in: "99999999999999999999", wantErr: "whole number"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := Bytes(tc.in, 1<<30)
			switch {
			case tc.wantErr == "" && (err != nil || got != tc.want):
				t.Errorf("Bytes(%q) = %d, %v; want %d, nil", tc.in, got, err, tc.want)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Bytes(%q) = %d, %v; want an error containing %q", tc.in, got, err, tc.wantErr)
			}
		})
	}
}
