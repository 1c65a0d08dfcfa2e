package localdc

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/strata-dev/strata/internal/cli/globals"
	"github.com/strata-dev/strata/internal/localdc"
)

// stoppedHome writes a home whose datacenter is stopped: its clusters have no
// running component and nothing listens on the broker's port.
func stoppedHome(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	brokerPort := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "kind: LocalDatacenter\nkubernetesVersion: v1.37.1\nbrokerPort: %d\nbrokerMetricsPort: 1\nclusters:\n", brokerPort)
	for i, name := range []string{"hub", "workload-1"} {
		p := 10 + 10*i
		fmt.Fprintf(&b, "- name: %s\n  ports: {kubeApiserver: %d, etcd: %d, etcdPeer: %d, kubeControllerManager: %d, kubeScheduler: %d, kwokController: %d}\n",
			name, p, p+1, p+2, p+3, p+4, p+5)
	}
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "datacenter.yaml"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return home
}

func execute(t *testing.T, cmd *cobra.Command, args ...string) (string, error) {
	t.Helper()
	// As the root command does: the error is returned, not printed.
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(t.Context())
	return out.String(), err
}

// `strata status` prints what it found in every format, and exits non-zero
// when anything is not ready.
func TestStatus(t *testing.T) {
	home := stoppedHome(t)
	wantErr := "the local datacenter is not ready: cluster hub (stopped: run `strata up`); " +
		"cluster workload-1 (stopped: run `strata up`); the Compute Broker (not reachable: run `strata up`); " +
		"the component processes (none running: run `strata up`)"
	for _, output := range []string{"yaml", "json", "table"} {
		t.Run(output, func(t *testing.T) {
			out, err := execute(t, NewStatusCommand(&globals.Flags{Home: home}), "-o", output)
			if diff := cmp.Diff(wantErr, fmt.Sprint(err)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if output == "table" {
				var rows []string
				table, _, _ := strings.Cut(out, "\n\n") // the broker's line follows
				for _, line := range strings.Split(table, "\n") {
					if f := strings.Fields(line); len(f) > 3 {
						rows = append(rows, strings.Join(f[:3], " "))
					}
				}
				if diff := cmp.Diff([]string{"CLUSTER ROLE READY", "hub hub False", "workload-1 workload False"}, rows); diff != "" {
					t.Errorf("table rows (-want +got):\n%s\n%s", diff, out)
				}
				return
			}
			var state localdc.DatacenterState
			if err := yaml.UnmarshalStrict([]byte(out), &state); err != nil {
				t.Fatalf("-o %s printed no DatacenterState (%v):\n%s", output, err, out)
			}
			var names []string
			for _, c := range state.Clusters {
				names = append(names, fmt.Sprintf("%s ready=%t", c.Name, c.Ready))
			}
			if diff := cmp.Diff([]string{"hub ready=false", "workload-1 ready=false"}, names); diff != "" {
				t.Errorf("clusters (-want +got):\n%s", diff)
			}
			names = nil
			for _, c := range state.Components {
				names = append(names, fmt.Sprintf("%s alive=%t ready=%t", c.Name, c.Alive, c.Ready))
			}
			want := []string{"broker-1 alive=false ready=false", "hub-1 alive=false ready=false", "aggregator-1 alive=false ready=false", "console alive=false ready=false", "apps-workload-1-1 alive=false ready=false",
				"webhook-hub alive=false ready=false", "webhook-workload-1 alive=false ready=false"}
			if diff := cmp.Diff(want, names); diff != "" {
				t.Errorf("component processes (-want +got):\n%s", diff)
			}
		})
	}
	_, err := execute(t, NewStatusCommand(&globals.Flags{Home: home}), "-o", "xml")
	if want := `--output must be table, json or yaml, not "xml"`; fmt.Sprint(err) != want {
		t.Errorf("-o xml: %v, want %s", err, want)
	}
}

// `strata down` of a home that does not exist needs no binaries.
func TestDownWithoutDatacenter(t *testing.T) {
	home := filepath.Join(t.TempDir(), "nothing")
	out, err := execute(t, NewDownCommand(&globals.Flags{Home: home, BinDir: t.TempDir()}))
	if err != nil {
		t.Fatal(err)
	}
	if want := "No local datacenter in " + home + ": nothing to remove.\n"; out != want {
		t.Errorf("strata down printed %q, want %q", out, want)
	}
}
