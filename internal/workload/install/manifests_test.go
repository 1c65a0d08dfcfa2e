package install_test

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/workload/install"
)

// HubObjects and WorkloadObjects, from which the release manifests are
// generated (config/guardrails), are what Hub and Workload put in a
// cluster: the objects labelled with their set, and the AppPlatform.
func TestObjectsAreWhatInstallApplies(t *testing.T) {
	cfg := startBareEnv(t)
	bare, _ := clients(t, cfg)
	ctx := t.Context()
	wh := install.Webhook{URL: "https://127.0.0.1:9443/clusters/c", CABundle: []byte("CA")}
	if err := install.Hub(ctx, bare, wh); err != nil {
		t.Fatalf("install.Hub: %v", err)
	}
	if err := install.Workload(ctx, bare, wh); err != nil {
		t.Fatalf("install.Workload: %v", err)
	}
	// The kinds install labels with its set, and the AppPlatform it creates.
	kinds := []schema.GroupVersionKind{
		{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingAdmissionPolicy"},
		{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingAdmissionPolicyBinding"},
		{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "ValidatingWebhookConfiguration"},
		{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingAdmissionPolicy"},
		{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingAdmissionPolicyBinding"},
		{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"},
		{Group: "storage.k8s.io", Version: "v1", Kind: "StorageClass"},
	}
	for set, objs := range map[string][]client.Object{"hub": install.HubObjects(wh), "workload": install.WorkloadObjects(wh)} {
		var want, got []string
		for _, o := range objs {
			want = append(want, o.GetObjectKind().GroupVersionKind().Kind+" "+o.GetName())
		}
		for _, gvk := range kinds {
			list := &metav1.PartialObjectMetadataList{}
			list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
			if err := bare.List(ctx, list, client.MatchingLabels{install.SetLabel: set}); err != nil {
				t.Fatal(err)
			}
			for _, item := range list.Items {
				got = append(got, gvk.Kind+" "+item.Name)
			}
		}
		if set == "workload" {
			got = append(got, "AppPlatform "+install.DefaultPlatform().Name)
		}
		slices.Sort(want)
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: objects (-%sObjects +what install applied):\n%s", set, set, diff)
		}
	}
}
