package remote

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// pwned is a server's words made to drive a terminal: an 8-bit CSI clearing the
// screen and turning it red, and a right-to-left override that shows "exe.png".
const pwned = "\u009b2J\u009b31mPWNED \u202egnp.exe"

// pwnedJSON is pwned as a JSON string's contents, escaped as any JSON writer may.
const pwnedJSON = `\u009b2J\u009b31mPWNED \u202egnp.exe`

// rawChars are pwned's characters that must never reach a terminal unescaped.
var rawChars = []string{"\u009b", "\u202e", "\x1b"}

// hasRaw reports which of rawChars s holds, if any.
func hasRaw(s string) string {
	for _, c := range rawChars {
		if strings.Contains(s, c) {
			return c
		}
	}
	return ""
}

// writeFrame writes body as one frame, unchecked: what a hostile peer sends.
func writeFrame(tb testing.TB, c net.Conn, body string) {
	tb.Helper()
	b := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	if _, err := c.Write(append(b, body...)); err != nil {
		tb.Fatal(err)
	}
}

// fakeServer listens on loopback and runs serve on the first connection (closed
// after it), as a hostile server would; the test waits for it.
func fakeServer(tb testing.TB, serve func(c net.Conn, cc *ControlConn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		serve(c, NewControlConn(c))
	}()
	tb.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// TestDecodeRefusesHiddenText: the text fields carry no C1 control, nor any of the
// invisible characters that reorder or hide text (bidirectional overrides and
// isolates, zero widths, line separators, tags).
func TestDecodeRefusesHiddenText(t *testing.T) {
	for _, tc := range []struct{ name, text string }{
		{"8-bit CSI", `\u009b2J`},
		{"NEL", `a\u0085b`},
		{"C1 first", `\u0080`},
		{"C1 last", `\u009f`},
		{"DEL", `\u007f`},
		{"right-to-left override", `\u202egnp.exe`},
		{"left-to-right embedding", `\u202a`},
		{"right-to-left isolate", `\u2067x\u2069`},
		{"first strong isolate", `\u2068`},
		{"line separator", `a\u2028b`},
		{"paragraph separator", `\u2029`},
		{"right-to-left mark", `\u200f`},
		{"zero width space", `\u200b`},
		{"arabic letter mark", `\u061c`},
		{"byte order mark", `\ufeff`},
		{"word joiner", `\u2060`},
		{"interlinear annotation", `\ufff9`},
		{"tag", `\udb40\udc41`}, // U+E0041, as a JSON surrogate pair
		{"the report's refusal", pwnedJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, body := range []string{
				`{"v":1,"type":"refuse","error":"` + tc.text + `"}`,
				`{"v":1,"type":"bye","reason":"` + tc.text + `"}`,
				`{"v":1,"type":"hello","software":"` + tc.text + `"}`,
				`{"v":1,"type":"results","id":1,"complete":false,"error":"` + tc.text + `"}`,
			} {
				if m, err := Decode([]byte(body)); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "control character U+") {
					t.Errorf("Decode(%s) = %#v, %v; want ErrMalformed naming the control character", body, m, err)
				}
			}
		})
	}
	// Printable text in any script passes, and so does what sanitize leaves.
	for _, ok := range []string{"naïve café", "日本語のエラー", "שגיאה", "ошибка: 5 µs ± 2", sanitize(pwned)} {
		if _, err := Decode([]byte(`{"v":1,"type":"bye","reason":"` + ok + `"}`)); err != nil {
			t.Errorf("Decode(bye %q): %v", ok, err)
		}
	}
}

// TestPrintable: what a terminal would act on, or not show, comes out escaped as Go
// writes it; printable text in any script is left as it is.
func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "server busy: 4 sessions", "server busy: 4 sessions"},
		{"other scripts", "naïve 日本語 שגיאה ± µs", "naïve 日本語 שגיאה ± µs"},
		{"the report's refusal", pwned, `\u009b2J\u009b31mPWNED \u202egnp.exe`},
		{"ESC", "a\x1b[2Jb", `a\x1b[2Jb`},
		{"newline and tab", "a\nb\tc", `a\x0ab\x09c`},
		{"DEL", "\x7f", `\x7f`},
		{"isolates", "\u2066x\u2069", `\u2066x\u2069`},
		{"line separator", "a\u2028b", `a\u2028b`},
		{"no-break space", "a\u00a0b", `a\u00a0b`},
		{"tag", "\U000e0041", `\U000e0041`},
		{"private use", "\ue000", `\ue000`},
		{"invalid utf-8", "a\xffb\xc3", `a\xffb\xc3`},
		{"replacement character", "\ufffd", `\ufffd`},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Printable(tc.in); got != tc.want {
				t.Errorf("Printable(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestClientRefusalWordsEscaped: a hostile server's refusal that would clear the
// terminal and reverse a file name never reaches the client's error raw: the client
// refuses the message at decode, naming the character, and a RefusedError shows
// whatever reason it holds escaped.
func TestClientRefusalWordsEscaped(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string // the server's answer to auth
	}{
		{"session refused", `{"v":1,"type":"refuse","error":"` + pwnedJSON + `"}`},
		{"bye", `{"v":1,"type":"bye","reason":"` + pwnedJSON + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeServer(t, func(c net.Conn, cc *ControlConn) {
				ctx := context.Background()
				if _, err := cc.ReadMsg(ctx, 5*time.Second); err != nil {
					return
				}
				n, _ := newNonce()
				if cc.WriteMsg(&Challenge{Nonce: n, Auth: AuthNone, Software: "hostile"}) != nil {
					return
				}
				if _, err := cc.ReadMsg(ctx, 5*time.Second); err != nil {
					return
				}
				writeFrame(t, c, tc.body)
				cc.ReadMsg(ctx, 5*time.Second) // until the client hangs up
			})
			cl, err := (&Dialer{Timeout: 5 * time.Second, Driver: StreamTest{}}).Dial(context.Background(), addr)
			if err == nil {
				cl.Close()
				t.Fatal("Dial succeeded; want the hostile refusal to fail it")
			}
			if c := hasRaw(err.Error()); c != "" {
				t.Errorf("Dial: error %q holds %U raw", err, []rune(c)[0])
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "control character U+009B") {
				t.Errorf("Dial: %v; want the message refused as malformed, naming U+009B", err)
			}
		})
	}
	re := &RefusedError{Reason: pwned}
	if got, want := re.Error(), `remote: server refused: \u009b2J\u009b31mPWNED \u202egnp.exe`; got != want {
		t.Errorf("RefusedError{%q}.Error() = %q, want %q", pwned, got, want)
	}
}

// FuzzPrintable: Printable's output is valid UTF-8 with nothing in it that a
// terminal would act on or not show, and text that has nothing of the kind comes
// out as it went in.
func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"", "plain words", pwned, "a\x1b[2Jb\n", "日本語 שגיאה", "\xff\xc3", "\U000e0041\ufeff\u2028", `\u009b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := Printable(s)
		if !utf8.ValidString(out) {
			t.Fatalf("Printable(%q) = %q: not valid UTF-8", s, out)
		}
		for _, r := range out {
			if !printableRune(r) {
				t.Fatalf("Printable(%q) = %q holds %U", s, out, r)
			}
		}
		clean := utf8.ValidString(s)
		for _, r := range s {
			clean = clean && printableRune(r)
		}
		if clean && out != s {
			t.Fatalf("Printable(%q) = %q; want it unchanged", s, out)
		}
		if err := checkText("text", out, len(out), false); err != nil {
			t.Fatalf("Printable(%q) = %q, which checkText refuses: %v", s, out, err)
		}
	})
}
