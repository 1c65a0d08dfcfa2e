package testutil

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// RepoRoot is the root of the strata repository.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the repository root")
	}
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// StartEnv starts a real kube-apiserver and etcd from the binaries built by
// `make tools` (KUBEBUILDER_ASSETS), with Strata's generated CRDs installed,
// and stops them when the test ends.
func StartEnv(t testing.TB) (*envtest.Environment, *rest.Config) {
	t.Helper()
	return startEnv(t, false)
}

// StartEnvWithKueue is StartEnv with Kueue's CRDs installed too (from
// bin/kueue-crds, which `make tools` copies from Kueue's source), and Jobs
// that may be gangs (EnableJobGangs), for the jobs platform's tests. Kueue
// itself does not run.
func StartEnvWithKueue(t testing.TB) (*envtest.Environment, *rest.Config) {
	t.Helper()
	return startEnv(t, true)
}

func startEnv(t testing.TB, withKueue bool) (*envtest.Environment, *rest.Config) {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Fatal("KUBEBUILDER_ASSETS is not set: run the tests with `make test`, which builds the Kubernetes binaries into bin/")
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(t), "config", "crd")},
		ErrorIfCRDPathMissing: true,
	}
	if withKueue {
		env.CRDDirectoryPaths = append(env.CRDDirectoryPaths, filepath.Join(assets, "kueue-crds"))
		EnableJobGangs(env)
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest from %s: %v", assets, err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	return env, cfg
}

// EnableJobGangs configures env's API server as the local clusters'
// (internal/localdc/kwok.go): Jobs may be gangs (spec.scheduling), with the
// scheduling.k8s.io/v1beta1 Workload and PodGroup API.
func EnableJobGangs(env *envtest.Environment) {
	env.ControlPlane.GetAPIServer().Configure().
		Set("feature-gates", "GenericWorkload=true,WorkloadWithJob=true").
		Set("runtime-config", "scheduling.k8s.io/v1beta1=true")
}

// StartWorkloadEnv starts an API server as a workload cluster (with Kueue's
// CRDs when withKueue) and registers it on the hub as the hub's controllers
// find one: a Cluster named name whose kubeconfig, a system:masters
// user's, is the Secret name-kubeconfig in secretNamespace. It returns the
// cluster's config and that kubeconfig.
func StartWorkloadEnv(t testing.TB, hub client.Client, name, secretNamespace string, withKueue bool) (*rest.Config, []byte) {
	t.Helper()
	env, cfg := startEnv(t, withKueue)
	kubeconfig := AdminKubeconfig(t, env)
	MustCreate(t, hub, MakeSecret(secretNamespace, name+"-kubeconfig", "kubeconfig", kubeconfig))
	MustCreate(t, hub, MakeCluster(name, secretNamespace).Obj())
	return cfg, kubeconfig
}

// AdminKubeconfig is a kubeconfig of env for a user in system:masters, for
// a test of a command that reads one (--kubeconfig, --hub-kubeconfig).
func AdminKubeconfig(t testing.TB, env *envtest.Environment) []byte {
	t.Helper()
	admin, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	return kubeconfig
}
