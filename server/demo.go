package server

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"

	"github.com/labstack/echo/v4"
)

// demoPage is the page at /: pick a channel, watch messages arrive, publish.
// It loads only /client/waterspout.js and its own inline script and style.
//
//go:embed demo/index.html
var demoPage []byte

// demoCSP allows exactly the page's inline script (by hash), same-origin
// scripts (the client bundle, JSONP polls) and same-origin connections.
var demoCSP = "default-src 'self'; script-src 'self' '" + inlineScriptHash(demoPage) + "'; " +
	"style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// inlineScriptHash returns the CSP source of the page's inline <script>.
func inlineScriptHash(page []byte) string {
	const open, end = "<script>", "</script>"
	i := bytes.Index(page, []byte(open))
	if i < 0 {
		return "none"
	}
	body := page[i+len(open):]
	j := bytes.Index(body, []byte(end))
	if j < 0 {
		return "none"
	}
	sum := sha256.Sum256(body[:j])
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}

func (s *Server) handleDemo(c echo.Context) error {
	h := c.Response().Header()
	h.Set("Content-Security-Policy", demoCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	return c.Blob(http.StatusOK, "text/html; charset=utf-8", demoPage)
}
