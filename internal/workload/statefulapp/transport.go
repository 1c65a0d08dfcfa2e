package statefulapp

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// TargetError is why an app's shard manager cannot be dialled as its spec
// says: nothing is dialled (never in plaintext instead), operations wait.
// Reason is the ShardManagerReachable condition's.
type TargetError struct {
	Reason  string
	Message string
}

func (e *TargetError) Error() string { return e.Message }

// TransportOf is the transport an app's spec states. It must state one
// explicitly: TLS with tls.caSecretRef, or Plaintext without tls; anything
// else (an app stored before the field existed, or one the schema's rules
// did not see) is an error and nothing is dialled.
func TransportOf(sm appsv1alpha1.ShardManager) (appsv1alpha1.ShardManagerTransport, error) {
	invalid := func(format string, args ...any) error {
		return &TargetError{Reason: appsv1alpha1.ShardManagerTransportInvalidReason, Message: fmt.Sprintf(format, args...)}
	}
	switch sm.Transport {
	case appsv1alpha1.TransportTLS:
		if sm.TLS == nil || sm.TLS.CASecretRef.Name == "" {
			return "", invalid("spec.shardManager.transport is TLS but spec.shardManager.tls.caSecretRef names no Secret: Strata has no CA to verify the shard manager with")
		}
	case appsv1alpha1.TransportPlaintext:
		if sm.TLS != nil {
			return "", invalid("spec.shardManager.transport is Plaintext but spec.shardManager.tls is set: say one")
		}
	case "":
		return "", invalid("spec.shardManager.transport is not set: say TLS (with spec.shardManager.tls.caSecretRef) or, explicitly, Plaintext")
	default:
		return "", invalid("spec.shardManager.transport %q is neither TLS nor Plaintext", sm.Transport)
	}
	return sm.Transport, nil
}

// CAKey is the key of the CA in the Secret ref names.
func CAKey(ref appsv1alpha1.SecretKeyRef) string {
	return orDefault(ref.Key, appsv1alpha1.DefaultCAKey)
}

// CASource says where an app's CA comes from, for messages.
func CASource(namespace string, ref appsv1alpha1.SecretKeyRef) string {
	return fmt.Sprintf("key %s of Secret %s/%s", CAKey(ref), namespace, ref.Name)
}

// caEntry is the CA read from a Secret at one resourceVersion, or why it
// could not be.
type caEntry struct {
	secret, key, resourceVersion string
	pem                          []byte
	err                          error
}

// target is how the app's shard manager is dialled, and the transport its
// spec states (also when the CA cannot be read: TLS, nothing dialled).
func (r *Reconciler) target(ctx context.Context, app *appsv1alpha1.StatefulApp) (Target, appsv1alpha1.ShardManagerTransport, error) {
	sm := app.Spec.ShardManager
	t := Target{Endpoint: sm.Endpoint}
	transport, err := TransportOf(sm)
	if err != nil || transport == appsv1alpha1.TransportPlaintext {
		return t, transport, err
	}
	// Without a CA the target stays TLS: dialling it fails, never falls
	// back to plaintext.
	ca, err := r.ca(ctx, app)
	t.TLS = &TargetTLS{CA: ca, ServerName: sm.TLS.ServerName, Source: CASource(app.Namespace, sm.TLS.CASecretRef)}
	return t, transport, err
}

// ca is the PEM of the app's CA. The Secret's metadata comes from the
// cache (which holds no Secret's data); its data is read from the API
// server only when its resourceVersion is not the one last read, and the
// outcome, CA or error, is kept for that version.
func (r *Reconciler) ca(ctx context.Context, app *appsv1alpha1.StatefulApp) ([]byte, error) {
	ref := app.Spec.ShardManager.TLS.CASecretRef
	key, source := CAKey(ref), CASource(app.Namespace, ref)
	unavailable := func(format string, args ...any) error {
		return &TargetError{Reason: appsv1alpha1.ShardManagerCAUnavailableReason,
			Message: fmt.Sprintf("the CA of the shard manager, %s (spec.shardManager.tls.caSecretRef): ", source) + fmt.Sprintf(format, args...)}
	}
	name := types.NamespacedName{Namespace: app.Namespace, Name: ref.Name}
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	switch err := r.client.Get(ctx, name, meta); {
	case apierrors.IsNotFound(err):
		return nil, unavailable("the Secret does not exist")
	case err != nil:
		return nil, fmt.Errorf("reading the metadata of Secret %s: %w", name, err)
	}
	appKey := client.ObjectKeyFromObject(app)
	r.mu.Lock()
	cached, ok := r.cas[appKey]
	r.mu.Unlock()
	if ok && cached.secret == ref.Name && cached.key == key && cached.resourceVersion == meta.ResourceVersion {
		return cached.pem, cached.err
	}

	secret := &corev1.Secret{}
	switch err := r.reader.Get(ctx, name, secret); {
	case apierrors.IsNotFound(err):
		return nil, unavailable("the Secret does not exist")
	case err != nil:
		return nil, fmt.Errorf("reading Secret %s: %w", name, err)
	}
	entry := caEntry{secret: ref.Name, key: key, resourceVersion: secret.ResourceVersion}
	if pem, ok := secret.Data[key]; !ok {
		entry.err = unavailable("the Secret has no key %s", key)
	} else if _, err := ParseCA(pem); err != nil {
		entry.err = unavailable("%v", err)
	} else {
		entry.pem = pem
	}
	r.mu.Lock()
	r.cas[appKey] = entry
	r.mu.Unlock()
	return entry.pem, entry.err
}

// appsOfSecret maps a Secret to the StatefulApps of its namespace whose
// CA it holds.
func (r *Reconciler) appsOfSecret(ctx context.Context, obj client.Object) []reconcile.Request {
	apps := &appsv1alpha1.StatefulAppList{}
	if err := r.client.List(ctx, apps, client.InNamespace(obj.GetNamespace())); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for i := range apps.Items {
		if tls := apps.Items[i].Spec.ShardManager.TLS; tls != nil && tls.CASecretRef.Name == obj.GetName() {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&apps.Items[i])})
		}
	}
	return reqs
}
