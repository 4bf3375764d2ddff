// Package units reads and writes quantities. Reading (this file): the quantities
// that flags and link specs take as text: bit rates with a decimal SI prefix
// ("500M", "1.5Gbit/s"), counts per second ("1k") and byte sizes with a binary
// prefix ("256K", "1M"). Writing (format.go): figures with three significant
// digits and their unit, for tables, sentences and progress lines. Parse errors
// say what was expected and never name a flag: the caller knows which flag it
// parsed, and prefixes it.
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// prefixes are the decimal SI prefixes a rate or count may carry (lower case).
var prefixes = map[byte]float64{'k': 1e3, 'm': 1e6, 'g': 1e9, 't': 1e12}

// bitSuffixes may follow a rate's prefix, longest first; all say bits per second.
var bitSuffixes = []string{"bits/s", "bit/s", "bits", "bit", "bps", "b/s", "b"}

// BitRate reads a rate in bits per second with a decimal SI prefix, optionally
// followed by bit, bits, bit/s, bps or b: "500M", "1.5G", "10Mbit", "10mbps", "800k".
// "0" alone is 0; any other number needs a prefix, so "500" (bits? bytes? megabits?)
// is refused rather than guessed. An upper-case B is bytes, and is refused with the
// rate in bits it may have meant: "10MB/s" is 80M.
func BitRate(v string) (float64, error) {
	s := strings.TrimSpace(v)
	if s == "0" {
		return 0, nil
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("must not be negative, got %q", v)
	}
	if i := strings.IndexByte(s, 'B'); i > 0 {
		return 0, bytesError(v, s[:i])
	}
	low := strings.ToLower(s)
	for _, suf := range bitSuffixes {
		if rest, ok := strings.CutSuffix(low, suf); ok && rest != "" && prefixes[rest[len(rest)-1]] != 0 {
			low = rest
			break
		}
	}
	num, mult, err := prefixed(low)
	if err != nil {
		return 0, fmt.Errorf("must be bits/s with a unit, k, M, G or T (e.g. 500M, 1.5G, 10Mbit/s), got %q", v)
	}
	return num * mult, nil
}

// PerSecond reads a count per second: a plain number ("5000"), or one with a
// decimal SI prefix ("5k", "1M").
func PerSecond(v string) (float64, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("must not be negative, got %q", v)
	}
	if num, err := strconv.ParseFloat(s, 64); err == nil {
		if err := finite(num); err != nil {
			return 0, fmt.Errorf("must be a number per second like 5000 or 5k, got %q", v)
		}
		return num, nil
	}
	num, mult, err := prefixed(s)
	if err != nil {
		return 0, fmt.Errorf("must be a number per second like 5000 or 5k, got %q", v)
	}
	return num * mult, nil
}

// prefixed splits "1.5m" into 1.5 and 1e6; the number must be finite and not negative.
func prefixed(s string) (num, mult float64, err error) {
	if s == "" || prefixes[s[len(s)-1]] == 0 {
		return 0, 0, fmt.Errorf("no unit")
	}
	num, err = strconv.ParseFloat(s[:len(s)-1], 64)
	if err != nil {
		return 0, 0, err
	}
	if err := finite(num); err != nil {
		return 0, 0, err
	}
	return num, prefixes[s[len(s)-1]], nil
}

func finite(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		return fmt.Errorf("not a finite number of at least 0")
	}
	return nil
}

// bytesError is BitRate's refusal of a byte rate, with the bit rate it may mean when
// the number and prefix before the B read cleanly.
func bytesError(v, beforeB string) error {
	low := strings.ToLower(beforeB)
	num, _, err := prefixed(low)
	if err != nil {
		return fmt.Errorf("rates are in bits/s, and B is bytes: give bits with a unit, k, M, G or T (e.g. 500M), got %q", v)
	}
	p := low[len(low)-1:]
	if p != "k" {
		p = strings.ToUpper(p)
	}
	return fmt.Errorf("rates are in bits/s, and B is bytes: for %q (bytes/s) give %s%s", v, strconv.FormatFloat(num*8, 'g', -1, 64), p)
}

// binaryPrefixes are the prefixes a byte size may carry (lower case): powers of 1024,
// as the kernel counts socket buffers.
var binaryPrefixes = map[byte]int64{'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30}

// Bytes reads a byte size: a plain count ("4096"), or a whole number with a binary
// prefix, K, M or G, optionally followed by iB or B: "256K", "1M", "1MiB", "2GB"
// (1M = 1048576 bytes). The result is at most max.
func Bytes(v string, max int64) (int64, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("must not be negative, got %q", v)
	}
	num, mult := s, int64(1)
	for _, suf := range []string{"ib", "b"} {
		if rest, ok := strings.CutSuffix(num, suf); ok && rest != "" && binaryPrefixes[rest[len(rest)-1]] != 0 {
			num = rest
			break
		}
	}
	if num != "" && binaryPrefixes[num[len(num)-1]] != 0 {
		num, mult = num[:len(num)-1], binaryPrefixes[num[len(num)-1]]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("must be bytes, a whole number with an optional K, M or G (powers of 1024: 256K, 1M), got %q", v)
	}
	if n > max/mult {
		return 0, fmt.Errorf("must be at most %d bytes, got %q", max, v)
	}
	return n * mult, nil
}
