package localdc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeKwokKubeconfig writes a cluster's admin kubeconfig as kwokctl does:
// entries named kwok-<cluster>, certificates by path.
func writeKwokKubeconfig(t *testing.T, home, cluster string, port int) {
	t.Helper()
	name := "kwok-" + cluster
	pki := filepath.Join(ClusterDir(home, cluster), "pki")
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: fmt.Sprintf("https://127.0.0.1:%d", port), CertificateAuthority: filepath.Join(pki, "ca.crt")}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificate: filepath.Join(pki, "admin.crt"), ClientKey: filepath.Join(pki, "admin.key")}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	cfg.CurrentContext = name
	if err := os.MkdirAll(ClusterDir(home, cluster), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := clientcmd.WriteToFile(*cfg, KubeconfigPath(home, cluster)); err != nil {
		t.Fatal(err)
	}
}

func TestAddWorkloadContexts(t *testing.T) {
	dc := &Datacenter{Clusters: []ClusterInfo{{Name: HubName}, {Name: "workload-1"}, {Name: "workload-2"}}}
	tests := []struct {
		name     string
		clusters []string // whose kubeconfigs exist
		// contexts: context -> cluster entry, user entry, server
		want    map[string][3]string
		wantErr string
	}{
		{
			name:     "a context per workload cluster, named after it, the hub current",
			clusters: []string{HubName, "workload-1", "workload-2"},
			want: map[string][3]string{
				"kwok-hub":   {"kwok-hub", "kwok-hub", "https://127.0.0.1:6440"},
				"workload-1": {"kwok-workload-1", "kwok-workload-1", "https://127.0.0.1:6441"},
				"workload-2": {"kwok-workload-2", "kwok-workload-2", "https://127.0.0.1:6442"},
			},
		},
		{
			name:     "a missing workload cluster kubeconfig is named",
			clusters: []string{HubName, "workload-1"},
			wantErr:  "reading the kubeconfig of cluster workload-2: ",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			for i, c := range tc.clusters {
				writeKwokKubeconfig(t, home, c, 6440+i)
			}
			// Every start adds them again: the second is the same.
			for range 2 {
				err := addWorkloadContexts(home, dc)
				if tc.wantErr != "" {
					if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
						t.Fatalf("error = %v, want one starting %q", err, tc.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			got, err := clientcmd.LoadFromFile(KubeconfigPath(home, HubName))
			if err != nil {
				t.Fatal(err)
			}
			if got.CurrentContext != "kwok-hub" {
				t.Errorf("current context = %q, want the hub's, kwok-hub", got.CurrentContext)
			}
			contexts := map[string][3]string{}
			for name, c := range got.Contexts {
				contexts[name] = [3]string{c.Cluster, c.AuthInfo, got.Clusters[c.Cluster].Server}
			}
			if diff := cmp.Diff(tc.want, contexts); diff != "" {
				t.Errorf("contexts (-want +got):\n%s", diff)
			}
			if key := got.AuthInfos["kwok-workload-1"].ClientKey; key != filepath.Join(ClusterDir(home, "workload-1"), "pki", "admin.key") {
				t.Errorf("workload-1's client key = %q, want its admin key", key)
			}
		})
	}
}
