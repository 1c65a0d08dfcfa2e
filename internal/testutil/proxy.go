package testutil

import (
	"net"
	"sync"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// Proxy forwards TCP connections to an API server or, while hung, passes no
// byte on its open connections and accepts new ones without ever answering:
// an API server that hangs (or a network that drops its packets), for the
// tests of what the hub does then. Its TLS passes through, so a kubeconfig of the API
// server works through it once its server is the proxy's address.
type Proxy struct {
	ln     net.Listener
	target string
	// HungConns gets a token (when it has room) for each connection held
	// unanswered.
	HungConns chan struct{}

	mu      sync.Mutex
	hung    bool
	resumed *sync.Cond // broadcast when hung is cleared or connections are cut
	gen     int        // counts the cuts: a connection of an older one is gone
	conns   map[net.Conn]struct{}
}

// StartProxy forwards a loopback port to target (host:port) until the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, HungConns: make(chan struct{}, 1024), conns: map[net.Conn]struct{}{}}
	p.resumed = sync.NewCond(&p.mu)
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.closeAll()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetHung switches the mode. Hanging freezes the open connections; coming
// back cuts them, so that the clients reconnect.
func (p *Proxy) SetHung(hung bool) {
	p.mu.Lock()
	p.hung = hung
	p.mu.Unlock()
	if !hung {
		p.closeAll()
	}
}

func (p *Proxy) serve() {
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns[conn] = struct{}{}
		hung := p.hung
		p.mu.Unlock()
		if hung {
			select {
			case p.HungConns <- struct{}{}:
			default:
			}
			continue // held open, never answered
		}
		go p.forward(conn)
	}
}

// answering waits while the proxy hangs; it says whether the connection of
// generation gen may go on.
func (p *Proxy) answering(gen int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.hung && p.gen == gen {
		p.resumed.Wait()
	}
	return p.gen == gen
}

// pipe copies src to dst, holding what it read while the proxy hangs.
func (p *Proxy) pipe(dst, src net.Conn, gen int) {
	defer func() { _ = dst.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.answering(gen) {
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *Proxy) forward(conn net.Conn) {
	upstream, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = conn.Close()
		return
	}
	p.mu.Lock()
	p.conns[upstream] = struct{}{}
	gen := p.gen
	p.mu.Unlock()
	go p.pipe(upstream, conn, gen)
	p.pipe(conn, upstream, gen)
}

func (p *Proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
	p.gen++
	p.resumed.Broadcast()
}

// KubeconfigWithServer is kubeconfig with the server of each of its clusters
// replaced by server.
func KubeconfigWithServer(t testing.TB, kubeconfig []byte, server string) []byte {
	t.Helper()
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cfg.Clusters {
		c.Server = server
	}
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
