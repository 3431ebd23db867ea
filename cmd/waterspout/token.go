package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/waterspout/waterspout/server"
	"github.com/waterspout/waterspout/server/auth"
)

const tokenUsage = `Usage: waterspout token --sub SUBJECT [flags]

Prints a signed token for testing and for backends that cannot sign their
own. By default it is a connection token for browsers: it may subscribe to
the --channels patterns and to user#SUBJECT, and publish to the --publish
patterns where a namespace allows client publishing. --kind publisher makes
a token for backends on /api/*, which may publish to the --publish patterns.

A pattern is a channel name (orders:42) or a prefix and one trailing *
(orders:*); * alone matches every channel.

The key is the server's: the first HMAC secret of its configuration
(tokens.keys in the config file, WATERSPOUT_TOKEN_HMAC_SECRET_FILE,
WATERSPOUT_TOKEN_HMAC_SECRET), with its key id, and the configured issuer and
audience, so that the token verifies on a server with the same settings.
--key-file signs with another key: an HMAC secret, or an RSA or P-256
private key in PEM for RS256 and ES256 (the server holds the public key).

Flags:
  --sub SUBJECT        the user the token is for (required)
  --channels LIST      comma-separated patterns it may subscribe to
  --publish LIST       comma-separated patterns it may publish to
  --ttl D              lifetime (default 1h); keep it short, tokens cannot be revoked
  --kind KIND          connection (default) or publisher
  --key-file FILE      sign with this key instead of the configuration's
  --kid ID             key id to put in the header (default: the configured key's)
  --issuer ISS         iss claim (default: tokens.issuer)
  --audience AUD       aud claim (default: tokens.audience)
  --config FILE        the server's config file (env WATERSPOUT_CONFIG)
  -h, --help           show this help
`

// maxTokenTTL keeps a typo from minting a token that lives for years.
const maxTokenTTL = 30 * 24 * time.Hour

func runToken(_ context.Context, e *env, args []string) error {
	fs := newFlagSet("token")
	sub := fs.String("sub", "", "")
	channels := fs.String("channels", "", "")
	publish := fs.String("publish", "", "")
	ttl := durationFlag(fs, "ttl", time.Hour)
	kind := fs.String("kind", auth.KindConnection, "")
	keyFile := fs.String("key-file", "", "")
	kid := fs.String("kid", "", "")
	issuer := fs.String("issuer", "", "")
	audience := fs.String("audience", "", "")
	configFile := fs.String("config", "", "")
	pos, err := e.parseArgs(fs, args, tokenUsage)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case len(pos) > 0:
		return usagef("unexpected argument %q", pos[0])
	case *sub == "":
		return usagef("--sub is required")
	case *ttl <= 0 || *ttl > maxTokenTTL:
		return usagef("--ttl %v is outside 1s..%v", *ttl, maxTokenTTL)
	case *kind != auth.KindConnection && *kind != auth.KindPublisher:
		return usagef("--kind %q: want connection or publisher", *kind)
	}

	// The server's own configuration, from the same environment and file.
	var cargs []string
	if *configFile != "" {
		cargs = []string{"--config", *configFile}
	}
	cfg, err := server.LoadConfig(cargs, e.getenv)
	if err != nil {
		return usageError{err}
	}
	mc := auth.MintConfig{}
	if *keyFile != "" {
		// The configured iss and aud still apply: the token is for that server.
		mc, _ = cfg.MintConfig()
		mc.Key, mc.KeyID, mc.KeyFile = nil, "", *keyFile
	} else if mc, err = cfg.MintConfig(); err != nil {
		if errors.Is(err, server.ErrNoSigningSecret) {
			return usagef("%v: set WATERSPOUT_TOKEN_HMAC_SECRET_FILE, WATERSPOUT_TOKEN_HMAC_SECRET or tokens.keys, or pass --key-file", err)
		}
		return usageError{err}
	}
	mc.Sub, mc.TTL, mc.Kind = *sub, *ttl, *kind
	mc.Channels, mc.Publish = server.SplitList(*channels), server.SplitList(*publish)
	if set["kid"] {
		mc.KeyID = *kid
	}
	if set["issuer"] {
		mc.Issuer = *issuer
	}
	if set["audience"] {
		mc.Audience = nil
		if *audience != "" {
			mc.Audience = []string{*audience}
		}
	}
	tok, err := auth.Mint(mc)
	if err != nil {
		return usageError{errors.New(strings.TrimPrefix(err.Error(), "auth: mint: "))}
	}
	_, err = fmt.Fprintln(e.stdout, tok)
	return err
}

// durationFlag defines a duration flag whose refusal says what a duration
// looks like (the flag package's own says only "parse error").
func durationFlag(fs *flag.FlagSet, name string, def time.Duration) *time.Duration {
	d := def
	fs.Func(name, "", func(v string) error {
		parsed, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("%q is not a duration: write a number with a unit, such as 90s, 10m or 24h", v)
		}
		d = parsed
		return nil
	})
	return &d
}
