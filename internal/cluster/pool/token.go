package pool

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/remote"
)

// A Pool's machines join its cluster as kubelets do with TLS bootstrapping:
// the controller keeps, per Pool, a bootstrap token in the workload
// cluster's kube-system (a bootstrap.kubernetes.io/token Secret that
// expires) and hands the broker only the cluster's API server, its CA and
// that token, never a kubeconfig. The token may do no more than ask for a
// kubelet client certificate (system:bootstrappers, bound on the cluster to
// system:node-bootstrapper and the nodeclient auto-approval, as kubeadm
// does). It is rotated before it expires: a new one is made once two thirds
// of its life passed, handed to the broker, and the old one deleted after
// the broker has the new one. The Pool's tokens are deleted when it is.

// DefaultTokenTTL is how long a Pool's bootstrap token lives.
const DefaultTokenTTL = 24 * time.Hour

// tokenGroupPrefix starts the extra group of a Pool's token, for audit and
// RBAC: system:bootstrappers:strata:<pool>.
const tokenGroupPrefix = "system:bootstrappers:strata:"

// joinCredential is what a Pool's machines join with.
type joinCredential struct {
	apiServer string
	caBundle  []byte
	token     string
}

// hash identifies a credential without keeping it.
func (c joinCredential) hash() [sha256.Size]byte {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(c.apiServer), c.caBundle, []byte(c.token)} {
		_, _ = fmt.Fprintf(h, "%d:", len(part))
		_, _ = h.Write(part)
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// tokenSecret is the bootstrap token Secret of a Pool made at now.
func tokenSecret(pool, id, secret string, now time.Time, ttl time.Duration) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: bootstraputil.BootstrapTokenSecretName(id), Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{fleetv1alpha1.PoolLabel: pool},
		},
		Type: corev1.SecretTypeBootstrapToken,
		StringData: map[string]string{
			bootstrapapi.BootstrapTokenDescriptionKey:      fmt.Sprintf("Strata: machines of Pool %s join with it; rotated and deleted by the hub's pool controller", pool),
			bootstrapapi.BootstrapTokenIDKey:               id,
			bootstrapapi.BootstrapTokenSecretKey:           secret,
			bootstrapapi.BootstrapTokenExpirationKey:       now.Add(ttl).UTC().Format(time.RFC3339),
			bootstrapapi.BootstrapTokenUsageAuthentication: "true",
			bootstrapapi.BootstrapTokenExtraGroupsKey:      tokenGroupPrefix + pool,
		},
	}
}

// secretValue reads a key of a Secret read back (Data) or made here
// (StringData).
func secretValue(s *corev1.Secret, key string) string {
	if v, ok := s.Data[key]; ok {
		return string(v)
	}
	return s.StringData[key]
}

// tokenExpiry is when a token Secret expires; false when it names no
// valid expiration (it is then replaced).
func tokenExpiry(s *corev1.Secret) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339, secretValue(s, bootstrapapi.BootstrapTokenExpirationKey))
	return t, err == nil
}

// rotateAt is when a token made to live ttl and expiring at expiry is
// replaced: once two thirds of its life passed, so that machines joining
// with it have a third of it left.
func rotateAt(expiry time.Time, ttl time.Duration) time.Time {
	return expiry.Add(-ttl / 3)
}

// tokenPlan is what to do with a Pool's token Secrets at now: the one to
// hand over (nil: make one), and the others, to delete once the broker
// has the current one.
type tokenPlan struct {
	current *corev1.Secret
	stale   []*corev1.Secret
	// next is when the current token is due for rotation.
	next time.Time
}

// planTokens picks the current token among a Pool's: the valid one that
// expires last, if it is not due for rotation. The others are stale.
func planTokens(secrets []corev1.Secret, now time.Time, ttl time.Duration) tokenPlan {
	var plan tokenPlan
	var currentExpiry time.Time
	for i := range secrets {
		s := &secrets[i]
		expiry, ok := tokenExpiry(s)
		if !ok || !bootstraputil.IsValidBootstrapToken(tokenOf(s)) || !now.Before(rotateAt(expiry, ttl)) {
			plan.stale = append(plan.stale, s)
			continue
		}
		if plan.current != nil && !expiry.After(currentExpiry) {
			plan.stale = append(plan.stale, s)
			continue
		}
		if plan.current != nil {
			plan.stale = append(plan.stale, plan.current)
		}
		plan.current, currentExpiry, plan.next = s, expiry, rotateAt(expiry, ttl)
	}
	slices.SortFunc(plan.stale, func(a, b *corev1.Secret) int { return strings.Compare(a.Name, b.Name) })
	return plan
}

// tokenOf is the token of a token Secret.
func tokenOf(s *corev1.Secret) string {
	return bootstraputil.TokenFromIDAndSecret(secretValue(s, bootstrapapi.BootstrapTokenIDKey), secretValue(s, bootstrapapi.BootstrapTokenSecretKey))
}

// poolTokens lists a Pool's token Secrets in the workload cluster.
func poolTokens(ctx context.Context, rc *remote.Cluster, pool string) ([]corev1.Secret, error) {
	list := &corev1.SecretList{}
	// Read from the API server: the hub caches no Secrets of a workload
	// cluster, and may read them only in kube-system.
	if err := rc.APIReader.List(ctx, list, client.InNamespace(metav1.NamespaceSystem),
		client.MatchingLabels{fleetv1alpha1.PoolLabel: pool}); err != nil {
		return nil, fmt.Errorf("listing the bootstrap tokens of pool %s: %w", pool, err)
	}
	return slices.DeleteFunc(list.Items, func(s corev1.Secret) bool { return s.Type != corev1.SecretTypeBootstrapToken }), nil
}

// ensureToken returns the Pool's join credential, making a new token when
// it has none that is not due for rotation, and the plan (the tokens to
// delete once the broker has it, and when to rotate next).
func (r *Reconciler) ensureToken(ctx context.Context, pool *fleetv1alpha1.Pool, rc *remote.Cluster) (joinCredential, tokenPlan, *blocker) {
	server, ca, err := apiServerOf(rc.Kubeconfig)
	if err != nil {
		return joinCredential{}, tokenPlan{}, &blocker{fleetv1alpha1.ClusterNotReadyReason,
			fmt.Sprintf("cluster %q: %v", pool.Spec.Cluster, err)}
	}
	secrets, err := poolTokens(ctx, rc, pool.Name)
	if err != nil {
		return joinCredential{}, tokenPlan{}, &blocker{fleetv1alpha1.ClusterNotReadyReason, err.Error()}
	}
	now := r.clock.Now()
	plan := planTokens(secrets, now, r.tokenTTL)
	if plan.current == nil {
		token, err := bootstraputil.GenerateBootstrapToken()
		if err != nil {
			return joinCredential{}, tokenPlan{}, &blocker{fleetv1alpha1.ClusterNotReadyReason, fmt.Sprintf("generating a bootstrap token: %v", err)}
		}
		id, secret, _ := strings.Cut(token, ".")
		s := tokenSecret(pool.Name, id, secret, now, r.tokenTTL)
		if err := rc.Client.Create(ctx, s); err != nil {
			return joinCredential{}, tokenPlan{}, &blocker{fleetv1alpha1.ClusterNotReadyReason,
				fmt.Sprintf("creating the bootstrap token of pool %s in cluster %s: %v", pool.Name, pool.Spec.Cluster, err)}
		}
		log.FromContext(ctx).Info("Created a bootstrap token", "tokenID", id, "expires", secretValue(s, bootstrapapi.BootstrapTokenExpirationKey))
		plan.current, plan.next = s, rotateAt(now.Add(r.tokenTTL), r.tokenTTL)
	}
	return joinCredential{apiServer: server, caBundle: ca, token: tokenOf(plan.current)}, plan, nil
}

// deleteTokens deletes token Secrets; gone ones are fine.
func deleteTokens(ctx context.Context, rc *remote.Cluster, secrets []*corev1.Secret) error {
	for _, s := range secrets {
		if err := rc.Client.Delete(ctx, s); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting bootstrap token Secret %s: %w", s.Name, err)
		}
		log.FromContext(ctx).Info("Deleted a bootstrap token", "tokenID", secretValue(s, bootstrapapi.BootstrapTokenIDKey))
	}
	return nil
}

// deletePoolTokens deletes every token Secret of a Pool: no machine joins
// a Pool being deleted.
func deletePoolTokens(ctx context.Context, rc *remote.Cluster, pool string) error {
	secrets, err := poolTokens(ctx, rc, pool)
	if err != nil {
		return err
	}
	stale := make([]*corev1.Secret, len(secrets))
	for i := range secrets {
		stale[i] = &secrets[i]
	}
	return deleteTokens(ctx, rc, stale)
}

// apiServerOf reads the API server and its CA bundle from the kubeconfig
// the hub reaches the cluster with; its credentials are not used.
func apiServerOf(kubeconfig []byte) (string, []byte, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return "", nil, fmt.Errorf("reading its kubeconfig: %w", err)
	}
	if !strings.HasPrefix(cfg.Host, "https://") {
		return "", nil, fmt.Errorf("its API server %q is not served over https: machines could not verify it", cfg.Host)
	}
	if len(cfg.CAData) == 0 {
		return "", nil, fmt.Errorf("its kubeconfig has no certificate-authority-data: machines could not verify its API server")
	}
	return cfg.Host, cfg.CAData, nil
}
