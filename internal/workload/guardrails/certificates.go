package guardrails

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/strata-dev/strata/internal/pki"
)

// Files of Certificates' directory.
const (
	CAFile   = "ca.crt"
	caKey    = "ca.key"
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
)

// Lifetimes of the certificates, and how long before its end one is renewed.
const (
	caLifetime      = 10 * 365 * 24 * time.Hour
	servingLifetime = 365 * 24 * time.Hour
	renewBefore     = 30 * 24 * time.Hour
)

// Certificates keeps a self-signed CA and a serving certificate for hosts
// (IP addresses or DNS names) in dir, for the webhook's HTTPS server, and
// returns the CA's certificate (the caBundle the API servers trust) and the
// paths of the serving certificate and key. Certificates found in dir are
// reused while they are valid: they parse, match their keys, the serving
// one is signed by the CA and names every host, and neither ends within 30
// days. Otherwise the serving certificate is made anew, and the CA too when
// it is the one at fault; the caller installs the returned caBundle each
// time (install.Hub, install.Workload).
func Certificates(dir string, hosts []string) (caBundle []byte, certFile, keyFile string, err error) {
	return certificates(dir, hosts, time.Now())
}

func certificates(dir string, hosts []string, now time.Time) (caBundle []byte, certFile, keyFile string, err error) {
	if len(hosts) == 0 {
		return nil, "", "", errors.New("certificates: no host to serve")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", "", fmt.Errorf("creating the certificate directory: %w", err)
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	certFile, keyFile = path(CertFile), path(KeyFile)

	ca, err := pki.LoadCA(path(CAFile), path(caKey), renewBefore, now)
	if err != nil {
		if ca, err = pki.NewCA("strata-guardrails-ca", caLifetime, now); err != nil {
			return nil, "", "", err
		}
		if err := ca.Write(path(CAFile), path(caKey)); err != nil {
			return nil, "", "", err
		}
	}
	req := pki.Request{CommonName: hosts[0], Hosts: hosts, Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Lifetime: servingLifetime}
	if _, err := ca.Ensure(certFile, keyFile, req, renewBefore, now); err != nil {
		return nil, "", "", err
	}
	return ca.PEM, certFile, keyFile, nil
}
