package brokerclient

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync"
	"time"
)

// LoadCAPool reads a PEM file of CA certificates.
func LoadCAPool(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// KeyPair is a certificate and key read from files, read again when the
// certificate file changes: a renewed certificate (cert-manager rewrites
// its Secret's files, the local datacenter its home's) is used from the
// next TLS handshake on, without a restart.
type KeyPair struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
}

// NewKeyPair reads a certificate and its key, and fails when they do not
// load.
func NewKeyPair(certFile, keyFile string) (*KeyPair, error) {
	k := &KeyPair{certFile: certFile, keyFile: keyFile}
	if _, err := k.get(); err != nil {
		return nil, err
	}
	return k, nil
}

// get returns the certificate, read again if its file changed since; when
// the new files do not load (caught halfway through a rewrite), the one
// read before.
func (k *KeyPair) get() (*tls.Certificate, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	st, err := os.Stat(k.certFile)
	if err == nil && k.cert != nil && st.ModTime().Equal(k.modTime) {
		return k.cert, nil
	}
	cert, lerr := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	switch {
	case lerr == nil:
		k.cert = &cert
		if err == nil {
			k.modTime = st.ModTime()
		}
	case k.cert == nil:
		return nil, fmt.Errorf("loading the certificate %s and key %s: %w", k.certFile, k.keyFile, lerr)
	}
	return k.cert, nil
}

// GetCertificate serves the certificate (tls.Config.GetCertificate).
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) { return k.get() }

// GetClientCertificate presents the certificate as a client
// (tls.Config.GetClientCertificate).
func (k *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return k.get()
}
