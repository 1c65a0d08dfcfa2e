package aggregator

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/console/store"
)

// kubeSource is one kind of one cluster, listed in pages and watched.
type kubeSource struct {
	cluster, kind string
	list          func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error)
	watch         func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	// row is the store's row of an object, or false for one not kept.
	row func(obj runtime.Object) (any, bool, error)
	// changed, when set, is told of every event (the hub's Clusters).
	changed func()
}

func (s *kubeSource) key() srcKey { return srcKey{s.cluster, s.kind} }

// clients are one cluster's clients: requests with a deadline, and watches
// without one (a watch ends when the server's timeout or ctx says).
type clients struct {
	typed, typedWatch     kubernetes.Interface
	dynamic, dynamicWatch dynamic.Interface
}

// readyz asks the cluster's API server whether it is ready.
func (c *clients) readyz(ctx context.Context) error {
	return c.typed.Discovery().RESTClient().Get().AbsPath("/readyz").Do(ctx).Error()
}

// newClients builds a cluster's clients: protobuf for the built-in kinds,
// the QPS and Burst of Options, RequestTimeout on every request but watches.
func (a *Aggregator) newClients(cfg *rest.Config) (*clients, error) {
	build := func(timeout bool, protobuf bool) *rest.Config {
		c := rest.CopyConfig(cfg)
		c.QPS, c.Burst = a.opts.QPS, a.opts.Burst
		c.Timeout = 0
		if timeout {
			c.Timeout = a.opts.RequestTimeout
		}
		if protobuf {
			c.ContentType = runtime.ContentTypeProtobuf
			c.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
		}
		return c
	}
	var (
		c   clients
		err error
	)
	if c.typed, err = kubernetes.NewForConfig(build(true, true)); err != nil {
		return nil, err
	}
	if c.typedWatch, err = kubernetes.NewForConfig(build(false, true)); err != nil {
		return nil, err
	}
	if c.dynamic, err = dynamic.NewForConfig(build(true, false)); err != nil {
		return nil, err
	}
	if c.dynamicWatch, err = dynamic.NewForConfig(build(false, false)); err != nil {
		return nil, err
	}
	return &c, nil
}

// hubSources are the hub's: Strata's fleet and app objects, and the Events
// of Strata's objects.
func (a *Aggregator) hubSources() ([]*kubeSource, error) {
	c, err := a.newClients(a.opts.HubConfig)
	if err != nil {
		return nil, fmt.Errorf("connecting the fleet aggregator to the hub: %w", err)
	}
	fleet := fleetv1alpha1.GroupVersion
	apps := appsv1alpha1.GroupVersion
	clustersSource := objectSource(store.HubCluster, store.KindCluster, fleet.WithResource("clusters"), c)
	clustersSource.changed = a.clustersChanged
	return []*kubeSource{
		clustersSource,
		objectSource(store.HubCluster, store.KindPool, fleet.WithResource("pools"), c),
		objectSource(store.HubCluster, store.KindMaintenanceRollout, fleet.WithResource("maintenancerollouts"), c),
		objectSource(store.HubCluster, store.KindAppNamespace, apps.WithResource("appnamespaces"), c),
		objectSource(store.HubCluster, store.KindStatelessApp, apps.WithResource("statelessapps"), c),
		eventSource(store.HubCluster, c, false),
	}, nil
}

// workloadSources are a workload cluster's: Nodes, Pods, Strata's apps and
// the Events of Strata's objects and of Nodes.
func workloadSources(cluster string, c *clients) []*kubeSource {
	apps := appsv1alpha1.GroupVersion
	return []*kubeSource{
		{
			cluster: cluster, kind: store.KindNode,
			list: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return c.typed.CoreV1().Nodes().List(ctx, o)
			},
			watch: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return c.typedWatch.CoreV1().Nodes().Watch(ctx, o)
			},
			row: func(obj runtime.Object) (any, bool, error) {
				n, ok := obj.(*corev1.Node)
				if !ok {
					return nil, false, fmt.Errorf("a %T in the Nodes", obj)
				}
				return nodeRow(cluster, n), true, nil
			},
		},
		{
			cluster: cluster, kind: store.KindPod,
			list: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return c.typed.CoreV1().Pods("").List(ctx, o)
			},
			watch: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return c.typedWatch.CoreV1().Pods("").Watch(ctx, o)
			},
			row: func(obj runtime.Object) (any, bool, error) {
				p, ok := obj.(*corev1.Pod)
				if !ok {
					return nil, false, fmt.Errorf("a %T in the Pods", obj)
				}
				return podRow(cluster, p), true, nil
			},
		},
		objectSource(cluster, store.KindStatelessApp, apps.WithResource("statelessapps"), c),
		objectSource(cluster, store.KindStatefulApp, apps.WithResource("statefulapps"), c),
		eventSource(cluster, c, true),
	}
}

// objectSource watches one of Strata's kinds, stored as JSON.
func objectSource(cluster, kind string, gvr schema.GroupVersionResource, c *clients) *kubeSource {
	return &kubeSource{
		cluster: cluster, kind: kind,
		list: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.dynamic.Resource(gvr).List(ctx, o)
		},
		watch: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.dynamicWatch.Resource(gvr).Watch(ctx, o)
		},
		row: func(obj runtime.Object) (any, bool, error) {
			u, ok := obj.(*unstructured.Unstructured)
			if !ok {
				return nil, false, fmt.Errorf("a %T in the %s", obj, gvr.Resource)
			}
			row, err := objectRow(cluster, kind, u)
			return row, err == nil, err
		},
	}
}

// eventSource watches the Events of Strata's objects (and of Nodes when
// nodes). A field selector cannot match an API group: the others are
// received and dropped.
func eventSource(cluster string, c *clients, nodes bool) *kubeSource {
	return &kubeSource{
		cluster: cluster, kind: store.KindEvent,
		list: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return c.typed.CoreV1().Events("").List(ctx, o)
		},
		watch: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return c.typedWatch.CoreV1().Events("").Watch(ctx, o)
		},
		row: func(obj runtime.Object) (any, bool, error) {
			e, ok := obj.(*corev1.Event)
			if !ok {
				return nil, false, fmt.Errorf("a %T in the Events", obj)
			}
			row, keep := eventRow(cluster, e, nodes)
			return row, keep, nil
		},
	}
}

// runKube keeps a source's stream going until ctx ends, from rv (the
// stored resourceVersion; "" lists first), pausing with backoff between
// failed attempts.
func (a *Aggregator) runKube(ctx context.Context, s *kubeSource, rv string) {
	log := a.log.WithValues("cluster", s.cluster, "kind", s.kind)
	a.register(s.key())
	backoff := a.newBackoff()
	for ctx.Err() == nil {
		began := a.opts.Clock.Now()
		var err error
		rv, err = a.streamKube(ctx, s, rv)
		if ctx.Err() != nil {
			return
		}
		// The first failure settles the source too: its rows stay, stale,
		// and readiness does not wait on a cluster that is down.
		a.settle(s.key())
		a.send(ctx, update{src: s.key(), failed: fmt.Sprintf("cluster %s: %v", s.cluster, err)})
		if a.opts.Clock.Since(began) > healthyStream {
			backoff = a.newBackoff()
		}
		delay := backoff.Step()
		log.V(1).Info("Watch failed; watching again", "after", delay, "error", err)
		a.pause(ctx, delay)
	}
}

// expired says whether a resourceVersion or continue token is too old.
func expired(err error) bool {
	return apierrors.IsResourceExpired(err) || apierrors.IsGone(err)
}

// streamKube lists when rv is "", then watches from rv until the watch
// fails; it returns the resourceVersion to go on from.
func (a *Aggregator) streamKube(ctx context.Context, s *kubeSource, rv string) (string, error) {
	for {
		if rv == "" {
			var err error
			if rv, err = a.relist(ctx, s); err != nil {
				return "", err
			}
		}
		// Spread the watches' ends, as client-go's reflector does.
		timeout := int64(300 + rand.IntN(300)) //nolint:gosec // not a secret
		w, err := s.watch(ctx, metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true, TimeoutSeconds: &timeout})
		switch {
		case expired(err):
			a.log.V(1).Info("Stored resourceVersion too old; listing again", "cluster", s.cluster, "kind", s.kind, "resourceVersion", rv)
			rv = ""
			continue
		case err != nil:
			return rv, err
		}
		a.settle(s.key())
		a.send(ctx, update{src: s.key(), ok: true, seen: true})
		a.watching(s.key(), true)
		var events int
		rv, events, err = a.consume(ctx, s, w, rv)
		a.watching(s.key(), false)
		w.Stop()
		switch {
		case expired(err):
			rv = ""
		case err != nil:
			return rv, err
		case ctx.Err() != nil:
			return rv, nil
		case events == 0:
			// A watch closed without a single event or bookmark: let the
			// caller pause before the next, so a server that closes them at
			// once is not hammered.
			return rv, errors.New("the watch closed at once")
		}
	}
}

// consume writes a watch's events until it closes; it returns the last
// resourceVersion seen and how many events came.
func (a *Aggregator) consume(ctx context.Context, s *kubeSource, w watch.Interface, rv string) (string, int, error) {
	n := 0
	for {
		var (
			ev watch.Event
			ok bool
		)
		select {
		case <-ctx.Done():
			return rv, n, nil
		case ev, ok = <-w.ResultChan():
		}
		if !ok {
			return rv, n, nil
		}
		n++
		if ev.Type == watch.Error {
			return rv, n, apierrors.FromObject(ev.Object)
		}
		m, err := meta.Accessor(ev.Object)
		if err != nil {
			return rv, n, fmt.Errorf("reading a %s event: %w", s.kind, err)
		}
		rv = m.GetResourceVersion()
		eventsReceived.WithLabelValues(s.cluster, s.kind, string(ev.Type)).Inc()
		u := update{src: s.key(), rv: rv, seen: true}
		switch ev.Type {
		case watch.Added, watch.Modified:
			row, keep, err := s.row(ev.Object)
			if err != nil {
				return rv, n, err
			}
			if keep {
				u.rows = []any{row}
			}
		case watch.Deleted:
			u.deletes = []store.Key{{Kind: s.kind, Cluster: s.cluster, Namespace: m.GetNamespace(), Name: m.GetName()}}
		}
		a.send(ctx, u)
		if s.changed != nil && ev.Type != watch.Bookmark {
			s.changed()
		}
	}
}

// relist lists the source in pages, writing each as it comes; the rows of
// the source that the list did not write are deleted at its end. It
// returns the list's resourceVersion.
func (a *Aggregator) relist(ctx context.Context, s *kubeSource) (string, error) {
	a.send(ctx, update{src: s.key(), begin: true})
	opts := metav1.ListOptions{Limit: a.opts.PageSize}
	for {
		lctx, cancel := context.WithTimeout(ctx, a.opts.RequestTimeout)
		list, err := s.list(lctx, opts)
		cancel()
		if expired(err) && opts.Continue != "" {
			// The continue token expired mid-list: list again from the start.
			a.send(ctx, update{src: s.key(), begin: true})
			opts.Continue = ""
			continue
		}
		if err != nil {
			return "", err
		}
		lm, err := meta.ListAccessor(list)
		if err != nil {
			return "", fmt.Errorf("reading a list of %s: %w", s.kind, err)
		}
		var rows []any
		if err := meta.EachListItem(list, func(obj runtime.Object) error {
			row, keep, err := s.row(obj)
			if keep {
				rows = append(rows, row)
			}
			return err
		}); err != nil {
			return "", err
		}
		eventsReceived.WithLabelValues(s.cluster, s.kind, "LISTED").Add(float64(meta.LenList(list)))
		u := update{src: s.key(), rows: rows, seen: true, ok: true}
		if lm.GetContinue() == "" {
			u.end, u.rv = true, lm.GetResourceVersion()
			a.send(ctx, u)
			a.settle(s.key())
			if s.changed != nil {
				s.changed()
			}
			return lm.GetResourceVersion(), nil
		}
		a.send(ctx, u)
		opts.Continue = lm.GetContinue()
	}
}
