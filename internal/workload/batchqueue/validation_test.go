package batchqueue

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/testutil"
)

// The schema refuses bad BatchQueues and batch AppNamespaces with a message
// naming the problem; good ones pass. Objects are written as YAML, as a
// person would, so that int-or-string quantities are tested both ways.
func TestSchemaValidation(t *testing.T) {
	_, cfg := testutil.StartEnv(t)
	c, err := client.New(cfg, client.Options{Scheme: scheme(t)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		yaml    string
		wantErr string // empty: accepted
	}{
		{name: "a good queue",
			yaml: `{apiVersion: apps.strata.dev/v1alpha1, kind: BatchQueue, metadata: {name: ok},
				spec: {organization: acme, parent: acme, quotas: [{nodeProfile: general, cpu: "64", memory: 256Gi, gpus: 0, borrowingLimit: {cpu: 8}}]}}`},
		{name: "negative cpu (a string)",
			yaml: `{apiVersion: apps.strata.dev/v1alpha1, kind: BatchQueue, metadata: {name: neg-cpu},
				spec: {organization: acme, quotas: [{nodeProfile: general, cpu: "-1"}]}}`,
			wantErr: "cpu must not be negative"},
		{name: "negative gpus (an integer)",
			yaml: `{apiVersion: apps.strata.dev/v1alpha1, kind: BatchQueue, metadata: {name: neg-gpu},
				spec: {organization: acme, quotas: [{nodeProfile: gpu, gpus: -2}]}}`,
			wantErr: "gpus must not be negative"},
		{name: "negative memory borrowing limit",
			yaml: `{apiVersion: apps.strata.dev/v1alpha1, kind: BatchQueue, metadata: {name: neg-limit},
				spec: {organization: acme, quotas: [{nodeProfile: general, memory: 1Gi, borrowingLimit: {memory: -1Gi}}]}}`,
			wantErr: "memory must not be negative"},
		{name: "an unknown resource",
			yaml: `{apiVersion: apps.strata.dev/v1alpha1, kind: BatchQueue, metadata: {name: unknown},
				spec: {organization: acme, quotas: [{nodeProfile: general, cpu: 1, ephemeral-storage: 10Gi}]}}`,
			wantErr: `unknown field "spec.quotas[0].ephemeral-storage"`},
		{name: "no quotas",
			yaml: `{apiVersion: apps.strata.dev/v1alpha1, kind: BatchQueue, metadata: {name: empty},
				spec: {organization: acme, quotas: []}}`,
			wantErr: "spec.quotas: Invalid value: 0: spec.quotas in body should have at least 1 items"},
		{name: "a profile twice",
			yaml: `{apiVersion: apps.strata.dev/v1alpha1, kind: BatchQueue, metadata: {name: twice},
				spec: {organization: acme, quotas: [{nodeProfile: general, cpu: 1}, {nodeProfile: general, cpu: 2}]}}`,
			wantErr: `spec.quotas[1]: Duplicate value: {"nodeProfile":"general"}`},
		{name: "a profile that is not a DNS label",
			yaml: `{apiVersion: apps.strata.dev/v1alpha1, kind: BatchQueue, metadata: {name: bad-profile},
				spec: {organization: acme, quotas: [{nodeProfile: General_1, cpu: 1}]}}`,
			wantErr: "spec.quotas[0].nodeProfile: Invalid value"},
		{name: "its own parent",
			yaml: `{apiVersion: apps.strata.dev/v1alpha1, kind: BatchQueue, metadata: {name: selfish},
				spec: {organization: acme, parent: selfish, quotas: [{nodeProfile: general, cpu: 1}]}}`,
			wantErr: "spec.parent cannot be the queue itself"},
		{name: "a name that is no DNS label",
			yaml: `{apiVersion: apps.strata.dev/v1alpha1, kind: BatchQueue, metadata: {name: a.b},
				spec: {organization: acme, quotas: [{nodeProfile: general, cpu: 1}]}}`,
			wantErr: "the name is the LocalQueue's name"},
		{name: "no organisation",
			yaml: `{apiVersion: apps.strata.dev/v1alpha1, kind: BatchQueue, metadata: {name: orphan},
				spec: {quotas: [{nodeProfile: general, cpu: 1}]}}`,
			wantErr: "spec.organization: Required value"},
		{name: "a batch namespace with its queue",
			yaml: `{apiVersion: apps.strata.dev/v1alpha1, kind: AppNamespace, metadata: {name: ml},
				spec: {app: ml, tenant: batch, nodeProfile: general, batchQueue: ok}}`},
		{name: "a batch namespace without a queue",
			yaml: `{apiVersion: apps.strata.dev/v1alpha1, kind: AppNamespace, metadata: {name: ml-noq},
				spec: {app: ml, tenant: batch, nodeProfile: general}}`,
			wantErr: "batchQueue is required for tenant batch"},
		{name: "a stateless namespace with a queue",
			yaml: `{apiVersion: apps.strata.dev/v1alpha1, kind: AppNamespace, metadata: {name: web},
				spec: {app: web, tenant: stateless, nodeProfile: general, batchQueue: ok}}`,
			wantErr: "batchQueue is only for tenant batch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(tc.yaml), &u.Object); err != nil {
				t.Fatal(err)
			}
			err := c.Create(t.Context(), u, client.FieldValidation(metav1.FieldValidationStrict))
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Create = %v, want it accepted", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Create = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}

	t.Run("organization is immutable", func(t *testing.T) {
		q := &appsv1alpha1.BatchQueue{}
		if err := c.Get(t.Context(), client.ObjectKey{Name: "ok"}, q); err != nil {
			t.Fatal(err)
		}
		q.Spec.Organization = "globex"
		if err := c.Update(t.Context(), q); err == nil || !strings.Contains(err.Error(), "organization is immutable") {
			t.Errorf("moving a queue to another organisation = %v, want a rejection", err)
		}
	})
}
