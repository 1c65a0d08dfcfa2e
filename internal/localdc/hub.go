package localdc

import (
	"context"
	"fmt"
	"os"

	"github.com/strata-dev/strata/internal/cluster/hub"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
)

// SystemNamespace holds Strata's own objects on the hub, such as the
// kubeconfig Secrets of the workload clusters.
const SystemNamespace = "strata-system"

// localDatacenterName is the simulated datacenter's name, and so the
// datacenter of the local workload clusters.
const localDatacenterName = "dc1"

// fieldOwner is the server-side apply field manager of `strata up`.
const fieldOwner = client.FieldOwner("strata-up")

// registerWorkloadClusters writes, for each workload cluster, a Secret with a
// self-contained kubeconfig and the Cluster object that points at it.
func registerWorkloadClusters(ctx context.Context, c client.Client, home string, dc *Datacenter) error {
	if err := c.Apply(ctx, corev1ac.Namespace(SystemNamespace), fieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("creating namespace %s: %w", SystemNamespace, err)
	}
	for _, wc := range dc.WorkloadClusters() {
		if err := writeKubeconfigSecret(ctx, c, home, wc.Name); err != nil {
			return err
		}
		if err := writeAggregatorKubeconfigSecret(ctx, c, home, wc.Name); err != nil {
			return err
		}
		cluster := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": fleetv1alpha1.GroupVersion.String(),
			"kind":       "Cluster",
			"metadata":   map[string]any{"name": wc.Name},
			"spec": map[string]any{
				"datacenter": localDatacenterName,
				"kubeconfigSecretRef": map[string]any{
					"namespace": SystemNamespace,
					"name":      kubeconfigSecretName(wc.Name),
				},
			},
		}}
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(cluster), fieldOwner, client.ForceOwnership); err != nil {
			return fmt.Errorf("registering cluster %s: %w", wc.Name, err)
		}
	}
	return nil
}

func kubeconfigSecretName(cluster string) string {
	return cluster + "-kubeconfig"
}

// writeKubeconfigSecret writes the Secret through which the hub's
// controllers reach a workload cluster: a kubeconfig of the ServiceAccount
// strata-system/strata-hub there, bound to the ClusterRole
// strata-hub-remote, with its current token inline (the hub reads the
// Secret, not the home's files); it is written again at each renewal.
func writeKubeconfigSecret(ctx context.Context, c client.Client, home, cluster string) error {
	id := Identity{Cluster: cluster, ServiceAccount: hubServiceAccount}
	return writeIdentitySecret(ctx, c, home, id, SystemNamespace, kubeconfigSecretName(cluster), fleetv1alpha1.DefaultKubeconfigKey)
}

// aggregatorKubeconfigSuffix names the Secret through which the fleet
// aggregator reaches a workload cluster as its own identity
// (AggregatorConfiguration workloadClusters.kubeconfigSecretSuffix).
const aggregatorKubeconfigSuffix = "-aggregator-kubeconfig"

// writeAggregatorKubeconfigSecret writes the Secret through which the
// fleet aggregator reaches a workload cluster: a kubeconfig of the
// ServiceAccount strata-system/strata-aggregator there, bound to the
// ClusterRole strata-aggregator-remote (read-only), written again at each
// renewal of its token.
func writeAggregatorKubeconfigSecret(ctx context.Context, c client.Client, home, cluster string) error {
	id := Identity{Cluster: cluster, ServiceAccount: aggregatorServiceAccount}
	return writeIdentitySecret(ctx, c, home, id, SystemNamespace, cluster+aggregatorKubeconfigSuffix, fleetv1alpha1.DefaultKubeconfigKey)
}

// writeIdentitySecret writes, on the hub, the Secret namespace/name whose
// key holds id's kubeconfig with its current token inline.
func writeIdentitySecret(ctx context.Context, c client.Client, home string, id Identity, namespace, name, key string) error {
	kubeconfig, err := inlineTokenKubeconfig(home, id)
	if err != nil {
		return err
	}
	secret := corev1ac.Secret(name, namespace).
		WithType(corev1.SecretTypeOpaque).
		WithData(map[string][]byte{key: kubeconfig})
	if err := c.Apply(ctx, secret, fieldOwner, client.ForceOwnership); err != nil {
		return fmt.Errorf("writing the kubeconfig Secret %s/%s of %s: %w", namespace, name, id, err)
	}
	return nil
}

// inlineTokenKubeconfig is an identity's kubeconfig with the token itself
// in place of the token file, so it can travel in a Secret.
func inlineTokenKubeconfig(home string, id Identity) ([]byte, error) {
	path := IdentityKubeconfigPath(home, id)
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig of %s: %w", id, err)
	}
	for _, auth := range cfg.AuthInfos {
		if auth.TokenFile == "" {
			continue
		}
		token, err := os.ReadFile(auth.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("reading the token of %s: %w", id, err)
		}
		auth.Token, auth.TokenFile = string(token), ""
	}
	return clientcmd.Write(*cfg)
}

// createDefaultPools gives each workload cluster a Pool of general Nodes, so
// a new datacenter has Nodes to run on.
func createDefaultPools(ctx context.Context, c client.Client, dc *Datacenter, capacity int32) error {
	for _, wc := range dc.WorkloadClusters() {
		pool := &fleetv1alpha1.Pool{
			ObjectMeta: metav1.ObjectMeta{Name: wc.Name + "-" + DefaultProfile},
			Spec:       fleetv1alpha1.PoolSpec{Cluster: wc.Name, Capacity: capacity, NodeProfile: DefaultProfile},
		}
		if err := c.Create(ctx, pool); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating pool %s: %w", pool.Name, err)
		}
	}
	return nil
}

// Scheme knows every type the local datacenter's components use on the hub.
func Scheme() *runtime.Scheme {
	return hub.Scheme()
}
