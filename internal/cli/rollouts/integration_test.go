package rollouts

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cli/globals"
	"github.com/strata-dev/strata/internal/cli/hubcli"
	"github.com/strata-dev/strata/internal/testutil"
)

// TestCommands runs `strata rollouts` against a real hub (envtest): create
// says which Pools must state the node config and never changes a Pool;
// resume of a rollout halted by failed machines records, in its spec, that
// a person tolerates them.
func TestCommands(t *testing.T) {
	env, cfg := testutil.StartEnv(t)
	hub, err := hubcli.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "hub.kubeconfig")
	if err := os.WriteFile(kubeconfig, testutil.AdminKubeconfig(t, env), 0o600); err != nil {
		t.Fatal(err)
	}
	strata := func(args ...string) (string, error) {
		cmd := NewCommand(&globals.Flags{Home: t.TempDir()})
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(append([]string{"--hub-kubeconfig", kubeconfig}, args...))
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.ExecuteContext(t.Context())
		return out.String(), err
	}
	web := testutil.MakePool("web", "workload-1", 10).Obj()
	web.Spec.NodeConfig = "v1"
	testutil.MustCreate(t, hub, web)
	api := testutil.MakePool("api", "workload-1", 10).Obj()
	api.Spec.NodeConfig = "v2"
	testutil.MustCreate(t, hub, api)

	t.Run("create names the pools that state another node config, and leaves them alone", func(t *testing.T) {
		before := &fleetv1alpha1.Pool{}
		if err := hub.Get(t.Context(), client.ObjectKey{Name: "web"}, before); err != nil {
			t.Fatal(err)
		}
		out, err := strata("create", "v2", "--pools", "web,api", "--node-config", "v2", "--tolerated-failures", "1")
		if err != nil {
			t.Fatalf("create: %v\n%s", err, out)
		}
		for _, want := range []string{
			"Created rollout v2: pools web, api to node config v2.",
			"Pool web states node config v1",
			`kubectl patch pool web --type merge -p '{"spec":{"nodeConfig":"v2"}}'`,
			"strata rollouts get v2 follows it.",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("create said:\n%s\nwant %q", out, want)
			}
		}
		if strings.Contains(out, "Pool api") {
			t.Errorf("create names pool api, which states v2 already:\n%s", out)
		}
		after := &fleetv1alpha1.Pool{}
		if err := hub.Get(t.Context(), client.ObjectKey{Name: "web"}, after); err != nil {
			t.Fatal(err)
		}
		if after.ResourceVersion != before.ResourceVersion || after.Spec.NodeConfig != "v1" {
			t.Errorf("create changed pool web: node config %q, resourceVersion %s -> %s", after.Spec.NodeConfig, before.ResourceVersion, after.ResourceVersion)
		}
		ro := &fleetv1alpha1.MaintenanceRollout{}
		if err := hub.Get(t.Context(), client.ObjectKey{Name: "v2"}, ro); err != nil {
			t.Fatal(err)
		}
		if ro.Spec.ToleratedFailures != 1 || ro.Spec.NodeConfig != "v2" {
			t.Errorf("created spec = %+v", ro.Spec)
		}
	})

	t.Run("create refuses what the schema refuses", func(t *testing.T) {
		if _, err := strata("create", "bad", "--pools", "web", "--node-config", "v2", "--tolerated-failures", "-1"); err == nil ||
			!strings.Contains(err.Error(), "--tolerated-failures -1 must not be negative") {
			t.Errorf("create with -1 tolerated failures: %v", err)
		}
		// The schema says so too, for kubectl apply.
		ro := &fleetv1alpha1.MaintenanceRollout{}
		ro.Name = "bad"
		ro.Spec = fleetv1alpha1.MaintenanceRolloutSpec{Pools: []string{"web"}, NodeConfig: "v2", ToleratedFailures: -1}
		if err := hub.Create(t.Context(), ro); err == nil || !strings.Contains(err.Error(), "toleratedFailures") {
			t.Errorf("creating a rollout with toleratedFailures -1: %v, want the schema to refuse it", err)
		}
	})

	t.Run("resume of a rollout halted by failures tolerates them in spec", func(t *testing.T) {
		ro := &fleetv1alpha1.MaintenanceRollout{}
		if err := hub.Get(t.Context(), client.ObjectKey{Name: "v2"}, ro); err != nil {
			t.Fatal(err)
		}
		// What the controller reports: two failed machines, one tolerated.
		ro.Status.Failures = []fleetv1alpha1.RolloutFailure{{Disruption: "d1", Machine: "m-1"}, {Disruption: "d2", Machine: "m-2"}}
		if err := hub.Status().Update(t.Context(), ro); err != nil {
			t.Fatal(err)
		}
		out, err := strata("resume", "v2")
		if err != nil {
			t.Fatalf("resume: %v\n%s", err, out)
		}
		want := "Rollout v2 tolerates the 2 machines that failed their maintenance (m-1, m-2): spec.toleratedFailures is now 2; one more failure halts it again.\nRollout v2 resumed.\n"
		if out != want {
			t.Errorf("resume said:\n%s\nwant:\n%s", out, want)
		}
		if err := hub.Get(t.Context(), client.ObjectKey{Name: "v2"}, ro); err != nil {
			t.Fatal(err)
		}
		if ro.Spec.ToleratedFailures != 2 || ro.Spec.Paused {
			t.Errorf("spec after resume: toleratedFailures %d, paused %t; want 2, false", ro.Spec.ToleratedFailures, ro.Spec.Paused)
		}
		if out, _ := strata("resume", "v2"); !strings.Contains(out, "is not paused") {
			t.Errorf("a second resume said:\n%s", out)
		}
	})

	t.Run("pause and resume by a person", func(t *testing.T) {
		if out, err := strata("pause", "v2"); err != nil || !strings.Contains(out, "Rollout v2 paused") {
			t.Fatalf("pause: %v\n%s", err, out)
		}
		out, err := strata("resume", "v2")
		if err != nil || out != "Rollout v2 resumed.\n" {
			t.Errorf("resume: %v\n%s", err, out)
		}
		ro := &fleetv1alpha1.MaintenanceRollout{}
		if err := hub.Get(t.Context(), client.ObjectKey{Name: "v2"}, ro); err != nil {
			t.Fatal(err)
		}
		if ro.Spec.Paused || ro.Spec.ToleratedFailures != 2 {
			t.Errorf("spec after pause and resume: paused %t, toleratedFailures %d", ro.Spec.Paused, ro.Spec.ToleratedFailures)
		}
	})
}
