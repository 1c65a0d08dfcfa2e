// Package kueue names the Kueue objects that Strata's jobs platform writes
// and reads. Kueue (sigs.k8s.io/kueue, built by `make tools` from
// hack/tools/kueue) targets other k8s.io versions than Strata, so its Go
// packages are never imported: its objects are handled as unstructured, by
// the kinds and fields below, of the API version its release serves.
package kueue

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the Kueue API version Strata writes (v0.17 stores it).
var GroupVersion = schema.GroupVersion{Group: "kueue.x-k8s.io", Version: "v1beta2"}

// Kueue's kinds.
const (
	ResourceFlavorKind    = "ResourceFlavor"
	ClusterQueueKind      = "ClusterQueue"
	CohortKind            = "Cohort"
	LocalQueueKind        = "LocalQueue"
	WorkloadKind          = "Workload"
	AdmissionCheckKind    = "AdmissionCheck"
	MultiKueueConfigKind  = "MultiKueueConfig"
	MultiKueueClusterKind = "MultiKueueCluster"
)

// Namespace is where Kueue runs, in the hub and in every workload cluster,
// and where MultiKueue reads the workload clusters' kubeconfig Secrets.
const Namespace = "kueue-system"

// QueueNameLabel puts a Job in a LocalQueue (Kueue's label).
const QueueNameLabel = "kueue.x-k8s.io/queue-name"

// MultiKueueControllerName is the controller of MultiKueue's
// AdmissionCheck: the hub's Kueue sends the workloads that pass it to the
// workload clusters.
const MultiKueueControllerName = "kueue.x-k8s.io/multikueue"

// DispatcherName is Strata's MultiKueue dispatcher, set as the hub Kueue's
// multiKueue.dispatcherName: Kueue then sends a workload only to the
// clusters the dispatcher writes in its status.nominatedClusterNames.
const DispatcherName = "strata.dev/fleet-dispatcher"

// MultiKueueKubeconfigSecret is the Secret in Namespace of the hub that
// holds the kubeconfig (key "kubeconfig") the hub's Kueue reaches a
// workload cluster with, as that cluster's kueue-system/multikueue
// ServiceAccount.
func MultiKueueKubeconfigSecret(cluster string) string { return "multikueue-" + cluster }

// MultiKueueKubeconfigKey is the key of a MultiKueueKubeconfigSecret that
// holds the kubeconfig (the one MultiKueue reads).
const MultiKueueKubeconfigKey = "kubeconfig"

// GVK is the GroupVersionKind of a Kueue kind.
func GVK(kind string) schema.GroupVersionKind { return GroupVersion.WithKind(kind) }

// New is an empty object of a Kueue kind, named, for a client's Get, Patch
// or Create.
func New(kind, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(GVK(kind))
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

// NewList is an empty list of a Kueue kind, for a client's List.
func NewList(kind string) *unstructured.UnstructuredList {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(GroupVersion.WithKind(kind + "List"))
	return l
}
