// Package wire is what every message carries and how a receiver judges it: the
// 48-byte header (run id, flow id, kind, 64-bit sequence number, send time,
// CRC32C of the header and of the payload), its codec and stamper, the payload
// pattern, and Accept, which sorts each received message into accepted, foreign,
// corrupt or malformed under the run's --verify policy.
//
// Decoding never trusts its input: a short, foreign or corrupt message is an error
// value, never a panic (FuzzDecodeHeader). Nothing here allocates per message.
package wire
