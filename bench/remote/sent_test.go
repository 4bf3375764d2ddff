package remote

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// sentRunner reports its senders done once, with want, tries a second time (which
// must fail), and returns what the two calls said.
type sentRunner struct{ want json.RawMessage }

func (sentRunner) Check(TestRequest) error { return nil }

func (r sentRunner) Serve(ctx context.Context, d *Data) (Results, error) {
	first := d.ReportSent(r.want)
	second := d.ReportSent(r.want)
	select { // the client's results end the test
	case <-d.PeerDone():
	case <-ctx.Done():
	}
	out := map[string]string{"first": "ok", "second": "ok"}
	if first != nil {
		out["first"] = first.Error()
	}
	if second != nil {
		out["second"] = second.Error()
	}
	b, _ := json.Marshal(out)
	return Results{Complete: true, Counters: b}, nil
}

// TestSent: a server's "sent" reaches the client during the test, once, with its
// counters exactly; the client's PeerDone closes on it, and a second report fails.
func TestSent(t *testing.T) {
	want := json.RawMessage(`{"sent":[7,0,18446744073709551615]}`)
	addr := startServer(t, &Server{Key: testKey, Runner: sentRunner{want: want}})
	var got json.RawMessage
	drv := driverFunc(func(ctx context.Context, d *Data) (Results, error) {
		select {
		case <-d.PeerDone():
			got = d.PeerCounters()
			return Results{Complete: true}, nil
		case <-ctx.Done():
			return Results{}, ctx.Err()
		case <-time.After(10 * time.Second): // a hang guard: sent comes at once
			return Results{}, errors.New("no sent from the server within 10 s")
		}
	})
	c, err := (&Dialer{Key: testKey, Timeout: 5 * time.Second, Driver: drv}).Dial(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	res, err := c.Run(t.Context(), TestRequest{Experiment: "sent", Transport: "tcp", Size: 100, Duration: time.Second, Streams: 1, Direction: Reverse})
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("client's PeerCounters %s, want the server's %s", got, want)
	}
	var calls map[string]string
	if err := json.Unmarshal(res.Server.Counters, &calls); err != nil {
		t.Fatal(err)
	}
	if calls["first"] != "ok" || calls["second"] == "ok" {
		t.Errorf("ReportSent: first %q, second %q; want ok, then an error", calls["first"], calls["second"])
	}
}
