package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// newBenchServer builds a server for a benchmark of its handler: the
// defaults with one API key, no rate limits and warnings only, then what
// mutate changes. It shuts down when b ends.
func newBenchServer(b *testing.B, mutate func(*Config)) *Server {
	cfg := Config{
		Addr:       "127.0.0.1:0",
		APIKeys:    []string{"bench-key-0123456789"},
		RateLimits: RateLimits{ConnectionsPerIP: -1, ConnectsPerSecond: -1, PublishesPerSecond: -1, CommandsPerSecond: -1},
		Logger:     slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

// BenchmarkPublish is one POST /api/publish through the whole handler
// (routing, middleware, the API key, decoding, the memory broker, the
// answer), without the network and net/http's connection handling: the
// server's own part of S4, as bench/server.json configures it.
func BenchmarkPublish(b *testing.B) {
	s := newBenchServer(b, nil)
	h := s.Handler()
	body := []byte(`{"channel":"bench","data":{"s":1,"t":1764817200000000000,"x":"a typical small notification payload"}}`)
	b.ReportAllocs()
	for b.Loop() {
		serveBench(b, h, http.MethodPost, "/api/publish", body)
	}
}

// BenchmarkBatch is one POST /api/batch of 100 publications through the
// whole handler, as BenchmarkPublish is for one: the same payload, spread
// over 10 channels. ns/publication and publications/s are per publication,
// for comparing with BenchmarkPublish's ns/op (DESIGN.md: a batch publish
// ≥ 5 × the single-publish rate).
func BenchmarkBatch(b *testing.B) {
	const perBatch = 100
	s := newBenchServer(b, nil)
	h := s.Handler()
	var body bytes.Buffer
	body.WriteString(`{"publications":[`)
	for i := range perBatch {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"channel":"bench:%d","data":{"s":%d,"t":1764817200000000000,"x":"a typical small notification payload"}}`, i%10, i)
	}
	body.WriteString(`]}`)
	b.ReportAllocs()
	for b.Loop() {
		serveBench(b, h, http.MethodPost, "/api/batch", body.Bytes())
	}
	pubs := float64(b.N * perBatch)
	elapsed := b.Elapsed()
	b.ReportMetric(float64(elapsed.Nanoseconds())/pubs, "ns/publication")
	b.ReportMetric(pubs/elapsed.Seconds(), "publications/s")
}

// serveBench makes one API request through h as the bench's backend does
// (its key, from loopback; a body is JSON), failing b unless it is
// answered 200. It returns the answer's size.
func serveBench(b *testing.B, h http.Handler, method, path string, body []byte) int {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, path, rd)
	if err != nil {
		b.Fatal(err)
	}
	req.RemoteAddr = "127.0.0.1:40000"
	if body != nil {
		req.Header.Set("Content-Type", jsonType)
	}
	req.Header.Set("Authorization", "Bearer bench-key-0123456789")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		b.Fatalf("status %d: %s", w.Code, w.Body)
	}
	return w.Body.Len()
}
