package broker

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/tools/clientcmd"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// maxKubeconfigBytes bounds a bootstrap kubeconfig: a few KiB in practice.
const maxKubeconfigBytes = 1 << 20

// taintEffects are the effects a Node taint may have.
var taintEffects = []string{string(corev1.TaintEffectNoSchedule), string(corev1.TaintEffectPreferNoSchedule), string(corev1.TaintEffectNoExecute)}

// validateNodeConfig checks a node config: every Node carries it as the
// value of the fleet.strata.dev/node-config label, so it must be one.
func validateNodeConfig(field, v string) error {
	if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
		return invalid("%s %q must be usable as the value of Node label %s: %s", field, v, fleetv1alpha1.NodeConfigLabel, strings.Join(errs, "; "))
	}
	return nil
}

// validateJoinTarget checks a join target given under field (e.g.
// "pool.join_target"); nil is no join target and valid.
func validateJoinTarget(field string, jt *brokerv1.JoinTarget) error {
	if jt == nil {
		return nil
	}
	if jt.GetCluster() == "" {
		return invalid("%s.cluster is required: the workload cluster the pool's machines join", field)
	}
	if errs := validation.IsDNS1123Subdomain(jt.GetCluster()); len(errs) > 0 {
		return invalid("%s.cluster %q is not a cluster name: %s", field, jt.GetCluster(), strings.Join(errs, "; "))
	}
	if err := validateKubeconfig(field+".bootstrap_kubeconfig", jt.GetBootstrapKubeconfig()); err != nil {
		return err
	}
	for k, v := range jt.GetNodeLabels() {
		if errs := validation.IsQualifiedName(k); len(errs) > 0 {
			return invalid("%s.node_labels: %q is not a label key: %s", field, k, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
			return invalid("%s.node_labels[%q]: %q is not a label value: %s", field, k, v, strings.Join(errs, "; "))
		}
	}
	seen := map[[2]string]bool{}
	for i, t := range jt.GetNodeTaints() {
		at := fmt.Sprintf("%s.node_taints[%d]", field, i)
		if errs := validation.IsQualifiedName(t.GetKey()); len(errs) > 0 {
			return invalid("%s.key %q is not a taint key: %s", at, t.GetKey(), strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(t.GetValue()); len(errs) > 0 {
			return invalid("%s.value %q is not a taint value: %s", at, t.GetValue(), strings.Join(errs, "; "))
		}
		if !slices.Contains(taintEffects, t.GetEffect()) {
			return invalid("%s.effect %q is not one of %s", at, t.GetEffect(), strings.Join(taintEffects, ", "))
		}
		key := [2]string{t.GetKey(), t.GetEffect()}
		if seen[key] {
			return invalid("%s: taint %s:%s is given twice", at, t.GetKey(), t.GetEffect())
		}
		seen[key] = true
	}
	return nil
}

// validateKubeconfig checks that a kubeconfig parses and names a cluster and
// credentials a client can use, as a kubelet would need.
func validateKubeconfig(field string, raw []byte) error {
	if len(raw) == 0 {
		return invalid("%s is required: the kubeconfig the machines' kubelets register with", field)
	}
	if len(raw) > maxKubeconfigBytes {
		return invalid("%s is %d bytes; at most %d are accepted", field, len(raw), maxKubeconfigBytes)
	}
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return invalid("%s does not parse as a kubeconfig: %v", field, err)
	}
	if _, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig(); err != nil {
		return invalid("%s is not a usable kubeconfig: %v", field, err)
	}
	return nil
}
