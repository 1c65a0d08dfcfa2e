package hub

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/testutil/testbroker"
)

// TestDialRefused: a CA or token file that cannot be used is refused,
// naming the field.
func TestDialRefused(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	notPEM := filepath.Join(dir, "ca.crt")
	for path, content := range map[string]string{empty: "\n", notPEM: "not a certificate"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name    string
		cfg     configv1alpha1.BrokerClient
		wantErr string
	}{
		{name: "no address", cfg: configv1alpha1.BrokerClient{}, wantErr: "broker.addresses"},
		{name: "missing CA", cfg: configv1alpha1.BrokerClient{Addresses: []string{"b:1"}, TLSCAFile: filepath.Join(dir, "none")}, wantErr: "broker.tlsCAFile"},
		{name: "CA not PEM", cfg: configv1alpha1.BrokerClient{Addresses: []string{"b:1"}, TLSCAFile: notPEM}, wantErr: "broker.tlsCAFile): " + notPEM + " holds no PEM certificate"},
		{name: "empty token", cfg: configv1alpha1.BrokerClient{Addresses: []string{"b:1"}, TokenFile: empty}, wantErr: "broker.tokenFile " + empty + " is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := Dial(tc.cfg)
			if err == nil {
				_ = conn.Close()
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Dial = %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}

// TestDialControllers: each controller presents its own certificate from
// broker.clientCertDir; one that is missing is refused, naming the
// controller.
func TestDialControllers(t *testing.T) {
	ca := testbroker.NewPKI(t)
	dir := t.TempDir()
	for _, c := range BrokerCallers {
		cert, key := ca.Client(BrokerIdentity(c))
		if err := os.MkdirAll(filepath.Join(dir, c), 0o700); err != nil {
			t.Fatal(err)
		}
		for from, to := range map[string]string{cert: "tls.crt", key: "tls.key"} {
			raw, err := os.ReadFile(from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, c, to), raw, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg := configv1alpha1.BrokerClient{Addresses: []string{"127.0.0.1:1"}, TLSCAFile: ca.CAFile, ClientCertDir: dir}
	brokers, closeAll, err := DialControllers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	closeAll()
	if len(brokers) != len(BrokerCallers) {
		t.Errorf("DialControllers gave %d clients, want one per controller (%d)", len(brokers), len(BrokerCallers))
	}
	if err := os.Remove(filepath.Join(dir, Orchestrator, "tls.key")); err != nil {
		t.Fatal(err)
	}
	_, _, err = DialControllers(cfg)
	if err == nil || !strings.Contains(err.Error(), "the maintenance-orchestrator's client certificate (broker.clientCertDir)") {
		t.Errorf("DialControllers without the orchestrator's key = %v, want it named", err)
	}
}
