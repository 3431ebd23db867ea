package auth

import (
	"strings"
	"testing"
)

func TestValidatePattern(t *testing.T) {
	cases := []struct {
		p  string
		ok bool
	}{
		{"news", true},
		{"orders:42", true},
		{"orders:*", true},
		{"orders*", true},
		{"user#17", true},
		{"user#*", true},
		{"*", true},
		{"", false},
		{"**", false},
		{"orders:**", false},
		{"a*b", false},
		{"*orders", false},
		{"orders:*:x", false},
		{"chat room", false},
		{"news\n", false},
		{strings.Repeat("a", 255), true},
		{strings.Repeat("a", 256), false},
		{strings.Repeat("a", 254) + "*", true},
		{strings.Repeat("a", 255) + "*", false},
	}
	for _, tc := range cases {
		t.Run(tc.p, func(t *testing.T) {
			if err := ValidatePattern(tc.p); (err == nil) != tc.ok {
				t.Fatalf("ValidatePattern(%q) = %v, want ok %v", tc.p, err, tc.ok)
			}
		})
	}
}

func TestMatchPattern(t *testing.T) {
	cases := []struct {
		p, ch string
		want  bool
	}{
		{"news", "news", true},
		{"news", "news2", false},
		{"news", "new", false},
		{"news", "News", false},
		{"orders:*", "orders:1", true},
		{"orders:*", "orders:1:2", true},
		{"orders:*", "orders:", false},
		{"orders:*", "orders", false},
		{"orders:*", "ordersX:1", false},
		{"orders:*", "xorders:1", false},
		{"orders*", "orders", false},
		{"orders*", "ordersX:1", true},
		{"*", "a", true},
		{"*", "", false},
	}
	for _, tc := range cases {
		if got := MatchPattern(tc.p, tc.ch); got != tc.want {
			t.Errorf("MatchPattern(%q, %q) = %v", tc.p, tc.ch, got)
		}
	}
}

func TestClaimsGrants(t *testing.T) {
	c := &Claims{Subject: "17", Channels: []string{"orders:*"}, Publish: []string{"chat:17"}}
	cases := []struct {
		ch       string
		sub, pub bool
	}{
		{"user#17", true, false},
		{"user#170", false, false},
		{"user#1", false, false},
		{"orders:1", true, false},
		{"chat:17", false, true},
		{"chat:170", false, false},
	}
	for _, tc := range cases {
		if c.CanSubscribe(tc.ch) != tc.sub || c.CanPublish(tc.ch) != tc.pub {
			t.Errorf("%s: subscribe %v publish %v", tc.ch, c.CanSubscribe(tc.ch), c.CanPublish(tc.ch))
		}
	}
	if (&Claims{}).CanSubscribe("user#") {
		t.Error("claims without a subject own user#")
	}
	var none *Claims
	if none.CanSubscribe("user#") || none.CanPublish("x") {
		t.Error("nil claims grant")
	}
}
