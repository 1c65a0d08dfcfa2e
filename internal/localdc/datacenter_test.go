package localdc

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestNewDatacenterRoundTrip(t *testing.T) {
	home := t.TempDir()
	dc, err := newDatacenter("v1.37.1", 3)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range dc.Clusters {
		names = append(names, c.Name)
	}
	if got, want := strings.Join(names, ","), "hub,workload-1,workload-2,workload-3"; got != want {
		t.Errorf("clusters = %s, want %s", got, want)
	}
	if err := dc.save(home); err != nil {
		t.Fatal(err)
	}
	loaded, err := loadDatacenter(home)
	if err != nil {
		t.Fatalf("loading a saved datacenter: %v", err)
	}
	if len(loaded.WorkloadClusters()) != 3 || loaded.Clusters[2].Ports != dc.Clusters[2].Ports {
		t.Errorf("loaded %+v, saved %+v", loaded, dc)
	}
}

func TestLoadDatacenterErrors(t *testing.T) {
	valid, err := newDatacenter("v1.37.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	dup := *valid
	dup.Clusters = append([]ClusterInfo(nil), valid.Clusters...)
	dup.Clusters[1].Ports.Etcd = dup.Clusters[0].Ports.KubeAPIServer
	// Found by FuzzLoadDatacenter: a cluster name is a directory of the home.
	outside := *valid
	outside.Clusters = append([]ClusterInfo(nil), valid.Clusters...)
	outside.Clusters[1].Name = "../../etc"
	twice := *valid
	twice.Clusters = append([]ClusterInfo(nil), valid.Clusters...)
	twice.Clusters[1].Name = HubName

	cases := map[string]struct {
		content string // "" means no file
		want    string
	}{
		"no file":           {want: "no local datacenter"},
		"not yaml":          {content: "{{{", want: "is not a strata datacenter file"},
		"unknown field":     {content: "kind: LocalDatacenter\nsurprise: 1\n", want: "is not a strata datacenter file"},
		"another kind":      {content: "kind: Something\nkubernetesVersion: v1\n", want: `kind is "Something"`},
		"no clusters":       {content: "kind: LocalDatacenter\nkubernetesVersion: v1.37.1\n", want: "clusters must list the hub first"},
		"port given twice":  {content: mustYAML(t, &dup), want: "is given to both hub/kube-apiserver and workload-1/etcd"},
		"a path for a name": {content: mustYAML(t, &outside), want: `clusters[1]: name "../../etc" is not a DNS label`},
		"a cluster twice":   {content: mustYAML(t, &twice), want: `clusters[1]: cluster "hub" is listed twice`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			home := t.TempDir()
			if tc.content != "" {
				if err := os.WriteFile(filepath.Join(home, stateFile), []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := loadDatacenter(home)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("loadDatacenter = %v, want an error containing %q", err, tc.want)
			}
			if name == "no file" && !errors.Is(err, ErrNoDatacenter) {
				t.Errorf("error %v is not ErrNoDatacenter", err)
			}
		})
	}
}

func TestKwokctlConfig(t *testing.T) {
	c := ClusterInfo{Name: "hub", Ports: Ports{KubeAPIServer: 1, Etcd: 2, EtcdPeer: 3, KubeControllerManager: 4, KubeScheduler: 5, KwokController: 6}}
	raw, err := kwokctlConfig("/opt/bin", "/home/dc", "/home/dc/kwok/audit-policy.yaml", "v1.37.1", c, true)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		APIVersion string         `json:"apiVersion"`
		Kind       string         `json:"kind"`
		Options    map[string]any `json:"options"`
		Patches    []struct {
			Name      string     `json:"name"`
			ExtraArgs []extraArg `json:"extraArgs"`
		} `json:"componentsPatches"`
	}
	if err := yaml.UnmarshalStrict(raw, &cfg); err != nil {
		t.Fatalf("config is not valid YAML: %v\n%s", err, raw)
	}
	if cfg.Kind != "KwokctlConfiguration" || cfg.Options["runtime"] != "binary" || cfg.Options["bindAddress"] != "127.0.0.1" {
		t.Errorf("kind/runtime/bindAddress wrong:\n%s", raw)
	}
	if cfg.Options["etcdBinary"] != "/opt/bin/etcd" || cfg.Options["kubeApiserverPort"] != float64(1) || cfg.Options["kwokControllerPort"] != float64(6) {
		t.Errorf("binaries or ports not pinned:\n%s", raw)
	}
	args := map[string]extraArg{}
	for _, p := range cfg.Patches {
		for _, a := range p.ExtraArgs {
			args[p.Name+"/"+a.Key] = a
		}
	}
	for _, key := range []string{"kube-apiserver/max-requests-inflight", "kube-controller-manager/kube-api-qps", "kube-scheduler/kube-api-qps", "kwok-controller/cidr"} {
		if args[key].Value == "" {
			t.Errorf("no extra arg %s in:\n%s", key, raw)
		}
	}
	// kwok leaves the Nodes of faulted machines alone: kwokctl's
	// --manage-all-nodes=true is replaced, since it excludes a selector.
	if a := args["kwok-controller/manage-all-nodes"]; a.Value != "false" || !a.Override {
		t.Errorf("kwok manage-all-nodes = %+v, want false, overriding kwokctl's", a)
	}
	if a := args["kwok-controller/manage-nodes-with-label-selector"]; a.Value != "!sim.strata.dev/fault" || a.Override {
		t.Errorf("kwok node selector = %+v, want !sim.strata.dev/fault, added", a)
	}
	// Nodes join as kubelets do, confined to their own Node, and audited.
	for key, want := range map[string]string{
		"kube-apiserver/enable-bootstrap-token-auth":        "true",
		"kube-apiserver/enable-admission-plugins":           "NodeRestriction",
		"kube-controller-manager/controllers":               "*,tokencleaner",
		"kube-controller-manager/cluster-signing-cert-file": "/home/dc/kwok/clusters/hub/pki/ca.crt",
		"kube-controller-manager/cluster-signing-key-file":  "/home/dc/kwok/clusters/hub/pki/ca.key",
	} {
		if a := args[key]; a.Value != want || a.Override {
			t.Errorf("extra arg %s = %+v, want %q, added", key, a, want)
		}
	}
	if cfg.Options["kubeAuditPolicy"] != "/home/dc/kwok/audit-policy.yaml" {
		t.Errorf("kubeAuditPolicy = %v, want the policy under the home", cfg.Options["kubeAuditPolicy"])
	}
}

// TestAuditPolicy: the audit policy parses and records a Node's writes by
// its own identity, and not kwok's status heartbeats.
func TestAuditPolicy(t *testing.T) {
	// The fields of audit.k8s.io/v1 Policy that the policy uses.
	var policy struct {
		APIVersion string   `json:"apiVersion"`
		Kind       string   `json:"kind"`
		OmitStages []string `json:"omitStages"`
		Rules      []struct {
			Level      string   `json:"level"`
			UserGroups []string `json:"userGroups"`
			Namespaces []string `json:"namespaces"`
			Verbs      []string `json:"verbs"`
			Resources  []struct {
				Group     string   `json:"group"`
				Resources []string `json:"resources"`
			} `json:"resources"`
		} `json:"rules"`
	}
	if err := yaml.UnmarshalStrict(auditPolicy, &policy); err != nil {
		t.Fatalf("audit policy: %v", err)
	}
	if policy.Kind != "Policy" || len(policy.Rules) == 0 || policy.Rules[len(policy.Rules)-1].Level != "None" {
		t.Fatalf("audit policy = %+v, want rules ending in None", policy)
	}
	nodeRule := policy.Rules[0]
	if nodeRule.Level != "Metadata" || !slices.Contains(nodeRule.UserGroups, "system:nodes") || !slices.Contains(nodeRule.Verbs, "create") {
		t.Errorf("first rule = %+v, want Metadata for system:nodes' writes", nodeRule)
	}
	for _, r := range policy.Rules {
		for _, g := range r.Resources {
			if slices.Contains(g.Resources, "nodes/status") && r.Level != "None" {
				t.Errorf("rule %+v records nodes/status: every heartbeat of every Node", r)
			}
		}
	}
}

func mustYAML(t *testing.T, v any) string {
	t.Helper()
	raw, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
