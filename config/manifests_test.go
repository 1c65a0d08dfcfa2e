// Package config's tests check the release manifests that config/ renders
// (make release): they apply on a real API server, each component's
// ClusterRole grants what its controllers need, and each overlay holds the
// CRDs its cluster serves.
package config

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/config/crd"
	"github.com/strata-dev/strata/internal/testutil"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

// placeholder stands for the image's digest, which make release computes.
const placeholder = "example.invalid/strata@sha256:0000000000000000000000000000000000000000000000000000000000000000"

// render renders the hub and workload manifests as make release does,
// without building the image, and returns their paths by set.
func render(t *testing.T) map[string]string {
	t.Helper()
	kubectl := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds kubectl into bin/")
	}
	out := t.TempDir()
	root := testutil.RepoRoot(t)
	cmd := exec.Command(filepath.Join(root, "hack", "render-manifests.sh"), kubectl, placeholder, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rendering the manifests: %v\n%s", err, b)
	}
	return map[string]string{"hub": filepath.Join(out, "strata-hub.yaml"), "workload": filepath.Join(out, "strata-workload.yaml")}
}

// objects parses a rendered manifest.
func objects(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	for _, doc := range bytes.Split(raw, []byte("\n---\n")) {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	return objs
}

// Both manifests apply (server-side, dry run) on a real API server with
// Strata's CRDs, as `kubectl apply --server-side -f dist/strata-hub.yaml`
// does on a hub.
func TestManifestsApplyServerSide(t *testing.T) {
	manifests := render(t)
	env, cfg := testutil.StartEnv(t)
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A dry run creates nothing, so the objects in strata-system need the
	// namespace to exist already (a real apply creates it first).
	testutil.MustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "strata-system"}})
	testutil.MustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: kueue.Namespace}})
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, testutil.AdminKubeconfig(t, env), 0o600); err != nil {
		t.Fatal(err)
	}
	kubectl := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), "kubectl")
	for _, set := range []string{"hub", "workload"} {
		cmd := exec.Command(kubectl, "--kubeconfig", kubeconfig, "apply", "--server-side", "--dry-run=server",
			"--field-manager=strata-release-test", "-f", manifests[set])
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("kubectl apply --server-side --dry-run=server -f strata-%s.yaml: %v\n%s", set, err, out)
		}
	}
}

// Each overlay installs the CRDs its cluster serves, those install uses.
func TestOverlaysHoldTheirCRDs(t *testing.T) {
	manifests := render(t)
	for set, files := range map[string][]string{"hub": crd.Hub, "workload": crd.Workload} {
		var want, got []string
		for _, f := range files {
			// fleet.strata.dev_pools.yaml is pools.fleet.strata.dev
			group, plural, _ := strings.Cut(strings.TrimSuffix(f, ".yaml"), "_")
			want = append(want, plural+"."+group)
		}
		kueueCRDs := 0
		for _, o := range objects(t, manifests[set]) {
			switch {
			case o.GetKind() != "CustomResourceDefinition":
			case strings.HasSuffix(o.GetName(), "."+kueue.GroupVersion.Group):
				kueueCRDs++
			default:
				got = append(got, o.GetName())
			}
		}
		// Kueue's, from its release manifests (TestKueueInRelease).
		if kueueCRDs != 11 {
			t.Errorf("strata-%s.yaml holds %d of Kueue's CRDs, want v0.17's 11", set, kueueCRDs)
		}
		slices.Sort(want)
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("CRDs of strata-%s.yaml (-want +got):\n%s", set, diff)
		}
	}
}

// Every Deployment runs `strata serve <component>` with the config kind of
// its component, by digest.
func TestDeploymentsServeTheirComponent(t *testing.T) {
	manifests := render(t)
	kinds := map[string]string{
		"hub": "HubConfiguration", "broker": "BrokerConfiguration", "apps": "AppsConfiguration", "webhook": "WebhookConfiguration",
		"aggregator": "AggregatorConfiguration", "console": "ConsoleConfiguration",
	}
	for set, path := range manifests {
		objs := objects(t, path)
		configs := map[string]string{}
		for _, o := range objs {
			if o.GetKind() == "ConfigMap" {
				data, _, _ := unstructured.NestedString(o.Object, "data", "config.yaml")
				configs[o.GetName()] = data
			}
		}
		for _, o := range objs {
			// Kueue's is upstream's (TestKueueInRelease).
			if o.GetKind() != "Deployment" || o.GetNamespace() == kueue.Namespace {
				continue
			}
			component := strings.TrimPrefix(o.GetName(), "strata-")
			containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			ctr := containers[0].(map[string]any)
			if got, want := ctr["image"], placeholder; got != want {
				t.Errorf("%s: Deployment %s runs %v, want %s", set, o.GetName(), got, want)
			}
			if diff := cmp.Diff([]any{"serve", component, "--config", "/etc/strata/config.yaml"}, ctr["args"]); diff != "" {
				t.Errorf("%s: Deployment %s args (-want +got):\n%s", set, o.GetName(), diff)
			}
			volumes, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "volumes")
			var config string
			for _, v := range volumes {
				if name, ok, _ := unstructured.NestedString(v.(map[string]any), "configMap", "name"); ok {
					config = configs[name]
				}
			}
			if !strings.Contains(config, "\nkind: "+kinds[component]+"\n") {
				t.Errorf("%s: Deployment %s mounts no ConfigMap of kind %s:\n%s", set, o.GetName(), kinds[component], config)
			}
		}
	}
}

// Both overlays hold Kueue, from its release manifests at the pinned
// version with its upstream image: on the hub the MultiKueue manager whose
// dispatcher is Strata's, on a workload cluster a worker with the identity
// the hub's Kueue uses there; neither with the webhooks of the Pod,
// Deployment and StatefulSet integrations, which are off.
func TestKueueInRelease(t *testing.T) {
	manifests := render(t)
	raw, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "hack", "tools", "kueue", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(raw), "\n\tsigs.k8s.io/kueue ")
	version := strings.Fields(rest + " ?")[0] // "v0.17.0 // indirect"
	for set, path := range manifests {
		var image, dispatcher string
		have := map[string]bool{}
		for _, o := range objects(t, path) {
			have[o.GetKind()+"/"+o.GetNamespace()+"/"+o.GetName()] = true
			switch {
			case o.GetKind() == "Deployment" && o.GetName() == "kueue-controller-manager":
				containers, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
				image, _ = containers[0].(map[string]any)["image"].(string)
			case o.GetKind() == "ConfigMap" && o.GetName() == "kueue-manager-config":
				data, _, _ := unstructured.NestedString(o.Object, "data", "controller_manager_config.yaml")
				cfg := struct {
					Kind       string `json:"kind"`
					MultiKueue struct {
						DispatcherName string `json:"dispatcherName"`
					} `json:"multiKueue"`
					ManageJobsWithoutQueueName bool `json:"manageJobsWithoutQueueName"`
					Integrations               struct {
						Frameworks []string `json:"frameworks"`
					} `json:"integrations"`
				}{}
				if err := yaml.Unmarshal([]byte(data), &cfg); err != nil || cfg.Kind != "Configuration" {
					t.Errorf("%s: Kueue's configuration does not parse (%v):\n%s", set, err, data)
				}
				if cfg.ManageJobsWithoutQueueName || !slices.Equal(cfg.Integrations.Frameworks, []string{"batch/job"}) {
					t.Errorf("%s: Kueue manages Jobs without a queue (%t) or frameworks %v", set, cfg.ManageJobsWithoutQueueName, cfg.Integrations.Frameworks)
				}
				dispatcher = cfg.MultiKueue.DispatcherName
			case strings.HasSuffix(o.GetKind(), "WebhookConfiguration") && strings.HasPrefix(o.GetName(), "kueue-"):
				hooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
				for _, h := range hooks {
					name, _, _ := unstructured.NestedString(h.(map[string]any), "name")
					if strings.Contains(name, "pod.") || strings.Contains(name, "deployment.") || strings.Contains(name, "statefulset.") {
						t.Errorf("%s: %s has the webhook %s of an integration that is off", set, o.GetName(), name)
					}
				}
			}
		}
		if want := "registry.k8s.io/kueue/kueue:" + version; image != want {
			t.Errorf("%s: Kueue's image is %q, want %q", set, image, want)
		}
		wantDispatcher := ""
		if set == "hub" {
			wantDispatcher = kueue.DispatcherName
		}
		if dispatcher != wantDispatcher {
			t.Errorf("%s: Kueue's multiKueue.dispatcherName is %q, want %q", set, dispatcher, wantDispatcher)
		}
		for _, want := range []string{
			"Namespace//kueue-system", "ServiceAccount/kueue-system/kueue-controller-manager", "ClusterRole//kueue-manager-role",
			"MutatingWebhookConfiguration//kueue-mutating-webhook-configuration",
		} {
			if !have[want] {
				t.Errorf("%s: %s is missing", set, want)
			}
		}
		worker := have["ServiceAccount/kueue-system/multikueue"] && have["ClusterRoleBinding//multikueue-worker"]
		if worker != (set == "workload") {
			t.Errorf("%s: holds the MultiKueue worker identity: %t", set, worker)
		}
	}
}

// access is one request a component makes.
type access struct {
	group, resource, verb, name string
}

// Each generated ClusterRole grants what its component's controllers do,
// and not a few things they must not do.
func TestGeneratedRoles(t *testing.T) {
	tests := []struct {
		dir        string
		role       string
		allowed    []access
		notAllowed []access
	}{{
		dir: "apps", role: "strata-apps",
		allowed: []access{
			{"apps", "deployments", "patch", ""}, {"apps", "deployments", "create", ""},
			{"apps.strata.dev", "statelessapps/status", "update", ""}, {"apps.strata.dev", "statefulapps/status", "patch", ""},
			{"apps.strata.dev", "statelessapps/finalizers", "update", ""},
			{"", "pods", "create", ""}, {"", "persistentvolumeclaims", "delete", ""},
			{"events.k8s.io", "events", "create", ""},
			// The CA of a StatefulApp's shard manager is a Secret of the
			// app's namespace (docs/security.md: read-only, metadata cached).
			{"", "secrets", "get", ""},
		},
		notAllowed: []access{{"", "secrets", "create", ""}, {"", "secrets", "update", ""}, {"apps.strata.dev", "statelessapps", "update", ""}, {"", "nodes", "patch", ""}},
	}, {
		dir: "hub", role: "strata-hub",
		allowed: []access{
			{"fleet.strata.dev", "pools/finalizers", "update", ""}, {"fleet.strata.dev", "clusters/status", "patch", ""},
			{"fleet.strata.dev", "maintenancerollouts", "update", ""}, {"apps.strata.dev", "appnamespaces/status", "update", ""},
			{"", "secrets", "watch", ""}, {"events.k8s.io", "events", "create", ""},
		},
		notAllowed: []access{{"", "secrets", "create", ""}, {"", "nodes", "patch", ""}, {"fleet.strata.dev", "clusters", "delete", ""}},
	}, {
		dir: "hub-remote", role: "strata-hub-remote",
		allowed: []access{
			{"", "nodes", "patch", ""}, {"", "nodes", "delete", ""}, {"", "pods/eviction", "create", ""},
			{"", "namespaces", "create", ""}, {"rbac.authorization.k8s.io", "clusterroles", "bind", "admin"},
			{"rbac.authorization.k8s.io", "rolebindings", "create", ""},
		},
		// kubectl strata reads apps and logs as the person running it, not as the hub.
		notAllowed: []access{{"rbac.authorization.k8s.io", "clusterroles", "bind", "cluster-admin"}, {"", "secrets", "get", ""}, {"", "pods", "delete", ""},
			{"", "pods/log", "get", ""}, {"apps.strata.dev", "statelessapps", "list", ""}, {"apps.strata.dev", "statefulapps", "list", ""}},
	}, {
		dir: "webhook", role: "strata-webhook",
		allowed: []access{
			{"apps.strata.dev", "statefulapps", "list", ""}, {"", "pods", "get", ""}, {"apps", "deployments", "get", ""},
			{"admissionregistration.k8s.io", "validatingwebhookconfigurations", "patch", "strata-workload-guardrails"},
		},
		notAllowed: []access{
			{"admissionregistration.k8s.io", "validatingwebhookconfigurations", "patch", "another-webhook"},
			{"", "secrets", "get", ""}, {"", "pods", "delete", ""},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.role, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "config", "rbac", tt.dir, "role.yaml"))
			if err != nil {
				t.Fatalf("%v: run `make generate`", err)
			}
			role := &rbacv1.ClusterRole{}
			if err := yaml.UnmarshalStrict(bytes.TrimPrefix(raw, []byte("---\n")), role); err != nil {
				t.Fatal(err)
			}
			if role.Name != tt.role {
				t.Errorf("the ClusterRole is %q, want %q", role.Name, tt.role)
			}
			for _, a := range tt.allowed {
				if !allows(role.Rules, a) {
					t.Errorf("%s may not %s %s %q (group %q); its controllers do", tt.role, a.verb, a.resource, a.name, a.group)
				}
			}
			for _, a := range tt.notAllowed {
				if allows(role.Rules, a) {
					t.Errorf("%s may %s %s %q (group %q); it must not", tt.role, a.verb, a.resource, a.name, a.group)
				}
			}
		})
	}
}

// allows says whether a rule of rules grants a, as RBAC matches.
func allows(rules []rbacv1.PolicyRule, a access) bool {
	has := func(list []string, s string) bool { return slices.Contains(list, s) || slices.Contains(list, "*") }
	for _, r := range rules {
		if has(r.APIGroups, a.group) && has(r.Resources, a.resource) && has(r.Verbs, a.verb) &&
			(len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, a.name)) {
			return true
		}
	}
	return false
}
