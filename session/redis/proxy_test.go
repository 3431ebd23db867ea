package redis

import (
	"io"
	"net"
	"sync"
	"testing"
)

// proxy forwards TCP connections to a target and can silently stop
// forwarding the connections it has, leaving them open: a half-open
// connection, as after a NAT or load balancer drops its state.
type proxy struct {
	l      net.Listener
	target string

	mu    sync.Mutex
	conns []*proxied
	wg    sync.WaitGroup
}

type proxied struct {
	client, server net.Conn
	mu             sync.Mutex
	drop           [2]bool // by direction: toServer, toClient
}

const (
	toServer = 0
	toClient = 1
)

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		pc := &proxied{client: c, server: s}
		p.mu.Lock()
		p.conns = append(p.conns, pc)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(pc, toServer, c, s)
		go p.pipe(pc, toClient, s, c)
	}
}

// pipe copies src to dst until src fails, dropping what it reads once that
// direction is blackholed.
func (p *proxy) pipe(pc *proxied, dir int, src, dst net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			pc.mu.Lock()
			drop := pc.drop[dir]
			pc.mu.Unlock()
			if !drop {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			if err != io.EOF {
				dst.Close()
			}
			return
		}
	}
}

// blackholeExisting drops everything on the connections open now, in the
// given directions; new connections are forwarded normally.
func (p *proxy) blackholeExisting(dirs ...int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.conns {
		pc.mu.Lock()
		for _, d := range dirs {
			pc.drop[d] = true
		}
		pc.mu.Unlock()
	}
}

func (p *proxy) close() {
	p.l.Close()
	p.mu.Lock()
	for _, pc := range p.conns {
		pc.client.Close()
		pc.server.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
