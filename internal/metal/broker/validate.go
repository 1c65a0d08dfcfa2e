package broker

import (
	"bytes"
	"fmt"
	"net/url"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	certutil "k8s.io/client-go/util/cert"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// maxCABundleBytes bounds a join target's CA bundle: a few KiB in practice.
const maxCABundleBytes = 1 << 20

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
	if err := validateJoinCredential(field, jt); err != nil {
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

// validateJoinCredential checks what a machine joins with: an https API
// server, the CA bundle its certificate chains to and a bootstrap token.
// Nothing of more power is accepted: a kubeconfig (the field's old content)
// or a private key is refused by name, so that a caller that still sends
// one learns why.
func validateJoinCredential(field string, jt *brokerv1.JoinTarget) error {
	server := jt.GetApiServer()
	if server == "" {
		return invalid("%s.api_server is required: the https:// URL of the API server the machines join", field)
	}
	if u, err := url.Parse(server); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return invalid("%s.api_server %q is not an https://host[:port] URL", field, server)
	}
	ca := jt.GetCaBundle()
	switch {
	case len(ca) == 0:
		return invalid("%s.ca_bundle is required: the PEM CA bundle of the API server's serving certificate", field)
	case len(ca) > maxCABundleBytes:
		return invalid("%s.ca_bundle is %d bytes; at most %d are accepted", field, len(ca), maxCABundleBytes)
	case bytes.Contains(ca, []byte("PRIVATE KEY")):
		return invalid("%s.ca_bundle holds a private key: give only the CA certificates", field)
	}
	if _, err := certutil.ParseCertsPEM(ca); err != nil {
		return invalid("%s.ca_bundle is not a PEM bundle of certificates: %v", field, err)
	}
	token := jt.GetBootstrapToken()
	switch {
	case token == "":
		return invalid("%s.bootstrap_token is required: a bootstrap token (<token-id>.<token-secret>) of the cluster", field)
	case looksLikeKubeconfig(token):
		return invalid("%s.bootstrap_token is a kubeconfig: the broker takes only a bootstrap token (<token-id>.<token-secret>), never a kubeconfig", field)
	case !bootstraputil.IsValidBootstrapToken(token):
		// The token is not echoed: it may be a secret of another kind.
		return invalid("%s.bootstrap_token is not a bootstrap token: want <token-id>.<token-secret>, 6 and 16 characters of [a-z0-9]", field)
	}
	return nil
}

// looksLikeKubeconfig says whether s reads as a kubeconfig rather than a
// token.
func looksLikeKubeconfig(s string) bool {
	for _, marker := range []string{"apiVersion", "kind: Config", "clusters:", "users:", "client-key-data", "token:"} {
		if strings.Contains(s, marker) {
			return true
		}
	}
	return false
}
