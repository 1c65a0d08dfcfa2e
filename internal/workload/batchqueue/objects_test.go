package batchqueue

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/testutil"
)

// objs parses Kueue objects written as YAML documents of a flow list.
func objs(t *testing.T, docs ...string) []*unstructured.Unstructured {
	t.Helper()
	out := make([]*unstructured.Unstructured, 0, len(docs))
	for _, d := range docs {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(d), &u.Object); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		out = append(out, u)
	}
	return out
}

const (
	labels   = `{app.kubernetes.io/managed-by: strata}`
	resGroup = `coveredResources: [cpu, memory, nvidia.com/gpu]`
)

func TestDesired(t *testing.T) {
	cluster := func(name, region string) fleetv1alpha1.Cluster {
		c := testutil.MakeCluster(name, "strata-system").Obj()
		c.Spec.Region = region
		return *c
	}
	batchNS := func(name, queue string) appsv1alpha1.AppNamespace {
		return appsv1alpha1.AppNamespace{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: appsv1alpha1.AppNamespaceSpec{App: name, Tenant: appsv1alpha1.BatchTenant, NodeProfile: "general", BatchQueue: queue}}
	}
	w := world{
		Queues: queues(
			makeQueue("acme", "acme").Quota("general", "100", "400Gi", ""),
			makeQueue("acme-ml", "acme").Parent("acme").Quota("general", "10", "40Gi", "").BorrowingLimit("20", "", "").Quota("gpu", "", "", "8"),
			makeQueue("eu-team", "globex").Region("eu").Quota("general", "1", "1Gi", "").Quota("arm", "1", "", "")),
		Pools:    []fleetv1alpha1.Pool{*testutil.MakePool("w1-general", "w1", 1).Obj(), *testutil.MakePool("w2-gpu", "w2", 1).Profile("gpu").Obj()},
		Clusters: []fleetv1alpha1.Cluster{cluster("w2", "us"), cluster("w1", "eu")},
		Namespaces: []appsv1alpha1.AppNamespace{batchNS("ml-b", "acme-ml"), batchNS("ml-a", "acme-ml"), batchNS("eu", "eu-team"),
			{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: appsv1alpha1.AppNamespaceSpec{App: "web", Tenant: appsv1alpha1.StatelessTenant}}},
	}
	flavors := []string{
		`{apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: general, labels: ` + labels + `}, spec: {nodeLabels: {apps.strata.dev/batch-schedulable: "true", fleet.strata.dev/node-profile: general}}}`,
		`{apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: gpu, labels: ` + labels + `}, spec: {nodeLabels: {apps.strata.dev/batch-schedulable: "true", fleet.strata.dev/node-profile: gpu}}}`,
	}
	acme := []string{
		`{apiVersion: kueue.x-k8s.io/v1beta2, kind: Cohort, metadata: {name: org.acme, labels: ` + labels + `}, spec: {}}`,
	}
	globex := `{apiVersion: kueue.x-k8s.io/v1beta2, kind: Cohort, metadata: {name: org.globex, labels: ` + labels + `}, spec: {}}`
	queueObjs := func(hub bool) []string {
		checks := ""
		if hub {
			checks = `, admissionChecksStrategy: {admissionChecks: [{name: strata-multikueue}]}`
		}
		return []string{
			`{apiVersion: kueue.x-k8s.io/v1beta2, kind: Cohort, metadata: {name: acme, labels: {app.kubernetes.io/managed-by: strata, apps.strata.dev/batch-queue: acme}},
			  spec: {parentName: org.acme, resourceGroups: [{` + resGroup + `, flavors: [{name: general, resources: [
			    {name: cpu, nominalQuota: "100"}, {name: memory, nominalQuota: 400Gi}, {name: nvidia.com/gpu, nominalQuota: "0"}]}]}]}}`,
			`{apiVersion: kueue.x-k8s.io/v1beta2, kind: ClusterQueue, metadata: {name: acme-ml, labels: {app.kubernetes.io/managed-by: strata, apps.strata.dev/batch-queue: acme-ml}},
			  spec: {cohortName: acme, namespaceSelector: {matchExpressions: [{key: apps.strata.dev/app-namespace, operator: In, values: [ml-a, ml-b]}]},
			    resourceGroups: [{` + resGroup + `, flavors: [
			      {name: general, resources: [{name: cpu, nominalQuota: "10", borrowingLimit: "20"}, {name: memory, nominalQuota: 40Gi}, {name: nvidia.com/gpu, nominalQuota: "0"}]},
			      {name: gpu, resources: [{name: cpu, nominalQuota: "0"}, {name: memory, nominalQuota: "0"}, {name: nvidia.com/gpu, nominalQuota: "8"}]}]}]` + checks + `}}`,
		}
	}
	euTeam := func(hub bool) string {
		checks := ""
		if hub {
			checks = `, admissionChecksStrategy: {admissionChecks: [{name: strata-multikueue}]}`
		}
		return `{apiVersion: kueue.x-k8s.io/v1beta2, kind: ClusterQueue, metadata: {name: eu-team, labels: {app.kubernetes.io/managed-by: strata, apps.strata.dev/batch-queue: eu-team}},
			  spec: {cohortName: org.globex, namespaceSelector: {matchExpressions: [{key: apps.strata.dev/app-namespace, operator: In, values: [eu]}]},
			    resourceGroups: [{` + resGroup + `, flavors: [{name: general, resources: [{name: cpu, nominalQuota: "1"}, {name: memory, nominalQuota: 1Gi}, {name: nvidia.com/gpu, nominalQuota: "0"}]}]}]` + checks + `}}`
	}
	localQueues := []string{
		`{apiVersion: kueue.x-k8s.io/v1beta2, kind: LocalQueue, metadata: {name: acme-ml, namespace: ml-a, labels: {app.kubernetes.io/managed-by: strata, apps.strata.dev/batch-queue: acme-ml, apps.strata.dev/app-namespace: ml-a}}, spec: {clusterQueue: acme-ml}}`,
		`{apiVersion: kueue.x-k8s.io/v1beta2, kind: LocalQueue, metadata: {name: acme-ml, namespace: ml-b, labels: {app.kubernetes.io/managed-by: strata, apps.strata.dev/batch-queue: acme-ml, apps.strata.dev/app-namespace: ml-b}}, spec: {clusterQueue: acme-ml}}`,
	}
	euLocalQueue := `{apiVersion: kueue.x-k8s.io/v1beta2, kind: LocalQueue, metadata: {name: eu-team, namespace: eu, labels: {app.kubernetes.io/managed-by: strata, apps.strata.dev/batch-queue: eu-team, apps.strata.dev/app-namespace: eu}}, spec: {clusterQueue: eu-team}}`
	multiKueue := []string{
		`{apiVersion: kueue.x-k8s.io/v1beta2, kind: MultiKueueCluster, metadata: {name: w1, labels: ` + labels + `}, spec: {clusterSource: {kubeConfig: {locationType: Secret, location: multikueue-w1}}}}`,
		`{apiVersion: kueue.x-k8s.io/v1beta2, kind: MultiKueueCluster, metadata: {name: w2, labels: ` + labels + `}, spec: {clusterSource: {kubeConfig: {locationType: Secret, location: multikueue-w2}}}}`,
		`{apiVersion: kueue.x-k8s.io/v1beta2, kind: MultiKueueConfig, metadata: {name: strata, labels: ` + labels + `}, spec: {clusters: [w1, w2]}}`,
		`{apiVersion: kueue.x-k8s.io/v1beta2, kind: AdmissionCheck, metadata: {name: strata-multikueue, labels: ` + labels + `},
		  spec: {controllerName: kueue.x-k8s.io/multikueue, parameters: {apiGroup: kueue.x-k8s.io, kind: MultiKueueConfig, name: strata}}}`,
	}

	got := desired(w)
	cat := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	wantHub := objs(t, cat(multiKueue, flavors, acme, []string{globex}, queueObjs(true), []string{euTeam(true)}, localQueues, []string{euLocalQueue})...)
	if diff := cmp.Diff(wantHub, got.Hub); diff != "" {
		t.Errorf("hub objects (-want +got):\n%s", diff)
	}
	// w1 is in region eu: every queue of no region, and eu-team; w2 (us)
	// not eu-team.
	wantW1 := objs(t, cat(flavors, acme, []string{globex}, queueObjs(false), []string{euTeam(false)}, localQueues, []string{euLocalQueue})...)
	if diff := cmp.Diff(wantW1, got.Workers["w1"]); diff != "" {
		t.Errorf("w1 objects (-want +got):\n%s", diff)
	}
	wantW2 := objs(t, cat(flavors, acme, queueObjs(false), localQueues)...)
	if diff := cmp.Diff(wantW2, got.Workers["w2"]); diff != "" {
		t.Errorf("w2 objects (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string][]string{"acme": {"w1", "w2"}, "acme-ml": {"w1", "w2"}, "eu-team": {"w1"}}, got.Regions); diff != "" {
		t.Errorf("regions (-want +got):\n%s", diff)
	}

	t.Run("no queue: nothing anywhere", func(t *testing.T) {
		got := desired(world{Pools: w.Pools, Clusters: w.Clusters})
		if len(got.Hub) != 0 || len(got.Workers["w1"]) != 0 || len(got.Workers["w2"]) != 0 {
			t.Errorf("plan = %+v, want no object", got)
		}
		if _, ok := got.Workers["w1"]; !ok {
			t.Error("w1 is not in the plan: its stale objects would not be deleted")
		}
	})
}
