package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
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
			return nil, fmt.Errorf("--sizes: must be whole numbers of bytes, got %q", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseRate reads --rate: bits/s with a decimal SI unit (k, M, G, T; "bit/s" or
// "bps" may follow), e.g. 500M, 1.5G. 0 alone means unpaced; any other number needs
// a unit, so "500" (bits? bytes? megabits?) is refused rather than guessed.
func parseRate(v string) (float64, error) {
	s := strings.TrimSpace(v)
	if s == "0" || s == "" {
		return 0, nil
	}
	low := strings.ToLower(s)
	for _, suf := range []string{"bit/s", "bps", "b/s"} {
		low = strings.TrimSuffix(low, suf)
	}
	if low == "" {
		return 0, fmt.Errorf("--rate: must be bits/s with a unit (e.g. 500M, 1.5G), got %q", v)
	}
	mult := 0.0
	switch low[len(low)-1] {
	case 'k':
		mult = 1e3
	case 'm':
		mult = 1e6
	case 'g':
		mult = 1e9
	case 't':
		mult = 1e12
	}
	if mult == 0 {
		return 0, fmt.Errorf("--rate: needs a unit, k, M, G or T bits/s (e.g. 500M), got %q", v)
	}
	num, err := strconv.ParseFloat(low[:len(low)-1], 64)
	if err != nil || math.IsNaN(num) || math.IsInf(num, 0) {
		return 0, fmt.Errorf("--rate: must be a number with a unit (e.g. 500M, 1.5G), got %q", v)
	}
	if num < 0 {
		return 0, fmt.Errorf("--rate: must not be negative, got %q", v)
	}
	return num * mult, nil
}
