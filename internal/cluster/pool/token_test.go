package pool

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

var tokenT0 = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

// readBack is a Secret as the API server returns it: StringData in Data.
func readBack(s *corev1.Secret) corev1.Secret {
	out := *s.DeepCopy()
	out.Data = map[string][]byte{}
	for k, v := range s.StringData {
		out.Data[k] = []byte(v)
	}
	out.StringData = nil
	return out
}

func TestTokenSecret(t *testing.T) {
	got := tokenSecret("web", "abcdef", "0123456789abcdef", tokenT0, 24*time.Hour)
	want := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: "bootstrap-token-abcdef", Namespace: "kube-system",
			Labels: map[string]string{fleetv1alpha1.PoolLabel: "web"},
		},
		Type: "bootstrap.kubernetes.io/token",
		StringData: map[string]string{
			"description":                    "Strata: machines of Pool web join with it; rotated and deleted by the hub's pool controller",
			"token-id":                       "abcdef",
			"token-secret":                   "0123456789abcdef",
			"expiration":                     "2026-12-08T09:00:00Z",
			"usage-bootstrap-authentication": "true",
			"auth-extra-groups":              "system:bootstrappers:strata:web",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tokenSecret() (-want +got):\n%s", diff)
	}
	// Not usable for signing the cluster-info ConfigMap, only to
	// authenticate: the key is absent, not "false".
	if _, ok := got.StringData[bootstrapapi.BootstrapTokenUsageSigningKey]; ok {
		t.Error("the token may sign")
	}
	if tokenOf(got) != "abcdef.0123456789abcdef" {
		t.Errorf("tokenOf() = %q", tokenOf(got))
	}
	back := readBack(got)
	if tokenOf(&back) != "abcdef.0123456789abcdef" {
		t.Errorf("tokenOf() of the Secret read back = %q", tokenOf(&back))
	}
}

func TestPlanTokens(t *testing.T) {
	const ttl = 24 * time.Hour
	made := func(id string, at time.Time) corev1.Secret {
		return readBack(tokenSecret("web", id, "0123456789abcdef", at, ttl))
	}
	broken := made("brokn0", tokenT0)
	broken.Data["expiration"] = []byte("tomorrow")
	names := func(ss []*corev1.Secret) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.Name)
		}
		return out
	}
	cases := []struct {
		name        string
		secrets     []corev1.Secret
		now         time.Time
		wantCurrent string // "" when a new token is due
		wantStale   []string
		wantNext    time.Time
	}{
		{name: "none", now: tokenT0},
		{
			name: "fresh", secrets: []corev1.Secret{made("aaaaaa", tokenT0)}, now: tokenT0.Add(time.Hour),
			wantCurrent: "bootstrap-token-aaaaaa", wantNext: tokenT0.Add(16 * time.Hour),
		},
		{
			name: "just before two thirds of its life", secrets: []corev1.Secret{made("aaaaaa", tokenT0)}, now: tokenT0.Add(16*time.Hour - time.Second),
			wantCurrent: "bootstrap-token-aaaaaa", wantNext: tokenT0.Add(16 * time.Hour),
		},
		{
			name: "due at two thirds of its life", secrets: []corev1.Secret{made("aaaaaa", tokenT0)}, now: tokenT0.Add(16 * time.Hour),
			wantStale: []string{"bootstrap-token-aaaaaa"},
		},
		{
			name: "expired", secrets: []corev1.Secret{made("aaaaaa", tokenT0)}, now: tokenT0.Add(25 * time.Hour),
			wantStale: []string{"bootstrap-token-aaaaaa"},
		},
		{
			name:    "rotated: the new one is current, the old one stale",
			secrets: []corev1.Secret{made("aaaaaa", tokenT0), made("bbbbbb", tokenT0.Add(16*time.Hour))}, now: tokenT0.Add(16*time.Hour + time.Minute),
			wantCurrent: "bootstrap-token-bbbbbb", wantStale: []string{"bootstrap-token-aaaaaa"}, wantNext: tokenT0.Add(32 * time.Hour),
		},
		{
			name:    "two valid ones: the later expiry wins, in any order",
			secrets: []corev1.Secret{made("cccccc", tokenT0.Add(2*time.Hour)), made("aaaaaa", tokenT0)}, now: tokenT0.Add(3 * time.Hour),
			wantCurrent: "bootstrap-token-cccccc", wantStale: []string{"bootstrap-token-aaaaaa"}, wantNext: tokenT0.Add(18 * time.Hour),
		},
		{
			name: "an expiration that does not parse is replaced", secrets: []corev1.Secret{broken}, now: tokenT0,
			wantStale: []string{"bootstrap-token-brokn0"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := planTokens(tc.secrets, tc.now, ttl)
			current := ""
			if plan.current != nil {
				current = plan.current.Name
			}
			if current != tc.wantCurrent {
				t.Errorf("current = %q, want %q", current, tc.wantCurrent)
			}
			if diff := cmp.Diff(tc.wantStale, names(plan.stale)); diff != "" {
				t.Errorf("stale (-want +got):\n%s", diff)
			}
			if tc.wantCurrent != "" && !plan.next.Equal(tc.wantNext) {
				t.Errorf("next rotation = %s, want %s", plan.next, tc.wantNext)
			}
		})
	}
}

func TestUntilRotation(t *testing.T) {
	cases := []struct {
		name      string
		requeue   time.Duration
		next      time.Time
		wantAfter time.Duration
	}{
		{"rotation after the requeue", 5 * time.Minute, tokenT0.Add(time.Hour), 5 * time.Minute},
		{"rotation before the requeue", 5 * time.Minute, tokenT0.Add(time.Minute), time.Minute},
		{"no requeue", 0, tokenT0.Add(time.Hour), time.Hour},
		{"rotation past", 5 * time.Minute, tokenT0.Add(-time.Minute), time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := untilRotation(reconcileResult(tc.requeue), tc.next, tokenT0)
			if got.RequeueAfter != tc.wantAfter {
				t.Errorf("RequeueAfter = %s, want %s", got.RequeueAfter, tc.wantAfter)
			}
		})
	}
}

func TestAPIServerOf(t *testing.T) {
	const withCA = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://10.0.0.1:6443", certificate-authority-data: Y2E=}}]
users: [{name: u, user: {token: admin}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
	server, ca, err := apiServerOf([]byte(withCA))
	if err != nil || server != "https://10.0.0.1:6443" || string(ca) != "ca" {
		t.Errorf("apiServerOf() = %q, %q, %v; want the server and CA only", server, ca, err)
	}
	for name, kubeconfig := range map[string]string{
		"no CA":  `{apiVersion: v1, kind: Config, clusters: [{name: c, cluster: {server: "https://10.0.0.1:6443"}}], contexts: [{name: c, context: {cluster: c}}], current-context: c}`,
		"http":   `{apiVersion: v1, kind: Config, clusters: [{name: c, cluster: {server: "http://10.0.0.1:8080"}}], contexts: [{name: c, context: {cluster: c}}], current-context: c}`,
		"broken": `{{{`,
	} {
		if _, _, err := apiServerOf([]byte(kubeconfig)); err == nil {
			t.Errorf("apiServerOf() of a kubeconfig with %s succeeded", name)
		}
	}
}

func reconcileResult(after time.Duration) reconcile.Result {
	return reconcile.Result{RequeueAfter: after}
}

// TestJoinFailure: the Pool's Joining condition says why a machine failed
// to join, e.g. that its bootstrap token was refused.
func TestJoinFailure(t *testing.T) {
	refused := "provisioning: joining cluster wl failed, retrying: bootstrap token refused: the API server of cluster wl refused bootstrap token abcdef"
	machines := map[string]*brokerv1.Machine{
		"m1": {Id: "m1"},
		"m3": {Id: "m3", HealthMessage: refused},
		"m2": {Id: "m2", HealthMessage: refused},
		"m4": {Id: "m4", HealthMessage: "hardware: fan failed"},
	}
	nodes := []corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "m1"}}}
	if got, want := joinFailure(machines, nodes), "machine m2: "+refused; got != want {
		t.Errorf("joinFailure() = %q, want %q", got, want)
	}
	nodes = append(nodes, corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "m2"}}, corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "m3"}})
	if got := joinFailure(machines, nodes); got != "" {
		t.Errorf("joinFailure() of machines that have Nodes = %q, want none", got)
	}
}
