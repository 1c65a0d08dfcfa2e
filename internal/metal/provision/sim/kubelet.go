package sim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate/csr"

	"github.com/strata-dev/strata/internal/metal/provision"
)

// The sim's kubelets join as real ones do with TLS bootstrapping (kubeadm
// join): with the pool's bootstrap token, which may do no more than ask
// for a client certificate, each machine sends a certificate signing
// request for system:node:<name> in group system:nodes, with a key made in
// memory for it; the cluster's controller-manager approves it (csrapproving,
// for requests of system:bootstrappers) and signs it (csrsigning); the
// machine then writes its Node with that certificate. The Node authorizer
// and the NodeRestriction admission plugin confine it to its own Node.

// csrTimeout bounds the wait for the controller-manager to approve and sign
// a machine's certificate request.
const csrTimeout = 2 * time.Minute

// kubeletUsages are the key usages kubelets ask for with an ECDSA key.
var kubeletUsages = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}

// bootstrapKey identifies a target's bootstrap credential: one client per
// API server, CA bundle and token, so that a pool's thousand machines
// share one connection and a rotated token gets a client of its own.
func bootstrapKey(t provision.Target) [sha256.Size]byte {
	h := sha256.New()
	for _, part := range [][]byte{[]byte(t.APIServer), t.CABundle, []byte(t.BootstrapToken)} {
		_, _ = fmt.Fprintf(h, "%d:", len(part))
		_, _ = h.Write(part)
	}
	var key [sha256.Size]byte
	copy(key[:], h.Sum(nil))
	return key
}

// bootstrapConfig is the client configuration of a target's bootstrap token.
func bootstrapConfig(t provision.Target) (*rest.Config, error) {
	switch {
	case t.APIServer == "":
		return nil, errors.New("the join target names no API server")
	case len(t.CABundle) == 0:
		return nil, errors.New("the join target has no CA bundle")
	case t.BootstrapToken == "":
		return nil, errors.New("the join target has no bootstrap token: the pool controller has not handed one over yet")
	}
	return &rest.Config{
		Host: t.APIServer, BearerToken: t.BootstrapToken, TLSClientConfig: rest.TLSClientConfig{CAData: t.CABundle},
	}, nil
}

// tokenID is the public half of a bootstrap token, safe to show.
func tokenID(token string) string {
	id, _, _ := strings.Cut(token, ".")
	return id
}

// refused says whether err is the API server refusing the bootstrap
// token, and wraps it so that the machine's message says so.
func refused(err error, target provision.Target) error {
	if !apierrors.IsUnauthorized(err) {
		return err
	}
	return fmt.Errorf("%w: the API server of cluster %s refused bootstrap token %s: it expired, was revoked or is of another cluster (the pool controller hands the pool a new one): %w",
		provision.ErrBootstrapTokenRefused, target.Cluster, tokenID(target.BootstrapToken), err)
}

// nodeCredential asks the cluster for a client certificate of the machine's
// own, with the bootstrap client, and returns it with its key (PEM).
func nodeCredential(ctx context.Context, bootstrap kubernetes.Interface, node string, target provision.Target) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generating the key of Node %s: %w", node, err)
	}
	request, err := certutil.MakeCSR(key, &pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}}, nil, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("making the certificate request of Node %s: %w", node, err)
	}
	name, uid, err := csr.RequestCertificateWithContext(ctx, bootstrap, request, "", certificatesv1.KubeAPIServerClientKubeletSignerName, nil, kubeletUsages, key)
	if err != nil {
		return nil, nil, fmt.Errorf("requesting a client certificate for Node %s: %w", node, refused(err, target))
	}
	wctx, cancel := context.WithTimeout(ctx, csrTimeout)
	defer cancel()
	certPEM, err = csr.WaitForCertificate(wctx, bootstrap, name, uid)
	if err != nil {
		if ctx.Err() == nil && wctx.Err() != nil {
			return nil, nil, fmt.Errorf("certificate request %s of Node %s was not approved and signed within %s: the cluster's controller-manager must run csrapproving and csrsigning, and system:bootstrappers be bound to system:node-bootstrapper and system:certificates.k8s.io:certificatesigningrequests:nodeclient",
				name, node, csrTimeout)
		}
		return nil, nil, fmt.Errorf("waiting for certificate request %s of Node %s: %w", name, node, refused(err, target))
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the key of Node %s: %w", node, err)
	}
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// asNode runs fn with a client that authenticates as the Node, with a
// fresh certificate: a machine whose disk is new (a join, a reimage) has
// no credential left and bootstraps again. The key lives in memory only,
// for as long as fn runs.
func (p *Provisioner) asNode(ctx context.Context, c *cluster, node string, target provision.Target, fn func(kubernetes.Interface) error) error {
	certPEM, keyPEM, err := nodeCredential(ctx, c.kube, node, target)
	if err != nil {
		return err
	}
	cfg := &rest.Config{
		Host: target.APIServer, UserAgent: UserAgent,
		TLSClientConfig: rest.TLSClientConfig{CAData: target.CABundle, CertData: certPEM, KeyData: keyPEM},
		// Each real kubelet has its own connection and rate limit, as
		// this client has.
		QPS: 5, Burst: 10,
		// A Proxy makes client-go build a transport of this client's own:
		// otherwise it caches one per certificate for the life of the
		// process, a thousand for a thousand Nodes.
		Proxy: http.ProxyFromEnvironment,
	}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return fmt.Errorf("building the client of Node %s: %w", node, err)
	}
	// The machine's kubelet would keep its connection; the sim plays it
	// only to register, so it lets the connection go.
	defer httpClient.CloseIdleConnections()
	kube, err := kubernetes.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return fmt.Errorf("building the client of Node %s: %w", node, err)
	}
	return fn(kube)
}
