package guardrails

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// issued is what one call of certificates returned and left in dir.
type issued struct {
	caBundle, cert []byte
}

func issue(t *testing.T, dir string, hosts []string, now time.Time) issued {
	t.Helper()
	caBundle, certFile, keyFile, err := certificates(dir, hosts, now)
	if err != nil {
		t.Fatalf("certificates: %v", err)
	}
	if certFile != filepath.Join(dir, CertFile) || keyFile != filepath.Join(dir, KeyFile) {
		t.Errorf("files = %s, %s", certFile, keyFile)
	}
	cert, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	return issued{caBundle: caBundle, cert: cert}
}

func parseCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// serves checks that the serving certificate verifies against the bundle for
// each host at a time.
func serves(t *testing.T, got issued, hosts []string, at time.Time) {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(got.caBundle) {
		t.Fatal("the caBundle holds no certificate")
	}
	for _, host := range hosts {
		if _, err := parseCert(t, got.cert).Verify(x509.VerifyOptions{DNSName: host, Roots: roots, CurrentTime: at}); err != nil {
			t.Errorf("the serving certificate does not verify for %s: %v", host, err)
		}
	}
}

func TestCertificates(t *testing.T) {
	hosts := []string{"127.0.0.1", "localhost"}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

	t.Run("made in an empty directory, keys private", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "certs")
		got := issue(t, dir, hosts, now)
		serves(t, got, hosts, now)
		if ca := parseCert(t, got.caBundle); !ca.IsCA {
			t.Error("the caBundle is not a CA")
		}
		cert := parseCert(t, got.cert)
		if len(cert.IPAddresses) != 1 || len(cert.DNSNames) != 1 || cert.DNSNames[0] != "localhost" {
			t.Errorf("SANs: IPs %v, DNS names %v", cert.IPAddresses, cert.DNSNames)
		}
		for _, key := range []string{caKey, KeyFile} {
			info, err := os.Stat(filepath.Join(dir, key))
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want 0600", key, info.Mode().Perm())
			}
		}
	})

	t.Run("reused while valid", func(t *testing.T) {
		dir := t.TempDir()
		first := issue(t, dir, hosts, now)
		second := issue(t, dir, hosts, now.Add(300*24*time.Hour))
		if !bytes.Equal(first.caBundle, second.caBundle) || !bytes.Equal(first.cert, second.cert) {
			t.Error("valid certificates were made anew")
		}
	})

	// Each case spoils a valid directory; the serving certificate is made
	// anew, the CA only when it is the one spoilt.
	cases := []struct {
		name     string
		spoil    func(t *testing.T, dir string)
		hosts    []string
		at       time.Time
		newCA    bool
		wantFail bool
	}{
		{name: "serving key missing", spoil: remove(KeyFile)},
		{name: "serving certificate missing", spoil: remove(CertFile)},
		{name: "serving certificate garbage", spoil: write(CertFile, "not a certificate")},
		{name: "another host", hosts: []string{"127.0.0.1", "localhost", "10.0.0.7"}},
		{name: "serving certificate ends within 30 days", at: now.Add(340 * 24 * time.Hour)},
		{name: "serving certificate of another CA", spoil: foreignServing(hosts, now)},
		{name: "serving key of another certificate", spoil: foreignFile(KeyFile, hosts, now)},
		{name: "CA key missing", spoil: remove(caKey), newCA: true},
		{name: "CA garbage", spoil: write(CAFile, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), newCA: true},
		{name: "CA ends within 30 days", at: now.Add(caLifetime - 20*24*time.Hour), newCA: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			first := issue(t, dir, hosts, now)
			if tc.spoil != nil {
				tc.spoil(t, dir)
			}
			h, at := hosts, now
			if tc.hosts != nil {
				h = tc.hosts
			}
			if !tc.at.IsZero() {
				at = tc.at
			}
			second := issue(t, dir, h, at)
			if bytes.Equal(first.cert, second.cert) {
				t.Error("the serving certificate was reused")
			}
			if gotNewCA := !bytes.Equal(first.caBundle, second.caBundle); gotNewCA != tc.newCA {
				t.Errorf("new CA = %v, want %v", gotNewCA, tc.newCA)
			}
			serves(t, second, h, at)
			// And the next call reuses what this one made.
			if third := issue(t, dir, h, at); !bytes.Equal(third.cert, second.cert) {
				t.Error("the renewed certificate was not reused")
			}
		})
	}

	t.Run("no host", func(t *testing.T) {
		if _, _, _, err := Certificates(t.TempDir(), nil); err == nil {
			t.Error("no error without hosts")
		}
	})
}

func remove(name string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

func write(name, content string) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// foreignServing puts another directory's serving pair (of another CA) here.
func foreignServing(hosts []string, now time.Time) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		other := t.TempDir()
		issue(t, other, hosts, now)
		for _, name := range []string{CertFile, KeyFile} {
			copyFile(t, filepath.Join(other, name), filepath.Join(dir, name))
		}
	}
}

// foreignFile puts one file of another directory here.
func foreignFile(name string, hosts []string, now time.Time) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		other := t.TempDir()
		issue(t, other, hosts, now)
		copyFile(t, filepath.Join(other, name), filepath.Join(dir, name))
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A TLS client that trusts only the caBundle reaches a server using the
// files, by IP address and by name.
func TestCertificatesServeTLS(t *testing.T) {
	caBundle, certFile, keyFile, err := Certificates(t.TempDir(), []string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	defer srv.Close()

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caBundle)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}}
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "localhost"} {
		resp, err := client.Get("https://" + host + ":" + port + "/")
		if err != nil {
			t.Errorf("GET by %s: %v", host, err)
			continue
		}
		_ = resp.Body.Close()
	}
}
