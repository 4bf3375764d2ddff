package lab

import "testing"

func TestTxDrops(t *testing.T) {
	text := []byte(`Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  tvu0: 1234567    1000    0    0    0     0          0         0  7654321    2000    0   42    0     0       0          0
`)
	got, err := txDrops(text, "tvu0")
	if err != nil || got != 42 {
		t.Fatalf("txDrops = %d, %v; want 42", got, err)
	}
	if _, err := txDrops(text, "eth9"); err == nil {
		t.Fatal("a missing device: no error")
	}
	if _, err := txDrops([]byte("  tvu0: 1 2 3\n"), "tvu0"); err == nil {
		t.Fatal("a short line: no error")
	}
}
