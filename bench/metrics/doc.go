// Package metrics holds the measuring instruments every experiment shares, each
// exact against a known answer and free of allocations per message:
//
//   - SeqTracker: per-flow sequence accounting (unique, duplicate, reordered,
//     late) over a bounded window (RFC 4737's definitions);
//   - Jitter: RFC 3550's interarrival jitter estimator;
//   - Latency: an HDR histogram of latencies with percentiles, moments and a CDF;
//   - Usage and ReadUsage: the process's CPU time and its cost per gigabyte.
//
// It knows nothing of transports or experiments: bench feeds it numbers.
package metrics
