package refstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// statefulApps is the StatefulApp resource.
var statefulApps = appsv1alpha1.GroupVersion.WithResource("statefulapps")

// Watcher feeds a store from the app's pods in the workload cluster: the
// pods labelled apps.strata.dev/stateful-app=<app> in the namespace, their
// PersistentVolumeClaims, and the StatefulApp's spec.replicas.
type Watcher struct {
	// Client reads pods and claims.
	Client kubernetes.Interface
	// Dynamic reads the StatefulApp; nil leaves the number of pods to the
	// pods' names.
	Dynamic dynamic.Interface
	// Namespace and App name the StatefulApp.
	Namespace, App string
	// Store is told the pods.
	Store interface{ Observe(Snapshot) }
	// Logger logs what the watcher does.
	Logger logr.Logger
}

// Run watches until ctx ends, telling the store the pods after every
// change.
func (w *Watcher) Run(ctx context.Context) error {
	selector := labels.SelectorFromSet(labels.Set{appsv1alpha1.StatefulAppLabel: w.App}).String()
	podFactory := informers.NewSharedInformerFactoryWithOptions(w.Client, 0, informers.WithNamespace(w.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	claimFactory := informers.NewSharedInformerFactoryWithOptions(w.Client, 0, informers.WithNamespace(w.Namespace))
	pods := podFactory.Core().V1().Pods()
	claims := claimFactory.Core().V1().PersistentVolumeClaims()

	changed := make(chan struct{}, 1)
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify(changed) },
		UpdateFunc: func(any, any) { notify(changed) },
		DeleteFunc: func(any) { notify(changed) },
	}
	if _, err := pods.Informer().AddEventHandler(handler); err != nil {
		return fmt.Errorf("watching pods: %w", err)
	}
	if _, err := claims.Informer().AddEventHandler(handler); err != nil {
		return fmt.Errorf("watching claims: %w", err)
	}
	var app cache.GenericLister
	if w.Dynamic != nil {
		var err error
		if app, err = w.watchApp(ctx, handler); err != nil {
			return err
		}
	}
	podFactory.Start(ctx.Done())
	claimFactory.Start(ctx.Done())
	defer podFactory.Shutdown()
	defer claimFactory.Shutdown()
	w.Logger.Info("Watching the pods of the StatefulApp", "namespace", w.Namespace, "app", w.App, "selector", selector)
	if !cache.WaitForCacheSync(ctx.Done(), pods.Informer().HasSynced, claims.Informer().HasSynced) {
		return nil // ctx ended
	}
	for {
		podList, err := pods.Lister().Pods(w.Namespace).List(labels.Everything())
		if err != nil {
			return fmt.Errorf("listing pods: %w", err)
		}
		claimList, err := claims.Lister().PersistentVolumeClaims(w.Namespace).List(labels.Everything())
		if err != nil {
			return fmt.Errorf("listing claims: %w", err)
		}
		w.Store.Observe(BuildSnapshot(w.App, podList, claimList, replicasOf(app, w.Namespace, w.App)))
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// watchApp watches the StatefulApp when its API is installed.
func (w *Watcher) watchApp(ctx context.Context, handler cache.ResourceEventHandler) (cache.GenericLister, error) {
	resources, err := w.Client.Discovery().ServerResourcesForGroupVersion(appsv1alpha1.GroupVersion.String())
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("looking for the StatefulApp API: %w", err)
	}
	if err != nil || !slices.ContainsFunc(resources.APIResources, func(r metav1.APIResource) bool { return r.Name == statefulApps.Resource }) {
		w.Logger.Info("The StatefulApp API is not installed: shards spread over the highest pod ordinal seen")
		return nil, nil
	}
	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(w.Dynamic, 0, w.Namespace, func(o *metav1.ListOptions) {
		o.FieldSelector = fields.OneTermEqualSelector("metadata.name", w.App).String()
	})
	inf := factory.ForResource(statefulApps)
	if _, err := inf.Informer().AddEventHandler(handler); err != nil {
		return nil, fmt.Errorf("watching the StatefulApp: %w", err)
	}
	factory.Start(ctx.Done())
	context.AfterFunc(ctx, factory.Shutdown)
	cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced)
	return inf.Lister(), nil
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// replicasOf reads the StatefulApp's spec.replicas, nil when unknown.
func replicasOf(lister cache.GenericLister, namespace, name string) *int32 {
	if lister == nil {
		return nil
	}
	obj, err := lister.ByNamespace(namespace).Get(name)
	if err != nil {
		return nil
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	n, found, err := unstructured.NestedInt64(u.Object, "spec", "replicas")
	if !found || err != nil || n < 0 || n > 1000 {
		return nil
	}
	r := int32(n)
	return &r
}

// BuildSnapshot says what the store needs of the app's pods: which are up
// (Running, Ready, not terminating, on a claim that exists) and on which
// volume (claim name and UID: a claim deleted and made again is a new,
// empty volume). Pods not named <app>-<ordinal> are left out.
func BuildSnapshot(app string, pods []*corev1.Pod, claims []*corev1.PersistentVolumeClaim, replicas *int32) Snapshot {
	byName := make(map[string]*corev1.PersistentVolumeClaim, len(claims))
	for _, c := range claims {
		byName[c.Name] = c
	}
	ordinals := &Store{opts: Options{App: app}}
	snap := Snapshot{Replicas: replicas}
	for _, pod := range pods {
		ord, ok := ordinals.Ordinal(pod.Name)
		if !ok {
			continue
		}
		p := Pod{Name: pod.Name, Ordinal: ord, Node: pod.Spec.NodeName, StopApproved: stopApproval(pod)}
		p.Volume, p.Why = volumeOf(pod, byName)
		switch {
		case pod.DeletionTimestamp != nil:
			p.Why = "terminating"
		case pod.Status.Phase != corev1.PodRunning:
			p.Why = string(pod.Status.Phase)
			if p.Why == "" {
				p.Why = string(corev1.PodPending)
			}
		case !podReady(pod):
			p.Why = "not Ready"
		}
		p.Up = p.Why == ""
		if !p.Up {
			p.Volume = ""
		}
		snap.Pods = append(snap.Pods, p)
	}
	slices.SortFunc(snap.Pods, func(a, b Pod) int { return a.Ordinal - b.Ordinal })
	return snap
}

// volumeOf identifies the pod's data volume: its claim (the volume named
// "data", else the first claim). A pod without a claim keeps its data only
// for its own life (its UID).
func volumeOf(pod *corev1.Pod, claims map[string]*corev1.PersistentVolumeClaim) (key, why string) {
	var claimName string
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && (claimName == "" || v.Name == "data") {
			claimName = v.PersistentVolumeClaim.ClaimName
		}
	}
	if claimName == "" {
		return "pod/" + pod.Name + "/" + string(pod.UID), ""
	}
	c := claims[claimName]
	if c == nil || c.UID == "" {
		return "", "waiting for claim " + claimName
	}
	return "claim/" + claimName + "/" + string(c.UID), ""
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// stopApproval parses the stop-approved annotation,
// "<operation-id>@<deadline RFC3339>".
func stopApproval(pod *corev1.Pod) *StopApproval {
	v, ok := pod.Annotations[appsv1alpha1.StopApprovedAnnotation]
	if !ok {
		return nil
	}
	i := strings.LastIndex(v, "@")
	if i <= 0 {
		return nil
	}
	deadline, err := time.Parse(time.RFC3339, v[i+1:])
	if err != nil {
		return nil
	}
	return &StopApproval{OperationID: v[:i], Deadline: deadline}
}
