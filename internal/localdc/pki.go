package localdc

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/hub"
	"github.com/strata-dev/strata/internal/pki"
)

// The local datacenter's certificate authority and the broker's
// certificates it issues, under the home: HOME/pki/ca.crt and ca.key, and
// per identity a directory of tls.crt and tls.key (keys 0600, directories
// 0700), as cert-manager lays out a Secret.
const (
	pkiDir = "pki"
	// BrokerServingCert is the directory of the broker's serving
	// certificate, shared by its replicas (for 127.0.0.1 and localhost).
	brokerServingCert = "broker"
	// hubClientCerts holds a directory per hub controller (HubConfiguration
	// broker.clientCertDir).
	hubClientCerts = "hub"
	// aggregatorClientCerts holds the fleet aggregator's client
	// certificate, in a directory of its name (AggregatorConfiguration
	// broker.clientCertDir).
	aggregatorClientCerts = "aggregator"
	// adminCert is the certificate of the person who runs `strata`
	// against the home: the CLI finds it as it finds the broker.
	adminCert = "admin"
	// AdminName is the identity of adminCert.
	AdminName = "strata-admin"

	pkiCALifetime = 10 * 365 * 24 * time.Hour
	// pkiCertLifetime: a year, renewed at every start of `strata up` once
	// within pkiRenewBefore of its end. A local datacenter that runs
	// eleven months without a restart is not one this is built for; the
	// broker and the hub read renewed files without a restart.
	pkiCertLifetime = 365 * 24 * time.Hour
	pkiRenewBefore  = 30 * 24 * time.Hour
)

// hubRoles are the broker roles of the hub's controllers.
var hubRoles = map[string]string{
	hub.PoolController:        configv1alpha1.RolePoolManager,
	hub.ClusterManager:        configv1alpha1.RoleClusterManager,
	hub.Orchestrator:          configv1alpha1.RoleMaintenance,
	hub.RemediationController: configv1alpha1.RoleRemediation,
}

// PKIPath is a path under the home's PKI directory.
func PKIPath(home string, elem ...string) string {
	return filepath.Join(append([]string{home, pkiDir}, elem...)...)
}

// BrokerCredentials are the files with which a client reaches the home's
// broker: its CA, and a client certificate and key.
type BrokerCredentials struct {
	CAFile, CertFile, KeyFile string
}

// AdminCredentials are the files of the home's admin certificate, or
// fs.ErrNotExist when the home has none (no datacenter, or one made
// before its broker had identities).
func AdminCredentials(home string) (BrokerCredentials, error) {
	c := BrokerCredentials{
		CAFile:   PKIPath(home, "ca.crt"),
		CertFile: PKIPath(home, adminCert, "tls.crt"),
		KeyFile:  PKIPath(home, adminCert, "tls.key"),
	}
	for _, f := range []string{c.CAFile, c.CertFile, c.KeyFile} {
		if _, err := os.Stat(f); err != nil {
			return BrokerCredentials{}, err
		}
	}
	return c, nil
}

// ensurePKI makes the home's CA once and issues (or keeps, while valid)
// the broker's serving certificate, Kueue's webhook serving certificate,
// each hub controller's client certificate and the admin's.
func ensurePKI(home string, now time.Time) error {
	ca, err := loadOrCreateCA(home, now)
	if err != nil {
		return err
	}
	ensure := func(dir string, req pki.Request) error {
		req.Lifetime = pkiCertLifetime
		if _, err := ca.Ensure(PKIPath(home, dir, "tls.crt"), PKIPath(home, dir, "tls.key"), req, pkiRenewBefore, now); err != nil {
			return fmt.Errorf("the local datacenter's certificate of %s: %w", req.CommonName, err)
		}
		return nil
	}
	client := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if err := ensure(brokerServingCert, pki.Request{CommonName: "strata-broker", Hosts: []string{"127.0.0.1", "localhost"},
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return err
	}
	// Every Kueue process's webhooks (the API servers call 127.0.0.1).
	if err := ensure(kueueServingCert, pki.Request{CommonName: "kueue-webhook", Hosts: []string{"127.0.0.1", "localhost"},
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return err
	}
	for _, c := range hub.BrokerCallers {
		if err := ensure(filepath.Join(hubClientCerts, c), pki.Request{CommonName: hub.BrokerIdentity(c),
			Organizations: []string{configv1alpha1.RoleGroupPrefix + hubRoles[c]}, Usages: client}); err != nil {
			return err
		}
	}
	// The fleet aggregator reads the inventory: the viewer role.
	if err := ensure(filepath.Join(aggregatorClientCerts, configv1alpha1.AggregatorBrokerCaller), pki.Request{CommonName: aggregatorServiceAccount,
		Organizations: []string{configv1alpha1.RoleGroupPrefix + configv1alpha1.RoleViewer}, Usages: client}); err != nil {
		return err
	}
	return ensure(adminCert, pki.Request{CommonName: AdminName,
		Organizations: []string{configv1alpha1.RoleGroupPrefix + configv1alpha1.RoleAdmin}, Usages: client})
}

func loadOrCreateCA(home string, now time.Time) (*pki.CA, error) {
	certPath, keyPath := PKIPath(home, "ca.crt"), PKIPath(home, "ca.key")
	ca, err := pki.LoadCA(certPath, keyPath, pkiRenewBefore, now)
	if err == nil {
		return ca, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		// A CA that is there but will not do (ending, spoilt) is made
		// anew; every certificate it signed is then issued again.
		if err := os.RemoveAll(PKIPath(home)); err != nil {
			return nil, fmt.Errorf("removing the local datacenter's spoilt CA: %w", err)
		}
	}
	if err := os.MkdirAll(PKIPath(home), 0o700); err != nil {
		return nil, fmt.Errorf("creating the local datacenter's PKI directory: %w", err)
	}
	if ca, err = pki.NewCA("strata-local-datacenter-ca", pkiCALifetime, now); err != nil {
		return nil, err
	}
	if err := ca.Write(certPath, keyPath); err != nil {
		return nil, err
	}
	return ca, nil
}

// IssueClientCertificate issues, from the home's CA, a client certificate
// of the broker for name with the built-in role given (its group
// strata:<role>), and writes it to dir as <name>.crt and <name>.key (0600):
// `strata certs issue`.
func IssueClientCertificate(home, name, role, dir string) (certPath, keyPath string, err error) {
	if name == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return "", "", fmt.Errorf("name %q: a certificate needs a name, the identity it proves, that is also a file name (no slashes)", name)
	}
	known := false
	for _, r := range configv1alpha1.BuiltinBrokerRoles {
		known = known || r == role
	}
	if !known {
		return "", "", fmt.Errorf("role %q is not a built-in role of the broker: one of %v", role, configv1alpha1.BuiltinBrokerRoles)
	}
	now := time.Now()
	ca, err := pki.LoadCA(PKIPath(home, "ca.crt"), PKIPath(home, "ca.key"), 0, now)
	if err != nil {
		return "", "", fmt.Errorf("the CA of the local datacenter in %s (run `strata up` first): %w", home, err)
	}
	certPEM, key, err := ca.Issue(pki.Request{CommonName: name, Organizations: []string{configv1alpha1.RoleGroupPrefix + role},
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, Lifetime: pkiCertLifetime}, now)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", fmt.Errorf("creating %s: %w", dir, err)
	}
	certPath, keyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	return certPath, keyPath, pki.WritePair(certPath, certPEM, keyPath, key)
}
