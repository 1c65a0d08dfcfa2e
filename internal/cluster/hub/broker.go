package hub

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/grpc"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/metal/broker/brokerclient"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// The hub's controllers that call the Compute Broker. Each calls it as an
// identity of its own (strata-hub/<name>, a client certificate per
// controller) rather than the process as the union of their roles: each
// then holds only its role (the orchestrator cannot approve what it asks
// for, the pool controller cannot disrupt), and every record at the broker
// names the controller that acted. They share a process, so this guards
// against a controller's bug, not against a compromise of the process.
const (
	PoolController        = "pool-controller"
	ClusterManager        = "cluster-manager"
	Orchestrator          = "maintenance-orchestrator"
	RemediationController = "remediation-controller"
)

// BrokerCallers are the controllers that call the broker.
var BrokerCallers = []string{PoolController, ClusterManager, Orchestrator, RemediationController}

// BrokerIdentity is the name (a certificate's common name) a controller
// calls the broker as.
func BrokerIdentity(controller string) string { return "strata-" + Component + "/" + controller }

// Brokers are the controllers' broker clients, by controller.
type Brokers map[string]brokerv1.BrokerServiceClient

// DialControllers connects each controller to the broker (see Dial): with
// its own client certificate from broker.clientCertDir/<controller>/, or
// all through one connection when there is none. Close closes them.
func DialControllers(cfg configv1alpha1.BrokerClient) (Brokers, func(), error) {
	brokers := Brokers{}
	var conns []*grpc.ClientConn
	closeAll := func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}
	for _, name := range BrokerCallers {
		if cfg.ClientCertDir == "" && len(conns) > 0 {
			brokers[name] = brokerv1.NewBrokerServiceClient(conns[0])
			continue
		}
		conn, err := DialAs(cfg, name)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		conns = append(conns, conn)
		brokers[name] = brokerv1.NewBrokerServiceClient(conn)
	}
	return brokers, closeAll, nil
}

// DialAs connects to the broker as Dial does, presenting the client
// certificate of caller from broker.clientCertDir/<caller>/ when there is
// a clientCertDir.
func DialAs(cfg configv1alpha1.BrokerClient, caller string) (*grpc.ClientConn, error) {
	if cfg.ClientCertDir == "" {
		return dial(cfg, nil)
	}
	dir := filepath.Join(cfg.ClientCertDir, caller)
	cert, err := brokerclient.NewKeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
	if err != nil {
		return nil, fmt.Errorf("the %s's client certificate (broker.clientCertDir): %w", caller, err)
	}
	return dial(cfg, cert)
}

// Dial connects to the Compute Broker as cfg (defaulted) says, through
// brokerclient: one target as gRPC resolves it (dns:///... finds every
// replica behind a headless Service), or several host:port addresses,
// following gRPC health to the leader; TLS when a CA is given, a bearer
// token when a token file is; a deadline on every unary call that has none;
// and calls wait for a serving replica during a failover. It presents no
// client certificate: DialControllers does.
func Dial(cfg configv1alpha1.BrokerClient) (*grpc.ClientConn, error) {
	return dial(cfg, nil)
}

func dial(cfg configv1alpha1.BrokerClient, cert *brokerclient.KeyPair) (*grpc.ClientConn, error) {
	if len(cfg.Addresses) == 0 {
		return nil, errors.New("broker.addresses: no address of the broker")
	}
	o := brokerclient.Options{Addresses: cfg.Addresses, WaitForReady: true, Certificate: cert}
	if cfg.Timeout != nil {
		o.Timeout = cfg.Timeout.Duration
	}
	if cfg.TLSCAFile != "" {
		pool, err := brokerclient.LoadCAPool(cfg.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("the broker's CA (broker.tlsCAFile): %w", err)
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
