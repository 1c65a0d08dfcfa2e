package serve

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/testutil"
	"github.com/strata-dev/strata/internal/workload/guardrails"
)

// TestServeWebhook runs `strata serve webhook` in process against envtest:
// it serves HTTPS with the certificate of its directory and serves a new
// one when the files change, without a restart; it becomes ready; and it
// sets the caBundle of the ValidatingWebhookConfiguration it names to the
// directory's ca.crt.
func TestServeWebhook(t *testing.T) {
	env, restCfg := testutil.StartEnv(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, testutil.AdminKubeconfig(t, env), 0o600); err != nil {
		t.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := admissionregistrationv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(restCfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	certDir := filepath.Join(t.TempDir(), "certs")
	ca, _, _, err := guardrails.Certificates(certDir, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	webhookAddr, health := freeAddress(t), freeAddress(t)
	// Without a caBundle, as a manifest applies it.
	vwc := guardrails.WorkloadWebhooks("https://"+webhookAddr, nil)
	testutil.MustCreate(t, c, vwc)

	_, port, err := net.SplitHostPort(webhookAddr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`apiVersion: config.strata.dev/v1alpha1
kind: WebhookConfiguration
clusterName: workload-1
host: 127.0.0.1
port: %s
certDir: %s
validatingWebhookConfigurations: [%s]
health: {bindAddress: %q}
metrics: {bindAddress: "0"}
`, port, certDir, vwc.Name, health)
	path := filepath.Join(t.TempDir(), "webhook.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cmd := NewCommand()
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SetArgs([]string{"webhook", "--config", path, "--kubeconfig", kubeconfig})
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("strata serve webhook after its context ended: %v", err)
		}
	})
	until := func(what string, ok func() (bool, string)) {
		t.Helper()
		giveUp := time.After(time.Minute) // a bound on the wait, not a speed target
		last := ""
		for {
			var yes bool
			if yes, last = ok(); yes {
				return
			}
			select {
			case err := <-done:
				t.Fatalf("waiting for %s: strata serve webhook ended: %v", what, err)
			case <-giveUp:
				t.Fatalf("waiting for %s: never; last: %s", what, last)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}

	until("/readyz", func() (bool, string) {
		resp, err := http.Get("http://" + health + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close() //nolint:errcheck // test
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	until("the CA bundle injected", func() (bool, string) {
		var got admissionregistrationv1.ValidatingWebhookConfiguration
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(vwc), &got); err != nil {
			return false, err.Error()
		}
		for _, w := range got.Webhooks {
			if !bytes.Equal(w.ClientConfig.CABundle, ca) {
				return false, fmt.Sprintf("webhook %s has caBundle %q", w.Name, w.ClientConfig.CABundle)
			}
		}
		return len(got.Webhooks) > 0, "no webhooks"
	})

	first := servedCertificate(t, webhookAddr, ca)
	// A renewed serving certificate (same CA), as cert-manager or a
	// rotated Secret gives: served without a restart.
	for _, f := range []string{guardrails.CertFile, guardrails.KeyFile} {
		if err := os.Remove(filepath.Join(certDir, f)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, _, err := guardrails.Certificates(certDir, []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	until("the new certificate served", func() (bool, string) {
		serial := servedCertificate(t, webhookAddr, ca)
		return serial != first, "still serial " + serial
	})
}

// servedCertificate is the serial number of the certificate served at addr,
// which ca must have signed.
func servedCertificate(t *testing.T, addr string, ca []byte) string {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("no CA certificate")
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("a TLS connection to the webhook at %s: %v", addr, err)
	}
	defer conn.Close() //nolint:errcheck // test
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}
