package testutil

import (
	"io"
	"net"
	"sync"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
)

// Proxy forwards TCP connections to an API server or, while hung, accepts
// them and never answers: an API server that hangs, for the tests of what
// the hub does then. Its TLS passes through, so a kubeconfig of the API
// server works through it once its server is the proxy's address.
type Proxy struct {
	ln     net.Listener
	target string
	// HungConns gets a token (when it has room) for each connection held
	// unanswered.
	HungConns chan struct{}

	mu    sync.Mutex
	hung  bool
	conns map[net.Conn]struct{}
}

// StartProxy forwards a loopback port to target (host:port) until the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, HungConns: make(chan struct{}, 1024), conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() {
		_ = ln.Close()
		p.closeAll()
	})
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetHung switches the mode and cuts every open connection, so that the
// clients' next requests see the new mode.
func (p *Proxy) SetHung(hung bool) {
	p.mu.Lock()
	p.hung = hung
	p.mu.Unlock()
	p.closeAll()
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

func (p *Proxy) forward(conn net.Conn) {
	upstream, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = conn.Close()
		return
	}
	p.mu.Lock()
	p.conns[upstream] = struct{}{}
	p.mu.Unlock()
	go func() {
		_, _ = io.Copy(upstream, conn)
		_ = upstream.Close()
	}()
	_, _ = io.Copy(conn, upstream)
	_ = conn.Close()
}

func (p *Proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
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
