package auth

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"
)

func TestTokenFromRequest(t *testing.T) {
	cases := []struct {
		name   string
		target string
		auth   string
		want   string
	}{
		{"none", "/connect/ws", "", ""},
		{"query", "/connect/ws?token=abc", "", "abc"},
		{"query escaped", "/connect/ws?token=a%2Eb%2Ec", "", "a.b.c"},
		{"bearer", "/connect/ws", "Bearer abc", "abc"},
		{"bearer any case", "/connect/ws", "bEaReR abc", "abc"},
		{"query wins", "/connect/ws?token=q", "Bearer h", "q"},
		{"empty query falls back", "/connect/ws?token=", "Bearer h", "h"},
		{"basic is ignored", "/connect/ws", "Basic dXNlcjpwYXNz", ""},
		{"scheme only", "/connect/ws", "Bearer", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, tc.target, nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			r.AddCookie(&http.Cookie{Name: "token", Value: "cookie"})
			if got := TokenFromRequest(r); got != tc.want {
				t.Fatalf("token = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	cases := []struct{ in, want string }{
		{"/connect/sse?channel=news&token=SECRET&cursor=abc", "/connect/sse?channel=news&token=REDACTED&cursor=abc"},
		{"/connect/sse?token=SECRET&token=TWO", "/connect/sse?token=REDACTED&token=REDACTED"},
		{"/connect/sse?%74oken=SECRET", "/connect/sse?%74oken=REDACTED"},
		{"/connect/sse?TOKEN=SECRET&access_token=S2", "/connect/sse?TOKEN=REDACTED&access_token=REDACTED"},
		{"/connect/sse?a=1;token=SECRET", "/connect/sse?a=1;token=REDACTED"},
		{"/connect/sse?token", "/connect/sse?token"},
		{"/connect/sse?channel=token", "/connect/sse?channel=token"},
		{"/connect/sse?a=%zz&token=SECRET&", "/connect/sse?a=%zz&token=REDACTED&"},
		{"https://user:SECRET@host/p?x=1", "https://user:xxxxx@host/p?x=1"},
		{"/connect/ws", "/connect/ws"},
		{"/api/history?api_key=K&apikey=K2&client_secret=S&password=P&key=idem", "/api/history?api_key=REDACTED&apikey=REDACTED&client_secret=REDACTED&password=REDACTED&key=idem"},
		{"/p?tokens=x&channel=a", "/p?tokens=REDACTED&channel=a"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			u, err := url.Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := RedactURL(u); got != tc.want {
				t.Fatalf("RedactURL = %q, want %q", got, tc.want)
			}
			if u.String() != tc.in {
				t.Fatalf("RedactURL changed its argument to %q", u)
			}
		})
	}
	if RedactURL(nil) != "" {
		t.Fatal("nil URL")
	}
}

func TestIPKey(t *testing.T) {
	cases := []struct{ addr, want string }{
		{"203.0.113.7", "203.0.113.7"},
		{"::ffff:203.0.113.7", "203.0.113.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
	}
	for _, tc := range cases {
		if got := IPKey(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("IPKey(%s) = %s, want %s", tc.addr, got, tc.want)
		}
	}
	if got := IPKey(netip.Addr{}); got != "invalid IP" {
		t.Errorf("IPKey(zero) = %q", got)
	}
}
