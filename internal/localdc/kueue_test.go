package localdc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/config/rbac"
	"github.com/strata-dev/strata/internal/testutil"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

// TestKueueConfig: the configuration file of each Kueue process, as Kueue
// reads it: loopback ports, the local lease timings in kueue-system, the
// home's certificate, batch/Job only and only Jobs that name a queue; the
// hub's with Strata's MultiKueue dispatcher (or Kueue's, to compare), a
// worker's without. No waitForPodsReady: the scheduler gangs a job's pods
// (docs/jobs.md#gangs-all-of-a-jobs-pods-or-none).
func TestKueueConfig(t *testing.T) {
	ports := ProcessPorts{Health: 1001, Metrics: 1002, Webhook: 1003}
	common := func() map[string]any {
		return map[string]any{
			"apiVersion":                 "config.kueue.x-k8s.io/v1beta2",
			"kind":                       "Configuration",
			"namespace":                  "kueue-system",
			"health":                     map[string]any{"healthProbeBindAddress": "127.0.0.1:1001"},
			"metrics":                    map[string]any{"bindAddress": "127.0.0.1:1002"},
			"webhook":                    map[string]any{"host": "127.0.0.1", "port": float64(1003), "certDir": "/home/pki/kueue"},
			"manageJobsWithoutQueueName": false,
			"internalCertManagement":     map[string]any{"enable": false},
			"clientConnection":           map[string]any{"qps": float64(50), "burst": float64(100)},
			"integrations":               map[string]any{"frameworks": []any{"batch/job"}},
			"featureGates":               map[string]any{"VisibilityOnDemand": false},
			"leaderElection": map[string]any{
				"leaderElect": true, "leaseDuration": "10s", "renewDeadline": "8s", "retryPeriod": "2s",
				"resourceLock": "leases", "resourceName": "c1f6bfd2.kueue.x-k8s.io", "resourceNamespace": "kueue-system",
			},
		}
	}
	hub := common()
	hub["multiKueue"] = map[string]any{"dispatcherName": "strata.dev/fleet-dispatcher"}
	kueueDispatches := common()
	kueueDispatches["multiKueue"] = map[string]any{"dispatcherName": "kueue.x-k8s.io/multikueue-dispatcher-all-at-once"}
	cases := map[string]struct {
		cluster    string
		dispatcher configv1alpha1.JobsDispatcher
		want       map[string]any
	}{
		"the hub, the MultiKueue manager": {cluster: HubName, want: hub},
		"a worker":                        {cluster: "workload-1", want: common()},
		"the hub with Kueue's dispatcher": {cluster: HubName, dispatcher: configv1alpha1.KueueAllAtOnceDispatcher, want: kueueDispatches},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := ComponentProcess{Name: kueueProcessName(tc.cluster), Component: ComponentKueue, Cluster: tc.cluster, Ports: ports}
			raw, err := yaml.Marshal(kueueConfig("/home", p, tc.dispatcher))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]any{}
			if err := yaml.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("configuration (-want +got):\n%s", diff)
			}
		})
	}
	if kueue.DispatcherName != "strata.dev/fleet-dispatcher" {
		t.Errorf("the hub's dispatcherName is %q, which the table above does not expect", kueue.DispatcherName)
	}
}

const kueueManifestsFixture = `
apiVersion: v1
kind: Namespace
metadata: {name: kueue-system}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: workloads.kueue.x-k8s.io}
spec:
  conversion:
    strategy: Webhook
    webhook:
      clientConfig: {service: {name: kueue-webhook-service, namespace: kueue-system, path: /convert}}
      conversionReviewVersions: [v1]
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: resourceflavors.kueue.x-k8s.io}
spec: {group: kueue.x-k8s.io}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: kueue-controller-manager, namespace: kueue-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: kueue-visibility-server-auth-reader, namespace: kube-system}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: kueue-controller-manager, namespace: kueue-system}
---
apiVersion: v1
kind: Secret
metadata: {name: kueue-webhook-server-cert, namespace: kueue-system}
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: kueue-mutating-webhook-configuration}
webhooks:
- name: mjob.kb.io
  clientConfig: {service: {name: kueue-webhook-service, namespace: kueue-system, path: /mutate-batch-v1-job}}
  rules: [{apiGroups: [batch], apiVersions: [v1], operations: [CREATE], resources: [jobs]}]
- name: mpod.kb.io
  clientConfig: {service: {name: kueue-webhook-service, namespace: kueue-system, path: /mutate--v1-pod}}
  rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]
- name: mworkload.kb.io
  clientConfig: {service: {name: kueue-webhook-service, namespace: kueue-system, path: /mutate-kueue-x-k8s-io-v1beta2-workload}}
  rules: [{apiGroups: [kueue.x-k8s.io], apiVersions: [v1beta2], operations: [CREATE], resources: [workloads]}]
- name: mjobset.kb.io
  clientConfig: {service: {name: kueue-webhook-service, namespace: kueue-system, path: /mutate-jobset}}
  rules: [{apiGroups: [jobset.x-k8s.io], apiVersions: [v1alpha2], operations: [CREATE], resources: [jobsets]}]
`

// TestKueueObjects: of Kueue's release manifests, a local cluster gets the
// CRDs, namespace, ServiceAccount, RBAC of kueue-system and the webhook
// configurations, these and the CRDs' conversion webhooks calling the
// cluster's Kueue at its loopback URL with the home's CA; not the
// Deployment, the Secret, the visibility server's binding in kube-system,
// nor the webhooks of frameworks that are off (Pods, JobSets).
func TestKueueObjects(t *testing.T) {
	var manifests []*unstructured.Unstructured
	for _, doc := range splitYAML(kueueManifestsFixture) {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		manifests = append(manifests, u)
	}
	objs, err := kueueObjects(manifests, "https://127.0.0.1:4443", []byte("CA"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	byName := map[string]*unstructured.Unstructured{}
	for _, o := range objs {
		names = append(names, o.GetKind()+"/"+o.GetName())
		byName[o.GetKind()+"/"+o.GetName()] = o
	}
	wantNames := []string{
		"Namespace/kueue-system", "CustomResourceDefinition/workloads.kueue.x-k8s.io", "CustomResourceDefinition/resourceflavors.kueue.x-k8s.io",
		"ServiceAccount/kueue-controller-manager", "MutatingWebhookConfiguration/kueue-mutating-webhook-configuration",
	}
	if diff := cmp.Diff(wantNames, names); diff != "" {
		t.Fatalf("objects (-want +got):\n%s", diff)
	}
	ca := "Q0E=" // base64 of "CA"
	conv, _, _ := unstructured.NestedMap(byName["CustomResourceDefinition/workloads.kueue.x-k8s.io"].Object, "spec", "conversion", "webhook", "clientConfig")
	if diff := cmp.Diff(map[string]any{"url": "https://127.0.0.1:4443/convert", "caBundle": ca}, conv); diff != "" {
		t.Errorf("conversion webhook (-want +got):\n%s", diff)
	}
	if _, found, _ := unstructured.NestedMap(byName["CustomResourceDefinition/resourceflavors.kueue.x-k8s.io"].Object, "spec", "conversion"); found {
		t.Error("a CRD without a conversion webhook got one")
	}
	hooks, _, _ := unstructured.NestedSlice(byName["MutatingWebhookConfiguration/kueue-mutating-webhook-configuration"].Object, "webhooks")
	got := map[string]any{}
	for _, h := range hooks {
		hook := h.(map[string]any)
		got[hook["name"].(string)] = hook["clientConfig"]
	}
	want := map[string]any{
		"mjob.kb.io":      map[string]any{"url": "https://127.0.0.1:4443/mutate-batch-v1-job", "caBundle": ca},
		"mworkload.kb.io": map[string]any{"url": "https://127.0.0.1:4443/mutate-kueue-x-k8s-io-v1beta2-workload", "caBundle": ca},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("webhooks (-want +got):\n%s", diff)
	}
	// The manifests are not changed: each cluster gets its own URL.
	if _, found, _ := unstructured.NestedMap(manifests[1].Object, "spec", "conversion", "webhook", "clientConfig", "service"); !found {
		t.Error("kueueObjects changed the manifests it was given")
	}

	broken := manifests[1].DeepCopy()
	unstructured.RemoveNestedField(broken.Object, "spec", "conversion", "webhook", "clientConfig", "service")
	if _, err := kueueObjects([]*unstructured.Unstructured{broken}, "https://127.0.0.1:4443", nil); err == nil {
		t.Error("a conversion webhook without a service path: no error")
	}
}

// TestKueueManifests: the manifests `make tools` renders from Kueue's
// source hold what the local clusters need, when bin/ has them.
func TestKueueManifests(t *testing.T) {
	binDir := os.Getenv("KUBEBUILDER_ASSETS")
	if binDir == "" {
		t.Skip("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds bin/")
	}
	manifests, err := readKueueManifests(binDir)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := kueueObjects(manifests, "https://127.0.0.1:4443", []byte("CA"))
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	have := map[string]bool{}
	for _, o := range objs {
		count[o.GetKind()]++
		have[o.GetKind()+"/"+o.GetName()] = true
	}
	for _, want := range []string{
		"ServiceAccount/" + kueueServiceAccount, "ClusterRole/kueue-manager-role", "ClusterRoleBinding/kueue-manager-rolebinding",
		"Role/kueue-leader-election-role", "RoleBinding/kueue-leader-election-rolebinding", "Namespace/kueue-system",
		"CustomResourceDefinition/workloads.kueue.x-k8s.io", "CustomResourceDefinition/clusterqueues.kueue.x-k8s.io",
		"MutatingWebhookConfiguration/kueue-mutating-webhook-configuration", "ValidatingWebhookConfiguration/kueue-validating-webhook-configuration",
	} {
		if !have[want] {
			t.Errorf("%s is missing from the objects installed: %v", want, count)
		}
	}
	for _, w := range kueueWebhookConfigurations {
		if !have[w.kind+"/"+w.name] {
			t.Errorf("%s %s, which a start without jobs removes, is not one of Kueue's", w.kind, w.name)
		}
	}
	if count["CustomResourceDefinition"] != 11 {
		t.Errorf("%d CRDs, want Kueue v0.17's 11", count["CustomResourceDefinition"])
	}
}

// TestMultiKueueIdentity: the Secret the hub's Kueue reaches a workload
// cluster with holds a kubeconfig of kueue-system/multikueue there, which
// may do what MultiKueue does (Jobs, Workloads and their status) and
// nothing more; a renewal writes the new token into it.
func TestMultiKueueIdentity(t *testing.T) {
	env, cfg := testutil.StartEnvWithKueue(t)
	home := t.TempDir()
	const cluster = "workload-1"
	adminPath := KubeconfigPath(home, cluster)
	if err := os.MkdirAll(filepath.Dir(adminPath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(adminPath, testutil.AdminKubeconfig(t, env), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{kueue.Namespace, "team-a"} {
		testutil.MustCreate(t, admin, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	objs, err := rbac.Objects(rbac.MultiKueueWorker...)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if err := admin.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), fieldOwner); err != nil {
			t.Fatal(err)
		}
	}
	id := multiKueueIdentity(cluster)
	if _, err := issueIdentity(ctx, home, id); err != nil {
		t.Fatal(err)
	}
	// The same API server plays the hub, which holds the Secret.
	r := &Running{opts: Options{Home: home}, hubClient: admin}
	if err := r.identityRenewed(ctx, id); err != nil {
		t.Fatal(err)
	}
	secretConfig := func() ([]byte, client.Client) {
		t.Helper()
		s := &corev1.Secret{}
		if err := admin.Get(ctx, client.ObjectKey{Namespace: kueue.Namespace, Name: kueue.MultiKueueKubeconfigSecret(cluster)}, s); err != nil {
			t.Fatalf("the hub's MultiKueue Secret of %s: %v", cluster, err)
		}
		restCfg, err := clientcmd.RESTConfigFromKubeConfig(s.Data[kueue.MultiKueueKubeconfigKey])
		if err != nil {
			t.Fatalf("the Secret's %q is no kubeconfig: %v", kueue.MultiKueueKubeconfigKey, err)
		}
		if restCfg.BearerTokenFile != "" || restCfg.CAFile != "" {
			t.Errorf("the kubeconfig names files (%q, %q); MultiKueue refuses them", restCfg.BearerTokenFile, restCfg.CAFile)
		}
		c, err := client.New(restCfg, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return []byte(restCfg.BearerToken), c
	}
	token, mk := secretConfig()

	wl := kueue.New(kueue.WorkloadKind, "team-a", "job-a")
	if err := unstructured.SetNestedSlice(wl.Object, []any{map[string]any{
		"name": "main", "count": int64(1),
		"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "c", "image": "x"}}}},
	}}, "spec", "podSets"); err != nil {
		t.Fatal(err)
	}
	if err := mk.Create(ctx, wl); err != nil {
		t.Errorf("creating a Workload as %s: %v", id, err)
	}
	if err := mk.List(ctx, kueue.NewList(kueue.WorkloadKind)); err != nil {
		t.Errorf("listing Workloads as %s: %v", id, err)
	}
	if err := mk.List(ctx, &corev1.SecretList{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing Secrets as %s: %v, want Forbidden", id, err)
	}
	if err := mk.List(ctx, kueue.NewList(kueue.ClusterQueueKind)); !apierrors.IsForbidden(err) {
		t.Errorf("listing ClusterQueues as %s: %v, want Forbidden (a worker's quotas are not the manager's to read)", id, err)
	}

	if _, err := issueIdentity(ctx, home, id); err != nil {
		t.Fatal(err)
	}
	if err := r.identityRenewed(ctx, id); err != nil {
		t.Fatal(err)
	}
	if renewed, _ := secretConfig(); string(renewed) == string(token) {
		t.Error("a renewal left the old token in the Secret")
	}
}

func splitYAML(s string) []string {
	var out []string
	for _, doc := range strings.Split(s, "\n---\n") {
		if strings.TrimSpace(doc) != "" {
			out = append(out, doc)
		}
	}
	return out
}
