package auth

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestAPIKeys(t *testing.T) {
	keys, err := NewAPIKeys("k-0123456789abcdef", "second-key-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		header string
		want   bool
	}{
		{"Bearer k-0123456789abcdef", true},
		{"bearer second-key-0123456789", true},
		{"Bearer   k-0123456789abcdef ", true},
		{"Bearer k-0123456789abcde", false},
		{"Bearer k-0123456789abcdef0", false},
		{"Basic k-0123456789abcdef", false},
		{"k-0123456789abcdef", false},
		{"Bearer ", false},
		{"", false},
	}
	for _, tc := range cases {
		if got := keys.Check(tc.header); got != tc.want {
			t.Errorf("Check(%q) = %v", tc.header, got)
		}
	}
	for header, want := range map[string]int{
		"Bearer k-0123456789abcdef": 0, "Bearer second-key-0123456789": 1, "Bearer nope": -1, "": -1,
	} {
		if got := keys.Index(header); got != want {
			t.Errorf("Index(%q) = %d, want %d", header, got, want)
		}
	}
	var none *APIKeys
	if none.Check("Bearer x") || none.Len() != 0 || none.Index("Bearer x") != -1 {
		t.Error("nil APIKeys accepts")
	}
}

func TestNewAPIKeysRefuses(t *testing.T) {
	for _, keys := range [][]string{nil, {""}, {"ok-key", "has space"}, {"tab\tkey"}, {"nul\x00"}} {
		if _, err := NewAPIKeys(keys...); err == nil {
			t.Errorf("NewAPIKeys(%q) accepted", keys)
		}
	}
}

func TestAPIKeysRedacted(t *testing.T) {
	const secret = "k-0123456789abcdef"
	keys, err := NewAPIKeys(secret)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%d", "%q"} {
		out = append(out, fmt.Sprintf(verb, keys), fmt.Sprintf(verb, *keys), fmt.Sprintf(verb, struct{ K *APIKeys }{keys}))
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "keys", keys)
	out = append(out, logged.String())
	for _, s := range out {
		if strings.Contains(s, secret) || strings.Contains(s, "0x") || len(s) > 200 {
			t.Errorf("APIKeys printed as %q", s)
		}
	}
}
