package config

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
)

// kinds makes an empty object of every configuration kind the scheme knows,
// so a new kind is fuzzed without a change here.
func kinds(t testing.TB) map[string]func() Object {
	out := map[string]func() Object{}
	for kind, typ := range codecsScheme.KnownTypes(configv1alpha1.GroupVersion) {
		if _, ok := reflect.New(typ).Interface().(Object); !ok {
			continue
		}
		out[kind] = func() Object { return reflect.New(typ).Interface().(Object) }
	}
	if len(out) < 4 {
		t.Fatalf("the scheme knows %d configuration kinds, want at least 4", len(out))
	}
	return out
}

// FuzzDecode feeds every configuration kind the same document. Properties:
// no panic; a document that loads (decodes, defaults and validates)
// re-marshals to one that loads to the same configuration; completing a
// loaded configuration again changes nothing.
func FuzzDecode(f *testing.F) {
	// The release's configuration files, and the shapes of the tests'.
	files, err := filepath.Glob("../../config/*/*config*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	more, err := filepath.Glob("../../config/manager/*/config.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range append(files, more...) {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(header + "kind: BrokerConfiguration\ndatabase:\n  dsn: /home/broker.db\nprovisioner:\n  sim:\n    faultsFile: /f.json\n"))
	f.Add([]byte(header + "kind: HubConfiguration\nbroker:\n  addresses: [a:1]\n  timeout: 1x\n"))
	f.Add([]byte(header + "kind: AppsConfiguration\nleaderElection:\n  leaseDuration: [1, {a: 2}]\n"))
	f.Add([]byte(`{"apiVersion":"config.strata.dev/v1alpha1","kind":"WebhookConfiguration","clusterName":"hub","clusterName":"x"}`))
	f.Add([]byte("kind: [\n"))
	ks := kinds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for kind, newObject := range ks {
			cfg := newObject()
			if Decode(data, cfg) != nil || Complete(cfg) != nil {
				continue
			}
			again := cfg.DeepCopyObject().(Object)
			if err := Complete(again); err != nil {
				t.Fatalf("%s: completing a loaded configuration again: %v", kind, err)
			}
			if diff := cmp.Diff(cfg, again); diff != "" {
				t.Fatalf("%s: completing twice differs (-once +twice):\n%s", kind, diff)
			}
			raw, err := yaml.Marshal(cfg)
			if err != nil {
				t.Fatalf("%s: marshalling a loaded configuration: %v", kind, err)
			}
			back := newObject()
			if err := Decode(raw, back); err != nil {
				t.Fatalf("%s: the marshalled configuration does not decode: %v\n%s", kind, err, raw)
			}
			if err := Complete(back); err != nil {
				t.Fatalf("%s: the marshalled configuration does not validate: %v\n%s", kind, err, raw)
			}
			if diff := cmp.Diff(cfg, back); diff != "" {
				t.Fatalf("%s: loaded, marshalled and loaded again differs (-first +again):\n%s", kind, diff)
			}
		}
	})
}
