package testutil

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/strata-dev/strata/internal/pki"
)

// ServerTLS is a gRPC server option that serves TLS for 127.0.0.1 with a
// certificate of a CA of its own, and that CA's PEM: a test's TLS server
// and what its clients must trust. Another call's CA is one that did not
// sign it.
func ServerTLS(t testing.TB) (grpc.ServerOption, []byte) {
	t.Helper()
	now := time.Now()
	ca, err := pki.NewCA("strata-test-ca", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, key, err := ca.Issue(pki.Request{
		CommonName: "127.0.0.1", Hosts: []string{"127.0.0.1"},
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Lifetime: time.Hour,
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	cert := tls.Certificate{Certificate: [][]byte{block.Bytes}, PrivateKey: key}
	return grpc.Creds(credentials.NewServerTLSFromCert(&cert)), ca.PEM
}
