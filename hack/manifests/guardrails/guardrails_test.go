package guardrails

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/internal/testutil"
	wh "github.com/strata-dev/strata/internal/workload/guardrails"
)

// The checked-in guardrails are what install applies today.
func TestCheckedInFilesAreCurrent(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(testutil.RepoRoot(t), "config", "guardrails")
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%v: run `make generate`", err)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("config/guardrails/%s is out of date: run `make generate` (-want +got):\n%s", name, diff)
		}
	}
}

// A webhook reaches the webhook's Service at the path install registers,
// and keeps install's rules, selectors and match conditions.
func TestWebhooksReferenceTheService(t *testing.T) {
	files, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	for set, want := range map[string]*admissionregistrationv1.ValidatingWebhookConfiguration{
		"hub":      wh.HubWebhooks("https://example.invalid/base", nil),
		"workload": wh.WorkloadWebhooks("https://example.invalid/base", nil),
	} {
		got := webhookConfiguration(t, files[filepath.Join(set, "guardrails.yaml")])
		if len(got.Webhooks) != len(want.Webhooks) {
			t.Fatalf("%s: %d webhooks, want %d", set, len(got.Webhooks), len(want.Webhooks))
		}
		for i := range want.Webhooks {
			g, w := got.Webhooks[i], want.Webhooks[i]
			svc := g.ClientConfig.Service
			if svc == nil || svc.Namespace != Namespace || svc.Name != ServiceName || *svc.Port != ServicePort ||
				"https://example.invalid/base"+*svc.Path != *w.ClientConfig.URL {
				t.Errorf("%s: webhook %s reaches %+v, want the Service %s/%s:%d at the path of %s", set, g.Name, g.ClientConfig, Namespace, ServiceName, ServicePort, *w.ClientConfig.URL)
			}
			g.ClientConfig, w.ClientConfig = admissionregistrationv1.WebhookClientConfig{}, admissionregistrationv1.WebhookClientConfig{}
			if diff := cmp.Diff(w, g); diff != "" {
				t.Errorf("%s: webhook %s differs from install's (-want +got):\n%s", set, w.Name, diff)
			}
		}
	}
}

func webhookConfiguration(t *testing.T, file []byte) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	for _, doc := range bytes.Split(file, []byte("\n---\n")) {
		cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		if err := yaml.UnmarshalStrict(doc, cfg); err == nil && cfg.Kind == "ValidatingWebhookConfiguration" {
			return cfg
		}
	}
	t.Fatal("no ValidatingWebhookConfiguration")
	return nil
}
