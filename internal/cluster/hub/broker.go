package hub

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/metal/broker/brokerclient"
)

// Dial connects to the Compute Broker as cfg (defaulted) says, through
// brokerclient: one target as gRPC resolves it (dns:///... finds every
// replica behind a headless Service), or several host:port addresses,
// following gRPC health to the leader; TLS when a CA is given, a bearer
// token when a token file is; a deadline on every unary call that has none;
// and calls wait for a serving replica during a failover.
func Dial(cfg configv1alpha1.BrokerClient) (*grpc.ClientConn, error) {
	if len(cfg.Addresses) == 0 {
		return nil, fmt.Errorf("broker.addresses: no address of the broker")
	}
	o := brokerclient.Options{Addresses: cfg.Addresses, WaitForReady: true}
	if cfg.Timeout != nil {
		o.Timeout = cfg.Timeout.Duration
	}
	if cfg.TLSCAFile != "" {
		pem, err := os.ReadFile(cfg.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("reading the broker's CA (broker.tlsCAFile): %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("broker.tlsCAFile %s holds no PEM certificate", cfg.TLSCAFile)
		}
		o.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	if cfg.TokenFile != "" {
		raw, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("reading the broker's token (broker.tokenFile): %w", err)
		}
		o.Token = strings.TrimSpace(string(raw))
		if o.Token == "" {
			return nil, fmt.Errorf("broker.tokenFile %s is empty", cfg.TokenFile)
		}
	}
	return brokerclient.Dial(o)
}
