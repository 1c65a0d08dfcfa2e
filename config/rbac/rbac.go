// Package rbac embeds the RBAC of the release manifests (ServiceAccounts,
// ClusterRoles generated from the +kubebuilder:rbac markers, bindings,
// leader-election Roles), so that `strata up` gives each component on the
// local clusters exactly the rights it has in production.
package rbac

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// FS holds the RBAC manifests of this folder, one folder per identity.
//
//go:embed */*.yaml
var FS embed.FS

// Hub lists the folders applied to the hub: the hub's controllers, the
// guardrails' webhook, the fleet aggregator and the console (the broker
// needs no Kubernetes API).
var Hub = []string{"hub", "webhook", "aggregator", "console"}

// Workload lists the folders applied to each workload cluster: the app
// controllers, the guardrails' webhook, the identities the hub's
// controllers and the fleet aggregator use there, and the bindings of kubelet TLS bootstrapping
// (a kubeadm cluster has them already).
var Workload = []string{"apps", "webhook", "hub-remote", "aggregator-remote", "kubelet-bootstrap"}

// MultiKueueWorker lists the folders applied to each workload cluster that
// runs Kueue: the identity the hub's Kueue (the MultiKueue manager) acts as
// there, in Kueue's namespace, kueue-system, which Kueue's install makes.
var MultiKueueWorker = []string{"multikueue"}

// Objects reads the objects of the folders' manifests, in order; the
// kustomization files are not objects and are left out.
func Objects(dirs ...string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, dir := range dirs {
		files, err := fs.Glob(FS, path.Join(dir, "*.yaml"))
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("no RBAC manifests in config/rbac/%s", dir)
		}
		for _, f := range files {
			if path.Base(f) == "kustomization.yaml" {
				continue
			}
			objs, err := decode(f)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
		}
	}
	return out, nil
}

func decode(name string) ([]*unstructured.Unstructured, error) {
	raw, err := fs.ReadFile(FS, name)
	if err != nil {
		return nil, err
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
			return nil, fmt.Errorf("decoding config/rbac/%s: %w", name, err)
		}
		if len(obj.Object) == 0 {
			continue // an empty document
		}
		out = append(out, obj)
	}
}
