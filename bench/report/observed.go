package report

import "encoding/json"

// Observations: what an experiment saw that Metrics has no field for, in
// Result.Observed (the JSON keeps its plain keys). Each is declared here once, with
// the Go type of its value: an experiment writes it with Set, a property reads it
// with Get (or ObsNum, obsStr, obsFlag), and both name the same variable, so a
// property that reads an observation no one declares does not compile, and a
// writer cannot store a value of another type.

// An Obs names one observation and the type of its value.
type Obs[T any] struct{ key string }

// declared holds every observation's key, so that no two share one.
var declared = map[string]bool{}

// newObs declares observation key; a key declared twice panics at init.
func newObs[T any](key string) Obs[T] {
	if declared[key] {
		panic("report: observation " + key + " declared twice")
	}
	declared[key] = true
	return Obs[T]{key}
}

// Key is the observation's JSON name.
func (k Obs[T]) Key() string { return k.key }

// An ObsKey is any observation, whatever its type: lists of them pick evidence.
type ObsKey interface{ Key() string }

// Set records observation k as v in o.
func Set[T any](o map[string]any, k Obs[T], v T) { o[k.key] = v }

// Get reads observation k from o; ok is false when o lacks it or holds something
// else. A number read back from a JSON file is a float64: it converts to k's
// numeric type.
func Get[T any](o map[string]any, k Obs[T]) (v T, ok bool) {
	raw, present := o[k.key]
	if !present {
		return v, false
	}
	if t, is := raw.(T); is {
		return t, true
	}
	f, isNum := asFloat(raw)
	if !isNum {
		return v, false
	}
	switch p := any(&v).(type) {
	case *int:
		*p = int(f)
	case *int64:
		*p = int64(f)
	case *uint64:
		*p = uint64(f)
	case *float64:
		*p = f
	default:
		return v, false
	}
	return v, true
}

// asFloat is a numeric observation's value as a float64.
func asFloat(v any) (float64, bool) {
	switch v := v.(type) {
	case int:
		return float64(v), true
	case int32:
		return float64(v), true
	case int64:
		return float64(v), true
	case uint32:
		return float64(v), true
	case uint64:
		return float64(v), true
	case float32:
		return float64(v), true
	case float64:
		return v, true
	case json.Number:
		f, err := v.Float64()
		return f, err == nil
	}
	return 0, false
}

// Written by bench/bottleneck.go.
var (
	ObsAloneGoodputBps       = newObs[float64]("alone_goodput_bps")
	ObsAloneLostMsgs         = newObs[uint64]("alone_lost_msgs")
	ObsAloneRetransmits      = newObs[uint64]("alone_retransmits")
	ObsAloneSendBps          = newObs[float64]("alone_send_bps")
	ObsAloneSentMsgs         = newObs[uint64]("alone_sent_msgs")
	ObsAloneShareOfLink      = newObs[float64]("alone_share_of_link")
	ObsCompetitor            = newObs[string]("competitor")
	ObsCompetitorGoodputBps  = newObs[float64]("competitor_goodput_bps")
	ObsCompetitorLostMsgs    = newObs[uint64]("competitor_lost_msgs")
	ObsCompetitorSentMsgs    = newObs[uint64]("competitor_sent_msgs")
	ObsCompetitorShareOfLink = newObs[float64]("competitor_share_of_link")
	ObsJainFairness          = newObs[float64]("jain_fairness")
	ObsLinkRateBps           = newObs[float64]("link_rate_bps")
	ObsOfferedRateBps        = newObs[float64]("offered_rate_bps")
	ObsSharedGoodputBps      = newObs[float64]("shared_goodput_bps")
	ObsSharedLostMsgs        = newObs[uint64]("shared_lost_msgs")
	ObsSharedRetransmits     = newObs[uint64]("shared_retransmits")
	ObsSharedSentMsgs        = newObs[uint64]("shared_sent_msgs")
	ObsSharedShareOfLink     = newObs[float64]("shared_share_of_link")
	ObsSkipped               = newObs[string]("skipped")
)

// Written by bench/boundaries.go.
var (
	ObsCoalescedReads        = newObs[int]("coalesced_reads")
	ObsSplitReads            = newObs[int]("split_reads")
	ObsBytesInOrder          = newObs[bool]("bytes_in_order")
	ObsLargestRead           = newObs[int]("largest_read")
	ObsMaxMessageBytes       = newObs[int]("max_message_bytes")
	ObsMaxMessageOk          = newObs[bool]("max_message_ok")
	ObsMaxPlusOneEMSGSIZE    = newObs[bool]("max_plus_one_emsgsize")
	ObsMaxPlusOneError       = newObs[string]("max_plus_one_error")
	ObsMaxPlusOneKernelError = newObs[string]("max_plus_one_kernel_error")
	ObsOneMiBRawInOrder      = newObs[bool]("one_mib_raw_in_order")
	ObsOneMiBReads           = newObs[int]("one_mib_reads")
	ObsOneMiBSendError       = newObs[string]("one_mib_send_error")
	ObsOneMiBSendOk          = newObs[bool]("one_mib_send_ok")
	ObsRawStream             = newObs[bool]("raw_stream")
	ObsReadSizes             = newObs[map[string]int]("read_sizes")
	ObsReads                 = newObs[int]("reads")
	ObsReadsEqualToWrites    = newObs[bool]("reads_equal_to_writes")
	ObsWriteBytes            = newObs[int]("write_bytes")
	ObsWrites                = newObs[int]("writes")
)

// Written by bench/boundaries.go.
var (
	ObsMaxMessageLimit = newObs[string]("max_message_limit")
)

// Written by bench/clients.go.
var (
	ObsClients       = newObs[int]("clients")
	ObsFootprintOf   = newObs[string]("footprint_of")
	ObsMeasuredS     = newObs[float64]("measured_s")
	ObsRequestsPerS  = newObs[float64]("requests_per_s")
	ObsRTTP50Ns      = newObs[int64]("rtt_p50_ns")
	ObsRTTP99Ns      = newObs[int64]("rtt_p99_ns")
	ObsServerSockets = newObs[int]("server_sockets")
)

// Written by bench/clientsend.go.
var (
	ObsClientFDs                      = newObs[int]("client_fds")
	ObsHeapBytesPerClient             = newObs[float64]("heap_bytes_per_client")
	ObsKernelSocketBytesPerClient     = newObs[float64]("kernel_socket_bytes_per_client")
	ObsKernelSocketMemPagesDelta      = newObs[int64]("kernel_socket_mem_pages_delta")
	ObsKernelSocketSlabBytesPerClient = newObs[float64]("kernel_socket_slab_bytes_per_client")
	ObsKernelSocketsDelta             = newObs[int64]("kernel_sockets_delta")
	ObsProcessFDsDelta                = newObs[int]("process_fds_delta")
	ObsServerFDs                      = newObs[int]("server_fds")
	ObsServerFDsPerClient             = newObs[float64]("server_fds_per_client")
	ObsServerGoroutines               = newObs[int]("server_goroutines")
)

// Written by bench/close.go.
var (
	ObsListenerClosedExistingAnswered = newObs[bool]("listener_closed_existing_answered")
	ObsListenerClosedNewClient        = newObs[string]("listener_closed_new_client")
	ObsListenerClosedNewRefused       = newObs[bool]("listener_closed_new_refused")
	ObsPeerCloseDetectNs              = newObs[int64]("peer_close_detect_ns")
	ObsPeerCloseResult                = newObs[string]("peer_close_result")
	ObsPeerCloseSeen                  = newObs[bool]("peer_close_seen")
	ObsPeerCloseWaitedNs              = newObs[int64]("peer_close_waited_ns")
)

// Written by bench/closefar.go.
var (
	ObsEchoRTTNs               = newObs[int64]("echo_rtt_ns")
	ObsPeerCloseRequestToEOFNs = newObs[int64]("peer_close_request_to_eof_ns")
)

// Written by bench/fanout.go.
var (
	ObsCopiesPerMessage            = newObs[uint64]("copies_per_message")
	ObsCPUNsPerDelivery            = newObs[float64]("cpu_ns_per_delivery")
	ObsDeliveredMax                = newObs[uint64]("delivered_max")
	ObsDeliveredMin                = newObs[uint64]("delivered_min")
	ObsDeliveries                  = newObs[uint64]("deliveries")
	ObsGroup                       = newObs[string]("group")
	ObsListeningSockets            = newObs[int]("listening_sockets")
	ObsMode                        = newObs[string]("mode")
	ObsMulticast                   = newObs[string]("multicast")
	ObsRateBps                     = newObs[float64]("rate_bps")
	ObsReceiverSockets             = newObs[int]("receiver_sockets")
	ObsReceivers                   = newObs[int]("receivers")
	ObsSendCalls                   = newObs[uint64]("send_calls")
	ObsSenderBytesPerDeliveredByte = newObs[float64]("sender_bytes_per_delivered_byte")
	ObsSenderSockets               = newObs[int]("sender_sockets")
)

// Written by bench/hol.go.
var (
	ObsDeliveredFraction     = newObs[float64]("delivered_fraction")
	ObsDeliveredMsgs         = newObs[uint64]("delivered_msgs")
	ObsLateFractionOver2xP50 = newObs[float64]("late_fraction_over_2x_p50")
	ObsLatency               = newObs[*LatencyStats]("latency")
	ObsLatencyMaxNs          = newObs[int64]("latency_max_ns")
	ObsLatencyP50Ns          = newObs[int64]("latency_p50_ns")
	ObsLatencyP90Ns          = newObs[int64]("latency_p90_ns")
	ObsLatencyP99Ns          = newObs[int64]("latency_p99_ns")
	ObsLatencyP999Ns         = newObs[int64]("latency_p999_ns")
	ObsLatencyMinNs          = newObs[int64]("latency_min_ns")
	ObsMessageBytes          = newObs[int]("message_bytes")
	ObsSentMsgs              = newObs[uint64]("sent_msgs")
)

// Written by bench/pingpong.go.
var (
	ObsMaxSendLagNs  = newObs[int64]("max_send_lag_ns")
	ObsMeanSendLagNs = newObs[int64]("mean_send_lag_ns")
	ObsPacerSpinNs   = newObs[int64]("pacer_spin_ns")
	ObsRatePerS      = newObs[float64]("rate_per_s")
)

// Written by bench/refused.go.
var (
	ObsAddress              = newObs[string]("address")
	ObsDetectNs             = newObs[int64]("detect_ns")
	ObsDialError            = newObs[string]("dial_error")
	ObsDialNs               = newObs[int64]("dial_ns")
	ObsFirstSendError       = newObs[string]("first_send_error")
	ObsRefused              = newObs[bool]("refused")
	ObsRefusedAt            = newObs[string]("refused_at")
	ObsRefusedError         = newObs[string]("refused_error")
	ObsUnconnectedSendError = newObs[string]("unconnected_send_error")
	ObsUnconnectedTold      = newObs[bool]("unconnected_told")
	ObsWaitedNs             = newObs[int64]("waited_ns")
)

// Written by bench/slowreceiver.go.
var (
	ObsBytesDeliveredEqualSent = newObs[bool]("bytes_delivered_equal_sent")
	ObsDropsAccountForMissing  = newObs[bool]("drops_account_for_missing")
	ObsDropsAttributedMsgs     = newObs[uint64]("drops_attributed_msgs")
	ObsDropsSocket             = newObs[uint64]("drops_socket")
	ObsGoodputBps              = newObs[float64]("goodput_bps")
	ObsMissingMsgs             = newObs[uint64]("missing_msgs")
	ObsReaderRateBps           = newObs[float64]("reader_rate_bps")
	ObsSendRateBps             = newObs[float64]("send_rate_bps")
	ObsSendRateSteadyBps       = newObs[float64]("send_rate_steady_bps")
)

// Written by bench/stream.go.
var (
	ObsRwndLimitedNs   = newObs[int64]("rwnd_limited_ns")
	ObsSentDatagrams   = newObs[uint64]("sent_datagrams")
	ObsSndbufLimitedNs = newObs[int64]("sndbuf_limited_ns")
)

// Written by bench/streambidir.go.
var (
	ObsForwardRetransmits     = newObs[uint64]("forward_retransmits")
	ObsForwardRwndLimitedNs   = newObs[int64]("forward_rwnd_limited_ns")
	ObsForwardSndbufLimitedNs = newObs[int64]("forward_sndbuf_limited_ns")
)

// Written by bench/streammetrics.go.
var (
	ObsRecvBufferBytes      = newObs[int]("recv_buffer_bytes")
	ObsSendBufferBytes      = newObs[int]("send_buffer_bytes")
	ObsSenderInSendFraction = newObs[float64]("sender_in_send_fraction")
	ObsSenderInSendNs       = newObs[int64]("sender_in_send_ns")
)
