package remote

import "context"

// A Runner runs the server's half of the tests a server offers. It is the hook
// through which experiments run remotely: the session has already authenticated the
// client, checked the request against the server's limits, opened the data path,
// matched every data connection and datagram to the session by token and source
// address, and paced what the server sends. A Runner only measures.
type Runner interface {
	// Check refuses a request this runner cannot run, with an error the client will
	// read (it should name the field and the rule). It is called after the server's
	// limits passed and before any data socket opens.
	Check(req TestRequest) error
	// Serve runs the server's half of one test over d and returns what this side
	// measured. d.Peer is the client's control address, for logs. It must return
	// once ctx is done; the session then also sets every deadline of d's connections
	// in the past. d is closed after Serve returns. A Serve that ignores ctx holds
	// its session until it returns, except when the server is forced to stop
	// (Shutdown's context ended, or Close): the session then abandons it after
	// abandonWait (200 ms), closes d, and Shutdown or Close returns a *StuckError
	// naming the test; the Serve call is left to end on its own goroutine.
	Serve(ctx context.Context, d *Data) (Results, error)
}

// A Driver runs the client's half of a test, over the data path Client.Run opened.
// It must return once ctx is done (the server was lost, or the caller gave up).
type Driver interface {
	Drive(ctx context.Context, d *Data) (Results, error)
}
