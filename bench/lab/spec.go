package lab

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tcpvsudp/tcpvsudp/internal/units"
)

// Impair is what one direction of the emulated link does to the packets crossing it.
// The zero value passes every packet untouched, at once. Probabilities are 0..1.
type Impair struct {
	Loss      float64       // probability a packet is dropped
	Burst     float64       // mean loss-burst length in packets; > 1 turns Loss into Gilbert-Elliott bursts of the same average; 0 or 1 = independent losses
	Delay     time.Duration // added to every packet
	Jitter    time.Duration // each packet's delay varies uniformly within ±Jitter (never below 0); jitter alone never reorders
	Reorder   float64       // probability a packet is held back so the packets after it overtake it
	ReorderBy time.Duration // how long a reordered packet is held beyond its delay; 0 = 1 ms
	Duplicate float64       // probability a packet is delivered twice
	Corrupt   float64       // probability one bit of the packet's transport payload is flipped (the kernel's checksum then catches it)
	RateBps   float64       // link rate, bits/s of IP packets; 0 = unlimited
	Queue     int           // packets the rate limiter holds before it drops (tail drop); 0 = 1000
	MTU       int           // link MTU, bytes; 0 = 1500
}

// IsZero reports whether im changes nothing.
func (im Impair) IsZero() bool { return im == Impair{} }

// DefaultQueue and DefaultMTU are what a zero Queue and MTU mean.
const (
	DefaultQueue = 1000
	DefaultMTU   = 1500
)

// keys lists the spec keys ParseImpair knows, with their meaning, for help texts.
var keys = map[string]string{
	"loss":      "drop probability, e.g. 1%",
	"burst":     "mean length of loss bursts in packets (Gilbert-Elliott), e.g. 4",
	"delay":     "one-way delay, e.g. 20ms",
	"jitter":    "delay variation, uniform within +/-, e.g. 5ms",
	"reorder":   "probability a packet is held back and overtaken, e.g. 2%",
	"reorderby": "how long a reordered packet is held, e.g. 2ms (default 1ms)",
	"dup":       "duplication probability, e.g. 1%",
	"corrupt":   "bit-flip probability (payload; checksums catch it), e.g. 0.5%",
	"rate":      "link rate in bits/s with a unit, e.g. 50M",
	"queue":     "packets queued at the rate limit before tail drop, e.g. 64",
	"mtu":       "link MTU in bytes, 576..65535, e.g. 1500",
}

// Keys returns the spec keys and their meanings, sorted, one "key: meaning" each.
func Keys() []string {
	var out []string
	for k, v := range keys {
		out = append(out, k+": "+v)
	}
	sort.Strings(out)
	return out
}

// ParseImpair reads a spec such as "loss=1%,delay=20ms,jitter=5ms,rate=50M,queue=64".
// flag names the flag for error messages ("--impair"). An empty spec is the zero
// Impair. Errors name the key, the rule and the value.
func ParseImpair(flag, spec string) (Impair, error) {
	var im Impair
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return im, nil
	}
	seen := map[string]bool{}
	for _, kv := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return Impair{}, fmt.Errorf("%s: want key=value pairs separated by commas, got %q", flag, kv)
		}
		if _, known := keys[k]; !known {
			return Impair{}, fmt.Errorf("%s: unknown key %q (known: %s)", flag, k, strings.Join(sortedKeys(), ", "))
		}
		if seen[k] {
			return Impair{}, fmt.Errorf("%s: key %q given twice", flag, k)
		}
		seen[k] = true
		var err error
		switch k {
		case "loss":
			im.Loss, err = prob(v)
		case "reorder":
			im.Reorder, err = prob(v)
		case "dup":
			im.Duplicate, err = prob(v)
		case "corrupt":
			im.Corrupt, err = prob(v)
		case "burst":
			im.Burst, err = strconv.ParseFloat(v, 64)
			if err == nil && (im.Burst < 1 || im.Burst > 1000 || math.IsNaN(im.Burst)) {
				err = fmt.Errorf("must be 1..1000 packets")
			}
		case "delay":
			im.Delay, err = duration(v)
		case "jitter":
			im.Jitter, err = duration(v)
		case "reorderby":
			im.ReorderBy, err = duration(v)
		case "rate":
			im.RateBps, err = rate(v)
		case "queue":
			im.Queue, err = strconv.Atoi(v)
			if err == nil && (im.Queue < 1 || im.Queue > 100000) {
				err = fmt.Errorf("must be 1..100000 packets")
			}
		case "mtu":
			im.MTU, err = strconv.Atoi(v)
			if err == nil && (im.MTU < 576 || im.MTU > 65535) {
				err = fmt.Errorf("must be 576..65535 bytes")
			}
		}
		if err != nil {
			return Impair{}, fmt.Errorf("%s: %s (%s): %v, got %q", flag, k, keys[k], err, v)
		}
	}
	if im.Jitter > 0 && im.Jitter > im.Delay {
		return Impair{}, fmt.Errorf("%s: jitter %v is larger than delay %v: a packet cannot arrive before it was sent", flag, im.Jitter, im.Delay)
	}
	return im, nil
}

// String writes im back as a spec ParseImpair reads; "" for the zero Impair.
func (im Impair) String() string {
	var parts []string
	pct := func(k string, v float64) {
		if v != 0 {
			parts = append(parts, k+"="+strconv.FormatFloat(v*100, 'g', -1, 64)+"%")
		}
	}
	dur := func(k string, v time.Duration) {
		if v != 0 {
			parts = append(parts, k+"="+v.String())
		}
	}
	pct("loss", im.Loss)
	if im.Burst != 0 {
		parts = append(parts, "burst="+strconv.FormatFloat(im.Burst, 'g', -1, 64))
	}
	dur("delay", im.Delay)
	dur("jitter", im.Jitter)
	pct("reorder", im.Reorder)
	dur("reorderby", im.ReorderBy)
	pct("dup", im.Duplicate)
	pct("corrupt", im.Corrupt)
	if im.RateBps != 0 {
		unit, div := "k", 1e3
		for _, u := range []struct {
			s string
			d float64
		}{{"G", 1e9}, {"M", 1e6}} {
			if q := im.RateBps / u.d; q >= 1 && q == math.Trunc(q*1000)/1000 {
				unit, div = u.s, u.d
				break
			}
		}
		parts = append(parts, "rate="+strconv.FormatFloat(im.RateBps/div, 'g', -1, 64)+unit)
	}
	if im.Queue != 0 {
		parts = append(parts, "queue="+strconv.Itoa(im.Queue))
	}
	if im.MTU != 0 {
		parts = append(parts, "mtu="+strconv.Itoa(im.MTU))
	}
	return strings.Join(parts, ",")
}

func sortedKeys() []string {
	var ks []string
	for k := range keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// prob reads "1%", "0.5%" or a fraction "0.01".
func prob(v string) (float64, error) {
	s, isPct := strings.CutSuffix(v, "%")
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("must be a percentage like 1%% or a fraction like 0.01")
	}
	if isPct {
		f /= 100
	}
	if isPct && (f < 0 || f > 1) {
		return 0, fmt.Errorf("must be a percentage 0..100%%")
	}
	if f < 0 || f > 1 {
		return 0, fmt.Errorf("must be a fraction 0..1 or a percentage 0..100%%; a bare %s is a fraction, for %s percent write %s%%", s, s, s)
	}
	return f, nil
}

func duration(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("must be a duration like 20ms")
	}
	if d < 0 || d > time.Minute {
		return 0, fmt.Errorf("must be 0..1m")
	}
	return d, nil
}

// rate reads bits/s with a decimal SI unit: 800k, 50M, 1.5G, 10Mbit/s.
func rate(v string) (float64, error) {
	f, err := units.BitRate(v)
	if err != nil {
		return 0, err
	}
	if f <= 0 {
		return 0, fmt.Errorf("must be above 0 (leave rate out for a link without a rate limit), got %q", v)
	}
	return f, nil
}

// A Preset is a named link: what each direction does.
type Preset struct {
	Name, About string
	Up, Down    Impair // Up: client to server; Down: server to client
}

// Presets are the named links --link knows. Their values are typical, not measured:
// each About says what it stands for.
var Presets = []Preset{
	{"lan", "a wired LAN: 1 Gbit/s, 0.1 ms each way, no loss",
		Impair{RateBps: 1e9, Delay: 100 * time.Microsecond},
		Impair{RateBps: 1e9, Delay: 100 * time.Microsecond}},
	{"wan", "a continental WAN path: 100 Mbit/s, 20 ms each way, 0.1% loss",
		Impair{RateBps: 100e6, Delay: 20 * time.Millisecond, Loss: 0.001, Queue: 500},
		Impair{RateBps: 100e6, Delay: 20 * time.Millisecond, Loss: 0.001, Queue: 500}},
	{"lossy-wifi", "busy Wi-Fi: 30 Mbit/s, 3 ms +/-2 ms, 2% loss in bursts of 3, some reordering",
		Impair{RateBps: 30e6, Delay: 3 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 0.02, Burst: 3, Reorder: 0.005, Queue: 200},
		Impair{RateBps: 30e6, Delay: 3 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 0.02, Burst: 3, Reorder: 0.005, Queue: 200}},
	{"satellite", "geostationary satellite: 20 Mbit/s down, 5 Mbit/s up, 300 ms each way, 0.5% loss",
		Impair{RateBps: 5e6, Delay: 300 * time.Millisecond, Loss: 0.005, Queue: 1000},
		Impair{RateBps: 20e6, Delay: 300 * time.Millisecond, Loss: 0.005, Queue: 1000}},
	{"lte", "LTE: 50 Mbit/s down, 10 Mbit/s up, 25 ms +/-10 ms each way, 0.5% loss",
		Impair{RateBps: 10e6, Delay: 25 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.005, Queue: 300},
		Impair{RateBps: 50e6, Delay: 25 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: 0.005, Queue: 300}},
}

// PresetByName finds a preset; the error lists the known names.
func PresetByName(name string) (Preset, error) {
	var names []string
	for _, p := range Presets {
		if p.Name == name {
			return p, nil
		}
		names = append(names, p.Name)
	}
	return Preset{}, fmt.Errorf("--link: unknown link %q (known: %s)", name, strings.Join(names, ", "))
}
