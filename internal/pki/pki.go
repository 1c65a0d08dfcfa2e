// Package pki is a small certificate authority for the certificates Strata
// makes itself (the admission webhook's serving certificate, the local
// datacenter's broker certificates): ECDSA P-256 keys written 0600, PEM
// files written atomically, and certificates reused while they are valid.
package pki

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
	"slices"
	"time"
)

// CA is a certificate authority: its certificate and key.
type CA struct {
	Cert   *x509.Certificate
	Signer crypto.Signer
	// PEM is the certificate, PEM: what clients trust.
	PEM []byte
}

// NewCA makes a self-signed CA.
func NewCA(commonName string, lifetime time.Duration, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating the CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(lifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("creating the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Signer: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// LoadCA reads a CA and its key; an error says why they cannot be reused
// (among them: it ends within renewBefore).
func LoadCA(certPath, keyPath string, renewBefore time.Duration, now time.Time) (*CA, error) {
	cert, certPEM, key, err := LoadPair(certPath, keyPath)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("not a CA certificate")
	}
	if err := CheckTimes(cert, renewBefore, now); err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Signer: key, PEM: certPEM}, nil
}

// Write writes the CA's certificate and key.
func (ca *CA) Write(certPath, keyPath string) error {
	return WritePair(certPath, ca.PEM, keyPath, ca.Signer)
}

// Request is a certificate to issue.
type Request struct {
	// CommonName and Organizations are the subject: for a client, its
	// name and groups.
	CommonName    string
	Organizations []string
	// Hosts are the IP addresses and DNS names a serving certificate
	// serves.
	Hosts []string
	// Usages: x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth.
	Usages   []x509.ExtKeyUsage
	Lifetime time.Duration
}

// Issue makes a key and a certificate for it, signed by the CA.
func (ca *CA) Issue(req Request, now time.Time) ([]byte, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the key of %s: %w", req.CommonName, err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	template := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: req.CommonName, Organization: req.Organizations},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(req.Lifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  req.Usages,
	}
	for _, h := range req.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			template.IPAddresses = append(template.IPAddresses, ip)
		} else {
			template.DNSNames = append(template.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca.Cert, key.Public(), ca.Signer)
	if err != nil {
		return nil, nil, fmt.Errorf("creating the certificate of %s: %w", req.CommonName, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key, nil
}

// Ensure keeps a certificate as req says at certPath and keyPath: the one
// there is reused while it matches its key, is signed by the CA for every
// usage and host, has req's subject and does not end within renewBefore;
// otherwise a new one is issued. It says whether it issued one.
func (ca *CA) Ensure(certPath, keyPath string, req Request, renewBefore time.Duration, now time.Time) (bool, error) {
	if err := ca.check(certPath, keyPath, req, renewBefore, now); err == nil {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		return false, fmt.Errorf("creating the directory of %s: %w", certPath, err)
	}
	certPEM, key, err := ca.Issue(req, now)
	if err != nil {
		return false, err
	}
	return true, WritePair(certPath, certPEM, keyPath, key)
}

// check says why the certificate at certPath cannot be reused, or nil.
func (ca *CA) check(certPath, keyPath string, req Request, renewBefore time.Duration, now time.Time) error {
	cert, _, _, err := LoadPair(certPath, keyPath)
	if err != nil {
		return err
	}
	if err := CheckTimes(cert, renewBefore, now); err != nil {
		return err
	}
	if cert.Subject.CommonName != req.CommonName || !slices.Equal(cert.Subject.Organization, req.Organizations) {
		return fmt.Errorf("certificate %s is not of %s", certPath, req.CommonName)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	opts := x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: req.Usages}
	if len(req.Hosts) == 0 {
		_, err := cert.Verify(opts)
		return err
	}
	for _, host := range req.Hosts {
		opts.DNSName = host
		if _, err := cert.Verify(opts); err != nil {
			return fmt.Errorf("certificate %s does not serve %s: %w", certPath, host, err)
		}
	}
	return nil
}

// CheckTimes says whether cert is valid at now and for renewBefore more.
func CheckTimes(cert *x509.Certificate, renewBefore time.Duration, now time.Time) error {
	if now.Before(cert.NotBefore) {
		return fmt.Errorf("certificate %s is not valid before %s", cert.Subject.CommonName, cert.NotBefore)
	}
	if now.Add(renewBefore).After(cert.NotAfter) {
		return fmt.Errorf("certificate %s ends %s, within %s", cert.Subject.CommonName, cert.NotAfter, renewBefore)
	}
	return nil
}

// LoadPair reads a PEM certificate and the PEM (PKCS#8) key it was issued for.
func LoadPair(certPath, keyPath string) (*x509.Certificate, []byte, crypto.Signer, error) {
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

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("generating a serial number: %w", err)
	}
	return n, nil
}

// WritePair writes the key (0600), then the certificate, each atomically,
// so a crash leaves at worst a pair that does not match (and is made anew).
func WritePair(certPath string, certPEM []byte, keyPath string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", keyPath, err)
	}
	if err := WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return err
	}
	return WriteFile(certPath, certPEM, 0o644)
}

// WriteFile writes data to path atomically, with mode.
func WriteFile(path string, data []byte, mode os.FileMode) error {
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
