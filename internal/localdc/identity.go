package localdc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// identitiesDir holds, under the home, the ServiceAccount tokens and the
// kubeconfigs that name them: each component reaches its cluster as its
// ServiceAccount, with the RBAC of the release manifests, as it would in
// production, so a missing permission fails instead of hiding behind the
// admin kubeconfig.
const identitiesDir = "identities"

// tokenLifetime is how long a requested token is valid. It is renewed when
// tokenRenewAt of it has passed, so a renewal that fails a few times still
// finds the old token valid.
const (
	tokenLifetime = time.Hour
	tokenRenewAt  = 0.8
)

// Identity is a ServiceAccount on one cluster of the home, of
// strata-system unless Namespace says otherwise (Kueue's are of
// kueue-system).
type Identity struct {
	Cluster        string
	Namespace      string
	ServiceAccount string
}

func (id Identity) namespace() string {
	if id.Namespace == "" {
		return SystemNamespace
	}
	return id.Namespace
}

func (id Identity) String() string {
	return id.Cluster + "/" + id.namespace() + "/" + id.ServiceAccount
}

// IdentityKubeconfigPath is the kubeconfig of a component's identity: the
// cluster's server and CA, and the token file that renewals rewrite
// (client-go reads a token file again every minute).
func IdentityKubeconfigPath(home string, id Identity) string {
	return filepath.Join(home, identitiesDir, id.Cluster, id.fileName()+".kubeconfig")
}

func identityTokenPath(home string, id Identity) string {
	return filepath.Join(home, identitiesDir, id.Cluster, id.fileName()+".token")
}

// fileName names an identity's files: the ServiceAccount's name, after
// its namespace's when that is not strata-system.
func (id Identity) fileName() string {
	if id.Namespace == "" || id.Namespace == SystemNamespace {
		return id.ServiceAccount
	}
	return id.Namespace + "." + id.ServiceAccount
}

// issueIdentity makes sure the ServiceAccount exists, requests a token for
// it from the TokenRequest API and writes the token file and the
// kubeconfig. It returns when the token expires.
func issueIdentity(ctx context.Context, home string, id Identity) (time.Time, error) {
	adminPath := KubeconfigPath(home, id.Cluster)
	admin, err := clientcmd.BuildConfigFromFlags("", adminPath)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the kubeconfig of cluster %s: %w", id.Cluster, err)
	}
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return time.Time{}, err
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: id.ServiceAccount, Namespace: id.namespace()}}
	if _, err := cs.CoreV1().ServiceAccounts(id.namespace()).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return time.Time{}, fmt.Errorf("creating ServiceAccount %s: %w", id, err)
	}
	seconds := int64(tokenLifetime / time.Second)
	tr, err := cs.CoreV1().ServiceAccounts(id.namespace()).CreateToken(ctx, id.ServiceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &seconds}}, metav1.CreateOptions{})
	if err != nil {
		return time.Time{}, fmt.Errorf("requesting a token for %s: %w", id, err)
	}
	tokenPath := identityTokenPath(home, id)
	if err := writeFileAtomic(tokenPath, []byte(tr.Status.Token)); err != nil {
		return time.Time{}, err
	}
	kubeconfig, err := identityKubeconfig(adminPath, tokenPath)
	if err != nil {
		return time.Time{}, err
	}
	if err := writeFileAtomic(IdentityKubeconfigPath(home, id), kubeconfig); err != nil {
		return time.Time{}, err
	}
	return tr.Status.ExpirationTimestamp.Time, nil
}

// identityKubeconfig is the admin kubeconfig's cluster (server, CA inlined)
// with a user that presents the token in tokenPath.
func identityKubeconfig(adminPath, tokenPath string) ([]byte, error) {
	cfg, err := clientcmd.LoadFromFile(adminPath)
	if err != nil {
		return nil, fmt.Errorf("reading kubeconfig %s: %w", adminPath, err)
	}
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		return nil, fmt.Errorf("inlining the certificates of %s: %w", adminPath, err)
	}
	current, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return nil, fmt.Errorf("kubeconfig %s has no current context", adminPath)
	}
	cluster, ok := cfg.Clusters[current.Cluster]
	if !ok {
		return nil, fmt.Errorf("kubeconfig %s names cluster %q, which it does not define", adminPath, current.Cluster)
	}
	out := clientcmdapi.NewConfig()
	out.Clusters["cluster"] = cluster
	out.AuthInfos["identity"] = &clientcmdapi.AuthInfo{TokenFile: tokenPath}
	out.Contexts["identity"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: "identity"}
	out.CurrentContext = "identity"
	return clientcmd.Write(*out)
}

// writeFileAtomic replaces path with data in one rename, so a reader never
// sees half a token.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// issueIdentities issues every identity once, at start.
func issueIdentities(ctx context.Context, home string, ids []Identity) (map[Identity]time.Time, error) {
	expiries := map[Identity]time.Time{}
	var errs []error
	for _, id := range ids {
		exp, err := issueIdentity(ctx, home, id)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		expiries[id] = exp
	}
	return expiries, errors.Join(errs...)
}

// renewIdentities renews each token when tokenRenewAt of its life has
// passed, until ctx is done; a failed renewal is retried every 10 seconds.
// renewed, if set, is called after each renewal (to copy the new token
// where the files are not read); its failure is retried the same way.
func renewIdentities(ctx context.Context, home string, expiries map[Identity]time.Time, renewed func(context.Context, Identity) error) {
	logger := log.FromContext(ctx).WithName("identities")
	renewAt := func(exp time.Time) time.Time {
		return exp.Add(-time.Duration(float64(tokenLifetime) * (1 - tokenRenewAt)))
	}
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		for id, exp := range expiries {
			if time.Now().Before(renewAt(exp)) {
				continue
			}
			next, err := issueIdentity(ctx, home, id)
			if err == nil && renewed != nil {
				err = renewed(ctx, id)
			}
			if err != nil {
				logger.Error(err, "Renewing a ServiceAccount token failed; retrying", "identity", id.String(), "expires", exp)
				continue
			}
			expiries[id] = next
		}
	}, 10*time.Second)
}
