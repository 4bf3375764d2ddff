package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tcpvsudp/tcpvsudp/bench/remote"
	"github.com/tcpvsudp/tcpvsudp/internal/units"
)

// parseList splits a comma-separated flag value, dropping empty items and repeats.
func parseList(flag, v string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, s := range strings.Split(v, ",") {
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: must list at least one item, got %q", flag, v)
	}
	return out, nil
}

// originalItem returns the item of the comma-separated v that parseList turned into
// item, as it was typed (parseList lower-cases).
func originalItem(v, item string) string {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); strings.EqualFold(s, item) {
			return s
		}
	}
	return item
}

// parseSizes reads --sizes: comma-separated byte counts. Limits per transport are
// checked by the plan.
func parseSizes(v string) ([]int, error) {
	items, err := parseList("--sizes", v)
	if err != nil {
		return nil, err
	}
	out := make([]int, 0, len(items))
	for _, s := range items {
		n, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("--sizes: must be plain byte counts, without a unit (e.g. 64,1024,65507), got %q", originalItem(v, s))
		}
		out = append(out, n)
	}
	return out, nil
}

// parseRate reads a rate flag: bits/s with a decimal SI unit, e.g. 500M, 1.5G,
// 10Mbit/s (units.BitRate); 0 alone means none.
func parseRate(flag, v string) (float64, error) {
	r, err := units.BitRate(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", flag, err)
	}
	return r, nil
}

// maxBuffer is the largest --rcvbuf or --sndbuf, bytes: what a remote test may ask
// for, far above any kernel's cap.
const maxBuffer = remote.MaxSocketBuffer

// parseBuffer reads --rcvbuf or --sndbuf: bytes, with an optional binary K, M or G.
func parseBuffer(flag, v string) (int, error) {
	n, err := units.Bytes(v, maxBuffer)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", flag, err)
	}
	return int(n), nil
}
