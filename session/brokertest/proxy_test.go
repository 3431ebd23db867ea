package brokertest

import (
	"bufio"
	"errors"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// startEcho serves a line echo on loopback until the test ends.
func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// echoes sends a line on c and reports whether it came back within d.
func echoes(t *testing.T, c net.Conn, d time.Duration) bool {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "ping\n"
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, WaitTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// startProxied starts an echo server behind a proxy and returns the proxy
// and a connection through it that echoes.
func startProxied(t *testing.T) (*Proxy, net.Conn) {
	t.Helper()
	p := StartProxy(t, startEcho(t))
	c := dial(t, p.Addr())
	if !echoes(t, c, WaitTimeout) {
		t.Fatal("no echo through the proxy")
	}
	return p, c
}

// A blackholed connection stays open and carries nothing; one made after
// it is forwarded.
func TestProxyBlackhole(t *testing.T) {
	p, old := startProxied(t)
	p.Blackhole(ToClient)
	_ = old.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := old.Write([]byte("ping\n")); err != nil {
		t.Fatalf("write to a blackholed connection: %v", err)
	}
	_, err := old.Read(make([]byte, 8))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read from a blackholed connection: %v, want nothing (the deadline)", err)
	}
	if !echoes(t, dial(t, p.Addr()), WaitTimeout) {
		t.Fatal("a new connection is not forwarded after Blackhole")
	}
}

// Cut closes the connections; with refuse, new ones are closed until
// Restore.
func TestProxyCut(t *testing.T) {
	p, c := startProxied(t)
	p.Cut(true)
	if echoes(t, c, WaitTimeout) {
		t.Fatal("a cut connection still echoes")
	}
	if echoes(t, dial(t, p.Addr()), WaitTimeout) {
		t.Fatal("a connection made while refusing echoes")
	}
	p.Restore()
	if !echoes(t, dial(t, p.Addr()), WaitTimeout) {
		t.Fatal("no echo after Restore")
	}
	p.Cut(false)
	if !echoes(t, dial(t, p.Addr()), WaitTimeout) {
		t.Fatal("Cut(false) refused a new connection")
	}
}
