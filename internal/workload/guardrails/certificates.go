package guardrails

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
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

	ca, caSigner, caPEM, err := loadCA(path(CAFile), path(caKey), now)
	if err != nil {
		if ca, caSigner, caPEM, err = newCA(now); err != nil {
			return nil, "", "", err
		}
		if err := writePair(path(CAFile), caPEM, path(caKey), caSigner); err != nil {
			return nil, "", "", err
		}
	}
	if err := checkServing(certFile, keyFile, ca, hosts, now); err == nil {
		return caPEM, certFile, keyFile, nil
	}
	certPEM, key, err := newServing(ca, caSigner, hosts, now)
	if err != nil {
		return nil, "", "", err
	}
	if err := writePair(certFile, certPEM, keyFile, key); err != nil {
		return nil, "", "", err
	}
	return caPEM, certFile, keyFile, nil
}

// loadCA reads the CA and its key; an error says why they cannot be reused.
func loadCA(certPath, keyPath string, now time.Time) (*x509.Certificate, crypto.Signer, []byte, error) {
	cert, certPEM, key, err := loadPair(certPath, keyPath)
	if err != nil {
		return nil, nil, nil, err
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, nil, nil, errors.New("not a CA certificate")
	}
	if err := checkTimes(cert, now); err != nil {
		return nil, nil, nil, err
	}
	return cert, key, certPEM, nil
}

// checkServing says why the serving certificate cannot be reused, or nil.
func checkServing(certPath, keyPath string, ca *x509.Certificate, hosts []string, now time.Time) error {
	cert, _, _, err := loadPair(certPath, keyPath)
	if err != nil {
		return err
	}
	if err := checkTimes(cert, now); err != nil {
		return err
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, host := range hosts {
		_, err := cert.Verify(x509.VerifyOptions{
			DNSName: host, Roots: roots, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		})
		if err != nil {
			return fmt.Errorf("the serving certificate does not serve %s: %w", host, err)
		}
	}
	return nil
}

func checkTimes(cert *x509.Certificate, now time.Time) error {
	if now.Before(cert.NotBefore) {
		return fmt.Errorf("certificate %s is not valid before %s", cert.Subject.CommonName, cert.NotBefore)
	}
	if now.Add(renewBefore).After(cert.NotAfter) {
		return fmt.Errorf("certificate %s ends %s, within %s", cert.Subject.CommonName, cert.NotAfter, renewBefore)
	}
	return nil
}

// loadPair reads a PEM certificate and the PEM (PKCS#8) key it was issued for.
func loadPair(certPath, keyPath string) (*x509.Certificate, []byte, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, nil, err
	}
	certBlock, _ := pem.Decode(certPEM)
	if certBlock == nil || certBlock.Type != "CERTIFICATE" {
		return nil, nil, nil, fmt.Errorf("%s holds no PEM certificate", certPath)
	}
	cert, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("parsing %s: %w", certPath, err)
	}
	keyBlock, _ := pem.Decode(keyPEM)
	if keyBlock == nil || keyBlock.Type != "PRIVATE KEY" {
		return nil, nil, nil, fmt.Errorf("%s holds no PEM private key", keyPath)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("parsing %s: %w", keyPath, err)
	}
	key, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, nil, nil, fmt.Errorf("%s: %T is not a signing key", keyPath, parsed)
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", keyPath, err)
	}
	if !bytes.Equal(pub, cert.RawSubjectPublicKeyInfo) {
		return nil, nil, nil, fmt.Errorf("%s is not the key of %s", keyPath, certPath)
	}
	return cert, certPEM, key, nil
}

func newCA(now time.Time) (*x509.Certificate, crypto.Signer, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generating the CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, nil, err
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "strata-guardrails-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("creating the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	return cert, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func newServing(ca *x509.Certificate, caSigner crypto.Signer, hosts []string, now time.Time) ([]byte, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the serving key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	template := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0]},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(servingLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			template.IPAddresses = append(template.IPAddresses, ip)
		} else {
			template.DNSNames = append(template.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca, key.Public(), caSigner)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the serving certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key, nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generating a serial number: %w", err)
	}
	return n, nil
}

// writePair writes the key, then the certificate, each atomically, so a
// crash leaves at worst a pair that does not match (and is made anew).
func writePair(certPath string, certPEM []byte, keyPath string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", keyPath, err)
	}
	if err := writeFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	return writeFile(certPath, certPEM, 0o644)
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }() // left only by a failed write
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close() // the write error says more
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close() // the chmod error says more
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
