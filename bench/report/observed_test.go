package report

import (
	"encoding/json"
	"testing"
)

// TestObservations: an observation set in memory reads back as set; one read back
// from a JSON file (numbers as float64) converts to its declared type; an absent one
// or one of another kind reads as absent.
func TestObservations(t *testing.T) {
	o := map[string]any{}
	Set(o, ObsSendCalls, uint64(503))
	Set(o, ObsPeerCloseSeen, true)
	Set(o, ObsPeerCloseDetectNs, int64(-7))
	if v, ok := Get(o, ObsSendCalls); !ok || v != 503 {
		t.Errorf("in memory: send_calls = %v, %v; want 503", v, ok)
	}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if v, ok := Get(back, ObsSendCalls); !ok || v != 503 {
		t.Errorf("from JSON: send_calls = %v, %v; want 503", v, ok)
	}
	if v, ok := Get(back, ObsPeerCloseDetectNs); !ok || v != -7 {
		t.Errorf("from JSON: peer_close_detect_ns = %v, %v; want -7", v, ok)
	}
	if v, ok := Get(back, ObsPeerCloseSeen); !ok || !v {
		t.Errorf("from JSON: peer_close_seen = %v, %v; want true", v, ok)
	}
	if _, ok := Get(back, ObsPeerCloseResult); ok {
		t.Error("peer_close_result read back though never set")
	}
	back[ObsPeerCloseResult.Key()] = 42.0
	if _, ok := Get(back, ObsPeerCloseResult); ok {
		t.Error("a number read as the string observation peer_close_result")
	}
	if n, ok := ObsNum(back, ObsSendCalls); !ok || n != 503 {
		t.Errorf("ObsNum(send_calls) = %v, %v; want 503", n, ok)
	}
}

// TestObservationsDeclaredOnce: every key is declared once (newObs panics at init
// otherwise), and the declarations are the report's vocabulary: a sample of keys the
// property rows read is among them.
func TestObservationsDeclaredOnce(t *testing.T) {
	for _, k := range []string{"send_calls", "peer_close_seen", "reads_equal_to_writes", "latency_p99_ns", "shared_share_of_link"} {
		if !declared[k] {
			t.Errorf("observation %q not declared", k)
		}
	}
	if len(declared) < 100 {
		t.Errorf("%d observations declared, want the experiments' 100 and more", len(declared))
	}
}
