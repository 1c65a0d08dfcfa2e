package testutil

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// JoinCluster is an API server that machines join as kubelets do with TLS
// bootstrapping: bootstrap-token authentication, the Node authorizer and
// the NodeRestriction admission plugin, and a kube-controller-manager that
// approves and signs kubelet client certificates (csrapproving,
// csrsigning). envtest runs no controller-manager, so this starts one.
type JoinCluster struct {
	Env    *envtest.Environment
	Config *rest.Config
	// Kube is a client in system:masters.
	Kube kubernetes.Interface
	// Kubeconfig is that client's kubeconfig.
	Kubeconfig []byte
	// APIServer and CABundle are what a join target names.
	APIServer string
	CABundle  []byte
}

// StartJoinCluster starts a JoinCluster and stops it when t ends.
func StartJoinCluster(t testing.TB) *JoinCluster {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds the Kubernetes binaries into bin/")
	}
	dir := t.TempDir()
	caCert, caKey, caCertPEM := newSigningCA(t, dir)

	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(t), "config", "crd")},
		ErrorIfCRDPathMissing: true,
	}
	env.ControlPlane.GetAPIServer().Configure().
		Set("enable-bootstrap-token-auth", "true").
		Set("authorization-mode", "Node,RBAC").
		Set("enable-admission-plugins", "NodeRestriction")
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest from %s: %v", assets, err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	// The API server trusts the client certificates of envtest's CA; it
	// reloads its client CA file, so the controller-manager's signing CA
	// is added to it (a cluster's kubelets' CA is its client CA).
	clientCA := filepath.Join(env.ControlPlane.APIServer.CertDir, "client-cert-auth-ca.crt")
	have, err := os.ReadFile(clientCA)
	if err != nil {
		t.Fatalf("reading envtest's client CA: %v", err)
	}
	if err := os.WriteFile(clientCA, append(append(have, '\n'), caCertPEM...), 0o600); err != nil {
		t.Fatal(err)
	}

	kubeconfig := AdminKubeconfig(t, env)
	kubeconfigFile := filepath.Join(dir, "admin.kubeconfig")
	if err := os.WriteFile(kubeconfigFile, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	startControllerManager(t, assets, dir, kubeconfigFile)

	kube := kubernetes.NewForConfigOrDie(cfg)
	// What kubeadm binds on a production cluster: bootstrap tokens may ask
	// for kubelet client certificates, which csrapproving then approves.
	for name, role := range map[string]string{
		"strata:kubelet-bootstrap":          "system:node-bootstrapper",
		"strata:node-autoapprove-bootstrap": "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
	} {
		_, err := kube.RbacV1().ClusterRoleBindings().Create(t.Context(), &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "system:bootstrappers"}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("binding %s: %v", role, err)
		}
	}
	waitForClientCA(t, cfg, caCert, caKey)
	server := cfg.Host
	if !strings.HasPrefix(server, "https://") {
		server = "https://" + server
	}
	return &JoinCluster{Env: env, Config: cfg, Kube: kube, Kubeconfig: kubeconfig, APIServer: server, CABundle: cfg.CAData}
}

// StartJoinEnv is StartEnv for a test whose sim provisioner joins
// machines to the API server: a JoinCluster.
func StartJoinEnv(t testing.TB) (*envtest.Environment, *rest.Config) {
	t.Helper()
	c := StartJoinCluster(t)
	return c.Env, c.Config
}

// BootstrapToken creates a bootstrap token Secret that expires after ttl
// and returns the token.
func (c *JoinCluster) BootstrapToken(t testing.TB, ttl time.Duration) string {
	t.Helper()
	token, err := bootstraputil.GenerateBootstrapToken()
	if err != nil {
		t.Fatal(err)
	}
	id, secret, _ := bytes.Cut([]byte(token), []byte("."))
	_, err = c.Kube.CoreV1().Secrets(metav1.NamespaceSystem).Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: bootstraputil.BootstrapTokenSecretName(string(id))},
		Type:       corev1.SecretTypeBootstrapToken,
		StringData: map[string]string{
			bootstrapapi.BootstrapTokenIDKey:               string(id),
			bootstrapapi.BootstrapTokenSecretKey:           string(secret),
			bootstrapapi.BootstrapTokenExpirationKey:       time.Now().Add(ttl).UTC().Format(time.RFC3339),
			bootstrapapi.BootstrapTokenUsageAuthentication: "true",
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating a bootstrap token: %v", err)
	}
	return token
}

// newSigningCA writes the controller-manager's signing CA to dir.
func newSigningCA(t testing.TB, dir string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "strata-test-kubelet-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key, certPEM
}

// startControllerManager runs kube-controller-manager with the CSR
// controllers only, and stops it when t ends.
func startControllerManager(t testing.TB, assets, dir, kubeconfig string) {
	t.Helper()
	logFile, err := os.Create(filepath.Join(dir, "kube-controller-manager.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(assets, "kube-controller-manager"),
		"--kubeconfig="+kubeconfig, "--leader-elect=false", "--secure-port=0",
		"--controllers=csrapproving,csrsigning",
		// Each approval is a SubjectAccessReview and an update, each
		// signature an update: the default 20 qps would take a minute and
		// a half for a thousand machines.
		"--kube-api-qps=1000", "--kube-api-burst=2000",
		"--cluster-signing-cert-file="+filepath.Join(dir, "ca.crt"),
		"--cluster-signing-key-file="+filepath.Join(dir, "ca.key"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting kube-controller-manager: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logFile.Close()
		if t.Failed() {
			if out, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("kube-controller-manager's log:\n%s", tail(out, 4000))
			}
		}
	})
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// waitForClientCA waits until the API server authenticates a client
// certificate of the signing CA: it reloads its client CA file on its own
// time.
func waitForClientCA(t testing.TB, cfg *rest.Config, ca *x509.Certificate, caKey *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "strata-test-probe"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	probe := rest.AnonymousClientConfig(cfg)
	probe.CertData = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	probe.KeyData = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	kube := kubernetes.NewForConfigOrDie(probe)
	var last error
	err = wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		review, err := kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		if err != nil {
			last = err
			return false, nil
		}
		return review.Status.UserInfo.Username == "strata-test-probe", nil
	})
	if err != nil {
		t.Fatalf("the API server did not come to trust the signing CA: %v (last: %v)", err, last)
	}
}
