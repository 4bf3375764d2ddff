package remote

import (
	"errors"
	"strings"
	"testing"
)

// TestDecodeRefusesWrappingLimits: auth-ok's millisecond limits are checked in ms,
// as the wire has them, so that none wraps as a time.Duration (2^64-1 ms is not -1
// ms).
func TestDecodeRefusesWrappingLimits(t *testing.T) {
	for _, tc := range []struct{ name, limits, want string }{
		{"max duration wraps to 11 s", `"max_duration_ms":9223372036854`, "limits.max_duration_ms: must be 0..86400000, got 9223372036854"},
		{"max duration 2^64-1", `"max_duration_ms":18446744073709551615`, "limits.max_duration_ms: must be 0..86400000"},
		{"max duration 2^63", `"max_duration_ms":9223372036854775808`, "limits.max_duration_ms: must be 0..86400000"},
		{"idle timeout 2^64-1", `"idle_timeout_ms":18446744073709551615`, "limits.idle_timeout_ms: must be 0..86400000"},
		{"a day fits", `"max_duration_ms":86400000,"idle_timeout_ms":86400000`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"v":1,"type":"auth-ok","limits":{"max_sessions":1,"max_streams":1,"max_rate_bps":8000,"max_size":1,` + tc.limits + `}}`
			_, err := Decode([]byte(body))
			if (tc.want == "") != (err == nil) || (err != nil && (!errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want))) {
				t.Errorf("Decode(%s) = %v, want %q", body, err, tc.want)
			}
		})
	}
}
