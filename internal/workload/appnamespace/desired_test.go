package appnamespace

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

func TestDesiredNamespaceAndQuota(t *testing.T) {
	an := makeAppNamespace("shop-prod", "shop").Profile("gpu-h100").Quota("16", "64Gi").Obj()

	wantNS := corev1ac.Namespace("shop-prod").WithLabels(map[string]string{
		"apps.strata.dev/app":                "shop",
		"apps.strata.dev/tenant":             "stateless",
		"apps.strata.dev/app-namespace":      "shop-prod",
		"fleet.strata.dev/node-profile":      "gpu-h100",
		"pod-security.kubernetes.io/enforce": "baseline",
	})
	if diff := cmp.Diff(wantNS, desiredNamespace(an)); diff != "" {
		t.Errorf("namespace (-want +got):\n%s", diff)
	}
	wantQuota := corev1ac.ResourceQuota("strata-quota", "shop-prod").
		WithLabels(map[string]string{"apps.strata.dev/app": "shop", "apps.strata.dev/app-namespace": "shop-prod"}).
		WithSpec(corev1ac.ResourceQuotaSpec().WithHard(corev1.ResourceList{
			"requests.cpu": resource.MustParse("16"), "requests.memory": resource.MustParse("64Gi"),
		}))
	if diff := cmp.Diff(wantQuota, desiredQuota(an)); diff != "" {
		t.Errorf("quota (-want +got):\n%s", diff)
	}
}

func TestQuotaHard(t *testing.T) {
	q := resource.MustParse("2")
	tests := []struct {
		name  string
		quota corev1.ResourceList
		want  corev1.ResourceList
	}{
		{name: "none", quota: nil, want: corev1.ResourceList{}},
		{
			name:  "node resources limit requests",
			quota: corev1.ResourceList{"cpu": q, "memory": q, "ephemeral-storage": q, "example.com/gpu": q},
			want: corev1.ResourceList{"requests.cpu": q, "requests.memory": q, "requests.ephemeral-storage": q,
				"requests.example.com/gpu": q},
		},
		{
			name:  "quota names stay",
			quota: corev1.ResourceList{"pods": q, "limits.cpu": q, "requests.example.com/gpu": q, "count/services": q},
			want:  corev1.ResourceList{"pods": q, "limits.cpu": q, "requests.example.com/gpu": q, "count/services": q},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, quotaHard(tt.quota)); diff != "" {
				t.Errorf("quotaHard (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDesiredRoleBindings(t *testing.T) {
	an := makeAppNamespace("shop-prod", "shop").
		Owner(appsv1alpha1.UserSubject, "alice@example.com", appsv1alpha1.AdminRole).
		Owner(appsv1alpha1.GroupSubject, "shop-devs", appsv1alpha1.EditRole).
		Owner(appsv1alpha1.UserSubject, "shop-devs", appsv1alpha1.ViewRole).
		Obj()
	binding := func(name, kind, subject, role string) *rbacv1ac.RoleBindingApplyConfiguration {
		return rbacv1ac.RoleBinding(name, "shop-prod").
			WithLabels(map[string]string{"apps.strata.dev/app": "shop", "apps.strata.dev/app-namespace": "shop-prod"}).
			WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup("rbac.authorization.k8s.io").WithKind("ClusterRole").WithName(role)).
			WithSubjects(rbacv1ac.Subject().WithAPIGroup("rbac.authorization.k8s.io").WithKind(kind).WithName(subject))
	}
	// The names hash the subject's name: sha256("alice@example.com"), sha256("shop-devs").
	want := []*rbacv1ac.RoleBindingApplyConfiguration{
		binding("strata-owner-admin-user-ff8d9819fc", "User", "alice@example.com", "admin"),
		binding("strata-owner-edit-group-1e826d0a8e", "Group", "shop-devs", "edit"),
		binding("strata-owner-view-user-1e826d0a8e", "User", "shop-devs", "view"),
	}
	if diff := cmp.Diff(want, desiredRoleBindings(an)); diff != "" {
		t.Errorf("role bindings (-want +got):\n%s", diff)
	}
}

func TestStaleRoleBindings(t *testing.T) {
	alice := appsv1alpha1.Owner{Kind: appsv1alpha1.UserSubject, Name: "alice", Role: appsv1alpha1.EditRole}
	aliceAdmin := alice
	aliceAdmin.Role = appsv1alpha1.AdminRole
	bob := appsv1alpha1.Owner{Kind: appsv1alpha1.UserSubject, Name: "bob", Role: appsv1alpha1.ViewRole}
	existing := func(name, appNamespace string) rbacv1.RoleBinding {
		rb := rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}
		if appNamespace != "" {
			rb.Labels = map[string]string{appsv1alpha1.AppNamespaceLabel: appNamespace}
		}
		return rb
	}
	tests := []struct {
		name     string
		owners   []appsv1alpha1.Owner
		existing []rbacv1.RoleBinding
		want     []string
	}{
		{
			name:     "current owners stay",
			owners:   []appsv1alpha1.Owner{alice, bob},
			existing: []rbacv1.RoleBinding{existing(roleBindingName(alice), "ns"), existing(roleBindingName(bob), "ns")},
		},
		{
			name:     "a removed owner and a changed role go",
			owners:   []appsv1alpha1.Owner{aliceAdmin},
			existing: []rbacv1.RoleBinding{existing(roleBindingName(alice), "ns"), existing(roleBindingName(bob), "ns"), existing(roleBindingName(aliceAdmin), "ns")},
			want:     []string{roleBindingName(alice), roleBindingName(bob)},
		},
		{
			name:   "bindings Strata did not make for this app namespace stay",
			owners: nil,
			existing: []rbacv1.RoleBinding{
				existing("team-admins", ""), existing("strata-owner-view-user-0123456789", ""),
				existing(roleBindingName(bob), "other"), existing("ci-deployer", "ns"),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			an := makeAppNamespace("ns", "app").Obj()
			an.Spec.Owners = tt.owners
			if diff := cmp.Diff(tt.want, staleRoleBindings(an, tt.existing)); diff != "" {
				t.Errorf("stale (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDesiredStatus(t *testing.T) {
	then := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	now := metav1.NewTime(then.Add(time.Hour))
	notFits := metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse, Reason: appsv1alpha1.NoClusterFitsReason,
		Message: "no workload cluster fits", ObservedGeneration: 1, LastTransitionTime: then}
	ready := metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: appsv1alpha1.NamespaceReadyReason,
		Message: "namespace ns in cluster w1", ObservedGeneration: 2, LastTransitionTime: then}

	onW1 := []appsv1alpha1.ClusterPlacement{{Cluster: "w1", Reason: "routed to w1"}}
	onW1W2 := append(slices.Clone(onW1), appsv1alpha1.ClusterPlacement{Cluster: "w2", Reason: "routed to w2"})
	tests := []struct {
		name   string
		status appsv1alpha1.AppNamespaceStatus
		out    outcome
		want   appsv1alpha1.AppNamespaceStatus
	}{
		{
			name: "none fits: no cluster",
			out:  outcome{reason: appsv1alpha1.NoClusterFitsReason, message: "no workload cluster fits"},
			want: appsv1alpha1.AppNamespaceStatus{ObservedGeneration: 2, Conditions: []metav1.Condition{
				{Type: "Ready", Status: metav1.ConditionFalse, Reason: appsv1alpha1.NoClusterFitsReason, Message: "no workload cluster fits",
					ObservedGeneration: 2, LastTransitionTime: now},
			}},
		},
		{
			name:   "routed and ready: the cluster, the namespace, a transition",
			status: appsv1alpha1.AppNamespaceStatus{ObservedGeneration: 1, Conditions: []metav1.Condition{notFits}},
			out:    outcome{placements: onW1, reason: appsv1alpha1.NamespaceReadyReason, message: "namespace ns in cluster w1"},
			want: appsv1alpha1.AppNamespaceStatus{ObservedGeneration: 2, Cluster: "w1", Clusters: []string{"w1"}, Placements: onW1, Namespace: "ns", Conditions: []metav1.Condition{
				{Type: "Ready", Status: metav1.ConditionTrue, Reason: appsv1alpha1.NamespaceReadyReason, Message: "namespace ns in cluster w1",
					ObservedGeneration: 2, LastTransitionTime: now},
			}},
		},
		{
			name:   "still ready: the transition time stays",
			status: appsv1alpha1.AppNamespaceStatus{ObservedGeneration: 2, Cluster: "w1", Clusters: []string{"w1"}, Placements: onW1, Namespace: "ns", Conditions: []metav1.Condition{ready}},
			out:    outcome{placements: onW1, reason: appsv1alpha1.NamespaceReadyReason, message: "namespace ns in cluster w1"},
			want:   appsv1alpha1.AppNamespaceStatus{ObservedGeneration: 2, Cluster: "w1", Clusters: []string{"w1"}, Placements: onW1, Namespace: "ns", Conditions: []metav1.Condition{ready}},
		},
		{
			name:   "the cluster stays when a reconcile cannot reach it",
			status: appsv1alpha1.AppNamespaceStatus{ObservedGeneration: 2, Cluster: "w1", Clusters: []string{"w1"}, Placements: onW1, Namespace: "ns", Conditions: []metav1.Condition{ready}},
			out:    outcome{placements: onW1, reason: appsv1alpha1.ClusterUnavailableReason, message: "cluster w1 is not Ready"},
			want: appsv1alpha1.AppNamespaceStatus{ObservedGeneration: 2, Cluster: "w1", Clusters: []string{"w1"}, Placements: onW1, Namespace: "ns", Conditions: []metav1.Condition{
				{Type: "Ready", Status: metav1.ConditionFalse, Reason: appsv1alpha1.ClusterUnavailableReason, Message: "cluster w1 is not Ready",
					ObservedGeneration: 2, LastTransitionTime: now},
			}},
		},
		{
			name:   "a second cluster: placements and clusters grow, cluster stays the first",
			status: appsv1alpha1.AppNamespaceStatus{ObservedGeneration: 2, Cluster: "w1", Clusters: []string{"w1"}, Placements: onW1, Namespace: "ns", Conditions: []metav1.Condition{ready}},
			out:    outcome{placements: onW1W2, reason: appsv1alpha1.NamespaceReadyReason, message: "namespace ns in cluster w1"},
			want:   appsv1alpha1.AppNamespaceStatus{ObservedGeneration: 2, Cluster: "w1", Clusters: []string{"w1", "w2"}, Placements: onW1W2, Namespace: "ns", Conditions: []metav1.Condition{ready}},
		},
		{
			name:   "deleting, placements unknown to the outcome: the status keeps them",
			status: appsv1alpha1.AppNamespaceStatus{ObservedGeneration: 2, Cluster: "w1", Clusters: []string{"w1", "w2"}, Placements: onW1W2, Namespace: "ns", Conditions: []metav1.Condition{ready}},
			out:    outcome{reason: appsv1alpha1.DeletingNamespaceReason, message: "namespace ns on the hub is terminating"},
			want: appsv1alpha1.AppNamespaceStatus{ObservedGeneration: 2, Cluster: "w1", Clusters: []string{"w1", "w2"}, Placements: onW1W2, Namespace: "ns", Conditions: []metav1.Condition{
				{Type: "Ready", Status: metav1.ConditionFalse, Reason: appsv1alpha1.DeletingNamespaceReason, Message: "namespace ns on the hub is terminating",
					ObservedGeneration: 2, LastTransitionTime: now},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			an := makeAppNamespace("ns", "app").Obj()
			an.Generation = 2
			an.Status = tt.status
			if diff := cmp.Diff(tt.want, desiredStatus(an, tt.out, now)); diff != "" {
				t.Errorf("status (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDesiredHubQuota(t *testing.T) {
	an := makeAppNamespace("shop-prod", "shop").Quota("16", "64Gi").Obj()
	want := corev1ac.ResourceQuota("strata-quota", "shop-prod").
		WithLabels(map[string]string{"apps.strata.dev/app": "shop", "apps.strata.dev/app-namespace": "shop-prod"}).
		WithSpec(corev1ac.ResourceQuotaSpec().WithHard(corev1.ResourceList{"pods": resource.MustParse("0")}))
	if diff := cmp.Diff(want, desiredHubQuota(an)); diff != "" {
		t.Errorf("hub quota (-want +got):\n%s", diff)
	}
}

func TestPlacedOutcome(t *testing.T) {
	an := makeAppNamespace("shop", "shop").Owner(appsv1alpha1.UserSubject, "alice", appsv1alpha1.EditRole).Obj()
	on := func(names ...string) []appsv1alpha1.ClusterPlacement {
		var out []appsv1alpha1.ClusterPlacement
		for _, n := range names {
			out = append(out, appsv1alpha1.ClusterPlacement{Cluster: n, Reason: "routed to " + n})
		}
		return out
	}
	inPlace := func(c string) clusterStep { return clusterStep{cluster: c} }
	unreachable := func(c string) clusterStep {
		return clusterStep{cluster: c, reason: appsv1alpha1.ClusterUnavailableReason, unreachable: true,
			message: "cluster " + c + " is not Ready (APIServerUnreachable); the namespace stays there and is retried"}
	}
	refused := clusterStep{cluster: "w2", reason: appsv1alpha1.ClusterUnavailableReason, message: "applying namespace shop in cluster w2: forbidden"}
	terminating := clusterStep{cluster: "w2", reason: appsv1alpha1.DeletingNamespaceReason,
		message: "namespace shop in cluster w2 is being deleted, though not by Strata; it is made again once it is gone"}

	tests := []struct {
		name   string
		placed []appsv1alpha1.ClusterPlacement
		steps  []clusterStep
		short  string
		want   outcome
	}{
		{
			name:   "one cluster, in place: the message of before",
			placed: on("w1"), steps: []clusterStep{inPlace("w1")},
			want: outcome{placements: on("w1"), reason: appsv1alpha1.NamespaceReadyReason,
				message: "namespace shop in cluster w1, 1 owner RoleBinding, quota cpu 4, memory 16Gi"},
		},
		{
			name:   "one cluster, unreachable: ClusterUnavailable, its message alone",
			placed: on("w1"), steps: []clusterStep{unreachable("w1")},
			want: outcome{unreachable: true, placements: on("w1"), reason: appsv1alpha1.ClusterUnavailableReason,
				message: "cluster w1 is not Ready (APIServerUnreachable); the namespace stays there and is retried"},
		},
		{
			name:   "two in place, one unreachable: Ready, naming it",
			placed: on("w1", "w2", "w3"), steps: []clusterStep{inPlace("w1"), inPlace("w2"), unreachable("w3")},
			want: outcome{unreachable: true, placements: on("w1", "w2", "w3"), reason: appsv1alpha1.NamespaceReadyReason,
				message: "namespace shop in clusters w1, w2, 1 owner RoleBinding, quota cpu 4, memory 16Gi in each; " +
					"unreachable, retried: cluster w3 is not Ready (APIServerUnreachable); the namespace stays there and is retried"},
		},
		{
			name:   "all unreachable: ClusterUnavailable",
			placed: on("w1", "w3"), steps: []clusterStep{unreachable("w1"), unreachable("w3")},
			want: outcome{unreachable: true, placements: on("w1", "w3"), reason: appsv1alpha1.ClusterUnavailableReason,
				message: "cluster w1 is not Ready (APIServerUnreachable); the namespace stays there and is retried; " +
					"cluster w3 is not Ready (APIServerUnreachable); the namespace stays there and is retried"},
		},
		{
			name:   "a cluster that answers and refuses: not Ready, though another is in place",
			placed: on("w1", "w2"), steps: []clusterStep{inPlace("w1"), refused},
			want: outcome{placements: on("w1", "w2"), reason: appsv1alpha1.ClusterUnavailableReason,
				message: "applying namespace shop in cluster w2: forbidden; namespace shop in cluster w1, 1 owner RoleBinding, quota cpu 4, memory 16Gi"},
		},
		{
			name:   "terminating in one cluster: DeletingNamespace",
			placed: on("w1", "w2"), steps: []clusterStep{inPlace("w1"), terminating},
			want: outcome{placements: on("w1", "w2"), reason: appsv1alpha1.DeletingNamespaceReason,
				message: "namespace shop in cluster w2 is being deleted, though not by Strata; it is made again once it is gone; " +
					"namespace shop in cluster w1, 1 owner RoleBinding, quota cpu 4, memory 16Gi"},
		},
		{
			name:   "fewer than asked: TooFewClusters, with why",
			placed: on("w1"), steps: []clusterStep{inPlace("w1")}, short: "1 of 2 clusters asked: no other workload cluster fits profile general with quota cpu 4, memory 16Gi: w2: cordoned",
			want: outcome{placements: on("w1"), reason: appsv1alpha1.TooFewClustersReason,
				message: "namespace shop in cluster w1, 1 owner RoleBinding, quota cpu 4, memory 16Gi; " +
					"1 of 2 clusters asked: no other workload cluster fits profile general with quota cpu 4, memory 16Gi: w2: cordoned"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, placedOutcome(an, tt.placed, tt.steps, tt.short), cmp.AllowUnexported(outcome{})); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
		})
	}
}

// A deletion held by an unreachable cluster while another cluster's
// namespace terminates shows the unreachable cluster, and is looked at again
// as soon as a terminating one alone would be.
func TestDeletionRetriesWhileTerminating(t *testing.T) {
	deleting := deletionStep{reason: appsv1alpha1.DeletingNamespaceReason, message: "namespace ml in cluster w1 is terminating"}
	unreachable := deletionStep{reason: appsv1alpha1.ClusterUnavailableReason, message: "cluster w3 is not Ready"}
	for _, steps := range [][2]deletionStep{{deleting, unreachable}, {unreachable, deleting}} {
		worst := worse(worse(deletionStep{}, steps[0]), steps[1])
		if worst.reason != appsv1alpha1.ClusterUnavailableReason || !worst.terminating {
			t.Errorf("worst of %s then %s = %+v, want ClusterUnavailable and terminating", steps[0].reason, steps[1].reason, worst)
		}
		out := outcome{reason: worst.reason, terminating: worst.terminating}
		if got := requeueAfter(out); got != deletingInterval {
			t.Errorf("requeue after %s, want %s", got, deletingInterval)
		}
	}
	if got := requeueAfter(outcome{reason: unreachable.reason}); got != unavailableInterval {
		t.Errorf("unreachable alone: requeue after %s, want %s", got, unavailableInterval)
	}
}
