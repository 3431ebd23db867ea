package brokertest

import (
	"net"
	"sync"
	"testing"
)

// Proxy is a TCP proxy on loopback in front of a server, for tests of
// network faults. It can stop forwarding the connections it holds while
// leaving them open (Blackhole: half-open connections, as after a NAT or a
// load balancer forgets them), or close them all and refuse new ones (Cut,
// until Restore: an outage).
type Proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  []*proxied
	refuse bool
}

// Direction is one way through a Proxy.
type Direction int

// The two directions.
const (
	ToServer Direction = iota
	ToClient
)

// proxied is one client's connection and the proxy's to the server.
type proxied struct {
	client, server net.Conn
	mu             sync.Mutex
	drop           [2]bool // by Direction
}

// StartProxy starts a proxy to target ("host:port"). The test's end closes
// it and every connection through it.
func StartProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

// Addr is the proxy's address, "127.0.0.1:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if pc := p.open(c); pc != nil {
			go p.pipe(pc, ToServer, pc.client, pc.server)
			go p.pipe(pc, ToClient, pc.server, pc.client)
		}
	}
}

// open connects client c to the target and counts the pair in, or closes
// c when the proxy refuses connections or the target does not answer. It
// dials under the lock, so that a Cut never misses a connection being made.
func (p *Proxy) open(c net.Conn) *proxied {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.refuse {
		c.Close()
		return nil
	}
	s, err := net.DialTimeout("tcp", p.target, WaitTimeout)
	if err != nil {
		c.Close()
		return nil
	}
	pc := &proxied{client: c, server: s}
	p.conns = append(p.conns, pc)
	p.wg.Add(2)
	return pc
}

// pipe copies src to dst, dropping what it reads while that direction is
// blackholed. When either side ends, it closes both, as a proxy does.
func (p *Proxy) pipe(pc *proxied, dir Direction, src, dst net.Conn) {
	defer p.wg.Done()
	defer pc.close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			pc.mu.Lock()
			drop := pc.drop[dir]
			pc.mu.Unlock()
			if !drop {
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

func (pc *proxied) close() {
	pc.client.Close()
	pc.server.Close()
}

// Blackhole drops everything sent on the connections open now, in the
// given directions, and leaves them open; new connections are forwarded.
func (p *Proxy) Blackhole(dirs ...Direction) {
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

// Cut closes every connection through the proxy; with refuse, new ones
// are closed as they come, until Restore.
func (p *Proxy) Cut(refuse bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refuse = refuse
	for _, pc := range p.conns {
		pc.close()
	}
	p.conns = nil
}

// Restore forwards new connections again after a Cut that refused them.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.refuse = false
	p.mu.Unlock()
}

func (p *Proxy) close() {
	p.ln.Close()
	p.Cut(true)
	p.wg.Wait()
}
