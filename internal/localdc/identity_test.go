package localdc

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/strata-dev/strata/internal/testutil"
)

// TestIdentity: a component's kubeconfig authenticates as its ServiceAccount
// and has exactly the rights RBAC gives that account.
func TestIdentity(t *testing.T) {
	env, cfg := testutil.StartEnv(t)
	home := t.TempDir()
	adminPath := KubeconfigPath(home, "c1")
	if err := os.MkdirAll(filepath.Dir(adminPath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(adminPath, testutil.AdminKubeconfig(t, env), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin := kubernetes.NewForConfigOrDie(cfg)
	mustCreate := func(err error) {
		t.Helper()
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: SystemNamespace}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = admin.RbacV1().Roles(SystemNamespace).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "read-configmaps"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list"}}},
	}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = admin.RbacV1().RoleBindings(SystemNamespace).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "read-configmaps"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "read-configmaps"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "strata-test", Namespace: SystemNamespace}},
	}, metav1.CreateOptions{})
	mustCreate(err)

	id := Identity{Cluster: "c1", ServiceAccount: "strata-test"}
	exp, err := issueIdentity(ctx, home, id)
	if err != nil {
		t.Fatal(err)
	}
	if exp.IsZero() {
		t.Fatal("the token has no expiry")
	}
	idCfg, err := clientcmd.BuildConfigFromFlags("", IdentityKubeconfigPath(home, id))
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(idCfg)
	if _, err := cs.CoreV1().ConfigMaps(SystemNamespace).List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("listing ConfigMaps as %s, which its Role allows: %v", id, err)
	}
	_, err = cs.CoreV1().Secrets(SystemNamespace).List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("listing Secrets as %s: got %v, want Forbidden (the identity must not be the admin)", id, err)
	}

	// A renewal rewrites the token the kubeconfig names; the kubeconfig
	// itself does not change.
	before, err := os.ReadFile(identityTokenPath(home, id))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := issueIdentity(ctx, home, id); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(identityTokenPath(home, id))
	if err != nil {
		t.Fatal(err)
	}
	if string(before) == string(after) {
		t.Error("a renewal wrote the same token")
	}

	// The token inlined, as the hub's kubeconfig Secret carries it: the
	// same identity, no file.
	inline, err := inlineTokenKubeconfig(home, id)
	if err != nil {
		t.Fatal(err)
	}
	inlineCfg, err := clientcmd.RESTConfigFromKubeConfig(inline)
	if err != nil {
		t.Fatal(err)
	}
	if inlineCfg.BearerTokenFile != "" || inlineCfg.BearerToken != string(after) {
		t.Errorf("inlined kubeconfig: token file %q, token of %d bytes; want the current token inline", inlineCfg.BearerTokenFile, len(inlineCfg.BearerToken))
	}
	if _, err := kubernetes.NewForConfigOrDie(inlineCfg).CoreV1().ConfigMaps(SystemNamespace).List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("listing ConfigMaps with the inlined kubeconfig: %v", err)
	}

	// A token due for renewal is renewed, and the hook told.
	renewCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var renewed []Identity
	renewIdentities(renewCtx, home, map[Identity]time.Time{id: time.Now()}, func(_ context.Context, got Identity) error {
		renewed = append(renewed, got)
		cancel()
		return nil
	})
	if len(renewed) != 1 || renewed[0] != id {
		t.Errorf("renewed %v, want %v once", renewed, id)
	}
}
