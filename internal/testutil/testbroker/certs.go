package testbroker

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/strata-dev/strata/internal/metal/broker"
	"github.com/strata-dev/strata/internal/metal/broker/brokerclient"
	"github.com/strata-dev/strata/internal/pki"
)

// PKI is a CA for a test of the broker's mutual TLS, with files in a
// temporary directory: real certificates, as the local datacenter's.
type PKI struct {
	t   testing.TB
	dir string
	ca  *pki.CA
	// CAFile is the CA's certificate.
	CAFile string
}

// NewPKI makes a CA.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	ca, err := pki.NewCA("test-ca", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := &PKI{t: t, dir: dir, ca: ca, CAFile: filepath.Join(dir, "ca.crt")}
	if err := pki.WriteFile(p.CAFile, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// issue writes a certificate and key for the request and returns their paths.
func (p *PKI) issue(file string, req pki.Request) (certFile, keyFile string) {
	p.t.Helper()
	req.Lifetime = time.Hour
	certFile, keyFile = filepath.Join(p.dir, file+".crt"), filepath.Join(p.dir, file+".key")
	certPEM, key, err := p.ca.Issue(req, time.Now())
	if err != nil {
		p.t.Fatal(err)
	}
	if err := pki.WritePair(certFile, certPEM, keyFile, key); err != nil {
		p.t.Fatal(err)
	}
	return certFile, keyFile
}

// ServerOptions are a broker's options for mutual TLS with this CA: a
// serving certificate for 127.0.0.1 and the CA as the client CA.
func (p *PKI) ServerOptions() broker.ServerOptions {
	cert, key := p.issue("broker", pki.Request{CommonName: "broker", Hosts: []string{"127.0.0.1"},
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return broker.ServerOptions{TLSCertFile: cert, TLSKeyFile: key, ClientCAFile: p.CAFile}
}

// Client issues a client certificate for name with groups.
func (p *PKI) Client(name string, groups ...string) (certFile, keyFile string) {
	return p.issue(strings.ReplaceAll(name, "/", "_"), pki.Request{CommonName: name, Organizations: groups,
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
}

// Dial connects to the broker at addr trusting this CA, as name with
// groups, or with no certificate when name is "".
func (p *PKI) Dial(addr, name string, groups ...string) *grpc.ClientConn {
	p.t.Helper()
	pool, err := brokerclient.LoadCAPool(p.CAFile)
	if err != nil {
		p.t.Fatal(err)
	}
	o := brokerclient.Options{Addresses: []string{addr}, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	if name != "" {
		if o.Certificate, err = brokerclient.NewKeyPair(p.Client(name, groups...)); err != nil {
			p.t.Fatal(err)
		}
	}
	conn, err := brokerclient.Dial(o)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { _ = conn.Close() })
	return conn
}
