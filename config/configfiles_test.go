package config

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	strataconfig "github.com/strata-dev/strata/internal/config"
	"github.com/strata-dev/strata/internal/testutil"
)

// TestConfigFiles: the component configurations the manifests mount load as
// `strata serve` loads them (strict: an unknown or misspelt field fails
// here, not at a production start) and are valid.
func TestConfigFiles(t *testing.T) {
	root := testutil.RepoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "config", "manager", "*", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob(filepath.Join(root, "config", "*", "webhook-config.yaml"))
	files = append(files, more...)
	if len(files) < 5 {
		t.Fatalf("found %d configuration files under config/, want the hub's, the broker's, the apps', and a webhook's per overlay", len(files))
	}
	kinds := map[string]func() strataconfig.Object{
		"HubConfiguration":        func() strataconfig.Object { return &configv1alpha1.HubConfiguration{} },
		"AppsConfiguration":       func() strataconfig.Object { return &configv1alpha1.AppsConfiguration{} },
		"WebhookConfiguration":    func() strataconfig.Object { return &configv1alpha1.WebhookConfiguration{} },
		"BrokerConfiguration":     func() strataconfig.Object { return &configv1alpha1.BrokerConfiguration{} },
		"AggregatorConfiguration": func() strataconfig.Object { return &configv1alpha1.AggregatorConfiguration{} },
		"ConsoleConfiguration":    func() strataconfig.Object { return &configv1alpha1.ConsoleConfiguration{} },
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		t.Run(rel, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var head struct{ Kind string }
			if err := yaml.Unmarshal(data, &head); err != nil {
				t.Fatal(err)
			}
			newCfg, ok := kinds[head.Kind]
			if !ok {
				t.Fatalf("kind %q is not a Strata configuration kind", head.Kind)
			}
			if err := strataconfig.Load(f, newCfg()); err != nil {
				t.Error(err)
			}
		})
	}
}
