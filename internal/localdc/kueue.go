package localdc

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

// ComponentKueue is Kueue's controller manager (bin/kueue, built from
// source by `make tools`), run by `strata up` for each cluster as
// kueue-<cluster>: on the hub it is the MultiKueue manager, on each
// workload cluster a worker.
const ComponentKueue = "kueue"

// Kueue's files in the binaries' directory, made by `make tools`: its
// controller manager, and its release manifests (config/default of its
// source at the pinned version, rendered by kubectl kustomize), from which
// the local datacenter takes its CRDs, RBAC and webhook configurations.
const (
	kueueBinary    = "kueue"
	kueueManifests = "kueue-manifests.yaml"
)

// The ServiceAccounts of kueue-system: the one Kueue runs as (named so by
// its release manifests), and the one the hub's Kueue acts as on each
// workload cluster (config/rbac/multikueue).
const (
	kueueServiceAccount      = "kueue-controller-manager"
	multiKueueServiceAccount = "multikueue"
)

// kueueServingCert is the directory of the PKI that holds the serving
// certificate of every Kueue process's webhook and metrics (for
// 127.0.0.1), issued by the local datacenter's CA; internalCertManagement
// is off.
const kueueServingCert = "kueue"

// kueueMetricsCertDirEnv names the metrics certificate's directory to
// bin/kueue. Kueue v0.17 hard-codes /etc/kueue/metrics/certs (a mount of
// its Deployment) when internalCertManagement is off, and exits when it is
// missing; `make tools` builds it with the variable read first.
const kueueMetricsCertDirEnv = "KUEUE_METRICS_CERT_DIR"

// kueueConfigAPIVersion is the version of Kueue's Configuration kind that
// the local datacenter writes (Kueue decodes it strictly).
const kueueConfigAPIVersion = "config.kueue.x-k8s.io/v1beta2"

// kueueFrameworks are the integrations the local Kueue manages: only
// batch/Job, whose API every cluster serves (the others need CRDs, such as
// JobSet's, that the local clusters do not have).
var kueueFrameworks = []string{"batch/job"}

// kueueConfiguration is the part of Kueue's Configuration
// (config.kueue.x-k8s.io/v1beta2, apis/config/v1beta2 of its source) that
// the local datacenter sets. Kueue's Go packages are not imported (they
// target other k8s.io versions), so the fields are named here; Kueue's
// strict decoding refuses any that is misspelt.
type kueueConfiguration struct {
	APIVersion                 string                      `json:"apiVersion"`
	Kind                       string                      `json:"kind"`
	Namespace                  string                      `json:"namespace"`
	Health                     kueueHealth                 `json:"health"`
	Metrics                    kueueMetrics                `json:"metrics"`
	Webhook                    kueueWebhook                `json:"webhook"`
	LeaderElection             kueueLeaderElection         `json:"leaderElection"`
	ManageJobsWithoutQueueName bool                        `json:"manageJobsWithoutQueueName"`
	InternalCertManagement     kueueInternalCertManagement `json:"internalCertManagement"`
	ClientConnection           kueueClientConnection       `json:"clientConnection"`
	Integrations               kueueIntegrations           `json:"integrations"`
	MultiKueue                 *kueueMultiKueue            `json:"multiKueue,omitempty"`
	FeatureGates               map[string]bool             `json:"featureGates,omitempty"`
}

type kueueHealth struct {
	HealthProbeBindAddress string `json:"healthProbeBindAddress"`
}

type kueueMetrics struct {
	BindAddress string `json:"bindAddress"`
}

type kueueWebhook struct {
	Host    string `json:"host"`
	Port    int    `json:"port"`
	CertDir string `json:"certDir"`
}

type kueueLeaderElection struct {
	LeaderElect       bool            `json:"leaderElect"`
	LeaseDuration     metav1.Duration `json:"leaseDuration"`
	RenewDeadline     metav1.Duration `json:"renewDeadline"`
	RetryPeriod       metav1.Duration `json:"retryPeriod"`
	ResourceLock      string          `json:"resourceLock"`
	ResourceName      string          `json:"resourceName"`
	ResourceNamespace string          `json:"resourceNamespace"`
}

type kueueInternalCertManagement struct {
	Enable bool `json:"enable"`
}

type kueueClientConnection struct {
	QPS   float32 `json:"qps"`
	Burst int32   `json:"burst"`
}

type kueueIntegrations struct {
	Frameworks []string `json:"frameworks"`
}

type kueueMultiKueue struct {
	DispatcherName string `json:"dispatcherName"`
}

// kueueLeaderElectionID is the Lease of Kueue's leader, in kueue-system
// (the name of its release manifests).
const kueueLeaderElectionID = "c1f6bfd2.kueue.x-k8s.io"

// kueueConfig is the configuration of the Kueue process of a cluster:
// loopback health, metrics and webhook ports, leader election with the
// local lease timings, the webhook's certificate from the home's PKI,
// batch/Job only and only Jobs that name a queue. On the hub it is the
// MultiKueue manager whose dispatcher is Strata's (kueue.DispatcherName),
// unless the datacenter runs one of Kueue's to compare (JobsDispatcher):
// Kueue sends a workload only to the clusters listed in its
// status.nominatedClusterNames, which Strata's dispatcher writes.
func kueueConfig(home string, p ComponentProcess, dispatcher configv1alpha1.JobsDispatcher) kueueConfiguration {
	c := kueueConfiguration{
		APIVersion: kueueConfigAPIVersion,
		Kind:       "Configuration",
		Namespace:  kueue.Namespace,
		Health:     kueueHealth{HealthProbeBindAddress: loopback(p.Ports.Health)},
		Metrics:    kueueMetrics{BindAddress: loopback(p.Ports.Metrics)},
		Webhook: kueueWebhook{
			Host: "127.0.0.1", Port: int(p.Ports.Webhook),
			CertDir: PKIPath(home, kueueServingCert),
		},
		LeaderElection: kueueLeaderElection{
			LeaderElect:   true,
			LeaseDuration: metav1.Duration{Duration: localLeaseDuration},
			RenewDeadline: metav1.Duration{Duration: localRenewDeadline},
			RetryPeriod:   metav1.Duration{Duration: localRetryPeriod},
			ResourceLock:  "leases",
			ResourceName:  kueueLeaderElectionID,
			// In a Pod it is the Pod's namespace; outside, it must be said.
			ResourceNamespace: kueue.Namespace,
		},
		ManageJobsWithoutQueueName: false,
		InternalCertManagement:     kueueInternalCertManagement{Enable: false},
		// Kueue's release defaults (50, 100).
		ClientConnection: kueueClientConnection{QPS: 50, Burst: 100},
		Integrations:     kueueIntegrations{Frameworks: kueueFrameworks},
		// The visibility API (pending workloads) is an aggregated API
		// server on a port of its own, with an APIService the local
		// clusters do not register: off.
		FeatureGates: map[string]bool{"VisibilityOnDemand": false},
	}
	if p.Cluster == HubName {
		c.MultiKueue = &kueueMultiKueue{DispatcherName: kueue.DispatcherNameOf(dispatcher)}
	}
	return c
}

// writeKueueConfig writes the Kueue process's configuration file and
// returns the process that runs bin/kueue with it, as kueue-system/
// kueue-controller-manager of its cluster.
func (r *Running) writeKueueConfig(p ComponentProcess) (Process, error) {
	raw, err := yaml.Marshal(kueueConfig(r.opts.Home, p, r.opts.JobsDispatcher))
	if err != nil {
		return Process{}, err
	}
	path := p.ConfigPath(r.opts.Home)
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return Process{}, err
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return Process{}, fmt.Errorf("writing the configuration of %s: %w", p.Name, err)
	}
	return Process{
		Name: p.Name, Path: filepath.Join(r.opts.BinDir, kueueBinary),
		Args: []string{"--config", path, "--kubeconfig", IdentityKubeconfigPath(r.opts.Home, p.identity())},
		// Its metrics server's certificate: the webhooks' (bin/kueue reads
		// the directory from this variable; see hack/tools/kueue/overlay.sh).
		Env: []string{kueueMetricsCertDirEnv + "=" + PKIPath(r.opts.Home, kueueServingCert)},
	}, nil
}

// readKueueManifests parses Kueue's rendered release manifests.
func readKueueManifests(binDir string) ([]*unstructured.Unstructured, error) {
	path := filepath.Join(binDir, kueueManifests)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading Kueue's manifests (run `make tools`): %w", err)
	}
	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		obj := &unstructured.Unstructured{}
		err := dec.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decoding %s: %w", path, err)
		}
		if len(obj.Object) > 0 {
			out = append(out, obj)
		}
	}
}

// kueueInstallKinds are the kinds of Kueue's manifests installed into a
// local cluster; its Deployment, Services, ConfigMap, the Secret of its
// internal certificates and the visibility API's APIServices are not: the
// process runs outside, with a configuration file and a certificate of the
// home.
var kueueInstallKinds = map[string]bool{
	"Namespace": true, "CustomResourceDefinition": true, "ServiceAccount": true,
	"ClusterRole": true, "ClusterRoleBinding": true, "Role": true, "RoleBinding": true,
	"MutatingWebhookConfiguration": true, "ValidatingWebhookConfiguration": true,
}

// kueueWebhookGroups are the API groups whose webhooks the local Kueue
// serves: its own objects' and the enabled frameworks' (batch/Job). The
// manifests also register webhooks for Pods, Deployments, StatefulSets and
// other frameworks; with their integrations off, each would put a call to
// Kueue (failurePolicy Fail) in the way of every Pod created, for nothing.
var kueueWebhookGroups = map[string]bool{"kueue.x-k8s.io": true, "batch": true}

// kueueObjects are the objects of Kueue's manifests to install into a
// cluster whose Kueue serves its webhooks at webhookURL (https://host:port,
// no path) with a certificate signed by caBundle: the services they name
// are replaced by that URL, in the webhook configurations and in the CRDs'
// conversion webhooks (v1beta1 <-> v1beta2, which Kueue serves at
// /convert).
func kueueObjects(manifests []*unstructured.Unstructured, webhookURL string, caBundle []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, m := range manifests {
		if !kueueInstallKinds[m.GetKind()] {
			continue
		}
		// The visibility API's reader binding lives in kube-system; the
		// visibility server is off.
		if ns := m.GetNamespace(); ns != "" && ns != kueue.Namespace {
			continue
		}
		o := m.DeepCopy()
		switch o.GetKind() {
		case "CustomResourceDefinition":
			if err := pointConversion(o, webhookURL, caBundle); err != nil {
				return nil, err
			}
		case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
			if err := pointWebhooks(o, webhookURL, caBundle); err != nil {
				return nil, err
			}
		}
		out = append(out, o)
	}
	return out, nil
}

// pointConversion makes a CRD's conversion webhook, if it has one, call
// webhookURL/convert.
func pointConversion(crd *unstructured.Unstructured, webhookURL string, caBundle []byte) error {
	strategy, _, _ := unstructured.NestedString(crd.Object, "spec", "conversion", "strategy")
	if strategy != "Webhook" {
		return nil
	}
	path, _, _ := unstructured.NestedString(crd.Object, "spec", "conversion", "webhook", "clientConfig", "service", "path")
	if path == "" {
		return fmt.Errorf("CRD %s: its conversion webhook names no service path", crd.GetName())
	}
	return unstructured.SetNestedMap(crd.Object, clientConfig(webhookURL+path, caBundle), "spec", "conversion", "webhook", "clientConfig")
}

// pointWebhooks keeps the webhooks of kueueWebhookGroups and makes each
// call webhookURL and its service's path.
func pointWebhooks(cfg *unstructured.Unstructured, webhookURL string, caBundle []byte) error {
	hooks, _, err := unstructured.NestedSlice(cfg.Object, "webhooks")
	if err != nil {
		return fmt.Errorf("%s %s: %w", cfg.GetKind(), cfg.GetName(), err)
	}
	kept := make([]any, 0, len(hooks))
	for _, h := range hooks {
		hook, ok := h.(map[string]any)
		if !ok || !webhookForGroups(hook, kueueWebhookGroups) {
			continue
		}
		path, _, _ := unstructured.NestedString(hook, "clientConfig", "service", "path")
		if path == "" {
			return fmt.Errorf("%s %s: webhook %v names no service path", cfg.GetKind(), cfg.GetName(), hook["name"])
		}
		hook["clientConfig"] = clientConfig(webhookURL+path, caBundle)
		kept = append(kept, hook)
	}
	return unstructured.SetNestedSlice(cfg.Object, kept, "webhooks")
}

// webhookForGroups says whether every rule of a webhook is about the groups.
func webhookForGroups(hook map[string]any, groups map[string]bool) bool {
	rules, _, _ := unstructured.NestedSlice(hook, "rules")
	if len(rules) == 0 {
		return false
	}
	for _, r := range rules {
		rule, _ := r.(map[string]any)
		gs, _, _ := unstructured.NestedStringSlice(rule, "apiGroups")
		for _, g := range gs {
			if !groups[g] {
				return false
			}
		}
	}
	return true
}

func clientConfig(url string, caBundle []byte) map[string]any {
	// Unstructured objects hold JSON values: the bundle goes as the base64
	// string it is serialized as.
	return map[string]any{"url": url, "caBundle": base64.StdEncoding.EncodeToString(caBundle)}
}

// kueueWebhookURL is where a cluster's API server reaches its Kueue.
func (d *Datacenter) kueueWebhookURL(cluster string) string {
	return "https://" + loopback(d.Processes[kueueProcessName(cluster)].Webhook)
}

func kueueProcessName(cluster string) string {
	return ComponentKueue + "-" + cluster
}

// kueueIdentity is the ServiceAccount Kueue runs as on a cluster.
func kueueIdentity(cluster string) Identity {
	return Identity{Cluster: cluster, Namespace: kueue.Namespace, ServiceAccount: kueueServiceAccount}
}

// multiKueueIdentity is the ServiceAccount the hub's Kueue acts as on a
// workload cluster.
func multiKueueIdentity(cluster string) Identity {
	return Identity{Cluster: cluster, Namespace: kueue.Namespace, ServiceAccount: multiKueueServiceAccount}
}

// isMultiKueueIdentity says whether id is a workload cluster's multikueue.
func isMultiKueueIdentity(id Identity) bool {
	return id.Cluster != HubName && id.Namespace == kueue.Namespace && id.ServiceAccount == multiKueueServiceAccount
}
