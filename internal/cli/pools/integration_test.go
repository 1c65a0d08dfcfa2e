package pools

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cli/globals"
	"github.com/strata-dev/strata/internal/cli/hubcli"
	"github.com/strata-dev/strata/internal/testutil"
	"github.com/strata-dev/strata/internal/testutil/testbroker"
	"github.com/strata-dev/strata/internal/workload/guardrails"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// TestCommands runs `strata pools` against a real hub (envtest, with the
// hub's delete-protection policy) and a real broker: create checks what
// they know before it says "Created", delete asks before it writes the
// guardrail's override.
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
	addr, brokerClient, _ := testbroker.StartServer(t, 100, 0)
	testutil.MustCreate(t, hub, testutil.MakeCluster("workload-1", "strata-system").Obj())
	testutil.MustCreate(t, hub, testutil.MakeCluster("workload-2", "strata-system").Obj())
	installDeleteProtection(t, hub)

	strata := func(stdin string, args ...string) (string, error) {
		cmd := NewCommand(&globals.Flags{Home: t.TempDir()})
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetIn(strings.NewReader(stdin)) // not a terminal: nobody to ask
		cmd.SetArgs(append([]string{"--hub-kubeconfig", kubeconfig, "--broker", addr}, args...))
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.ExecuteContext(t.Context())
		return out.String(), err
	}
	wantError := func(t *testing.T, err error, parts ...string) {
		t.Helper()
		if err == nil {
			t.Fatalf("no error, want one with %q", parts)
		}
		for _, p := range parts {
			if !strings.Contains(err.Error(), p) {
				t.Errorf("error %q lacks %q", err, p)
			}
		}
	}
	noPool := func(t *testing.T, name string) {
		t.Helper()
		if err := hub.Get(t.Context(), client.ObjectKey{Name: name}, &fleetv1alpha1.Pool{}); !apierrors.IsNotFound(err) {
			t.Errorf("Pool %s: %v, want NotFound", name, err)
		}
	}

	t.Run("create in a cluster the hub does not know", func(t *testing.T) {
		out, err := strata("", "create", "web", "--cluster", "workload-3", "--profile", "general", "--capacity", "3")
		wantError(t, err, `cluster "workload-3" does not exist on the hub; did you mean "workload-1" or "workload-2"?`)
		if strings.Contains(out, "Created") {
			t.Errorf("said %q", out)
		}
		noPool(t, "web")
	})

	t.Run("create of a profile the broker does not know", func(t *testing.T) {
		_, err := strata("", "create", "web", "--cluster", "workload-1", "--profile", "generl", "--capacity", "3")
		wantError(t, err, `node profile "generl" does not exist at the broker; did you mean "general"?`)
		noPool(t, "web")
	})

	t.Run("create of a bare broker pool of an unknown profile", func(t *testing.T) {
		_, err := strata("", "create", "bare", "--profile", "generl", "--capacity", "1")
		wantError(t, err, `InvalidArgument: pool.node_profile "generl" does not exist`, `did you mean "general"?`)
	})

	t.Run("create", func(t *testing.T) {
		out, err := strata("", "create", "web", "--cluster", "workload-1", "--profile", "general", "--capacity", "3")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "Created Pool web: 3 general Nodes in cluster workload-1") {
			t.Errorf("said %q", out)
		}
		pool := &fleetv1alpha1.Pool{}
		if err := hub.Get(t.Context(), client.ObjectKey{Name: "web"}, pool); err != nil {
			t.Fatal(err)
		}
		if pool.Spec.Cluster != "workload-1" || pool.Spec.NodeProfile != "general" || pool.Spec.Capacity != 3 {
			t.Errorf("Pool web: %+v", pool.Spec)
		}
	})

	t.Run("scale down says what the Pool holds is released, not the capacities' difference", func(t *testing.T) {
		// A Pool of 3000 that got 78 machines (the broker had no more).
		short := testutil.MakePool("short", "workload-2", 3000).Obj()
		testutil.MustCreate(t, hub, short)
		short.Status = fleetv1alpha1.PoolStatus{Desired: 3000, Allocated: 78, Nodes: 78, Ready: 78}
		if err := hub.Status().Update(t.Context(), short); err != nil {
			t.Fatal(err)
		}
		out, err := strata("", "scale", "short", "40")
		if err != nil {
			t.Fatal(err)
		}
		want := "Pool short: capacity 3000 -> 40. 38 of its 78 machines are released, evenly across MZs, each once its Node is drained (the Pool has 78 Nodes)"
		if !strings.Contains(out, want) {
			t.Errorf("said %q, want %q", out, want)
		}
	})

	t.Run("scale over the cluster's limit is refused, naming it", func(t *testing.T) {
		_, err := strata("", "scale", "short", "6000")
		wantError(t, err, "refused: Pool short: capacity 6000 would give cluster workload-2 6000 Nodes, over its limit of 5000 "+
			"(spec.maxNodes of Cluster workload-2): its other Pools take 0, so this Pool may have at most 5000")
		pool := &fleetv1alpha1.Pool{}
		if err := hub.Get(t.Context(), client.ObjectKey{Name: "short"}, pool); err != nil {
			t.Fatal(err)
		}
		if pool.Spec.Capacity != 40 {
			t.Errorf("Pool short has capacity %d after a refused scale, want 40", pool.Spec.Capacity)
		}
	})

	t.Run("delete without --force and without a terminal", func(t *testing.T) {
		_, err := strata("yes\n", "delete", "web")
		wantError(t, err, "Pool web holds 0 Nodes of cluster workload-1", "strata.dev/allow-delete=true", "Not deleted: --force deletes it")
		pool := &fleetv1alpha1.Pool{}
		if err := hub.Get(t.Context(), client.ObjectKey{Name: "web"}, pool); err != nil {
			t.Fatal(err)
		}
		if _, ok := pool.Annotations[appsv1alpha1.AllowDeleteAnnotation]; ok || !pool.DeletionTimestamp.IsZero() {
			t.Errorf("Pool web was annotated %v, deleted at %v; want neither", pool.Annotations, pool.DeletionTimestamp)
		}
	})

	t.Run("delete --force writes the override and deletes", func(t *testing.T) {
		out, err := strata("", "delete", "web", "--force")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "Deleting Pool web (annotated strata.dev/allow-delete=true, the delete-protection override)") {
			t.Errorf("said %q", out)
		}
		noPool(t, "web")
	})

	t.Run("a bare broker pool too is deleted only with --force", func(t *testing.T) {
		if _, err := strata("", "create", "bare", "--profile", "general", "--capacity", "2"); err != nil {
			t.Fatal(err)
		}
		_, err := strata("", "delete", "bare")
		wantError(t, err, "Broker pool bare holds", "Not deleted: --force deletes it")
		if _, err := brokerClient.GetPool(t.Context(), &brokerv1.GetPoolRequest{Name: "bare"}); err != nil {
			t.Fatalf("broker pool bare after a refused delete: %v", err)
		}
		if out, err := strata("", "delete", "bare", "--force"); err != nil || !strings.Contains(out, "Deleted pool bare") {
			t.Fatalf("delete --force: %v, said %q", err, out)
		}
	})
}

// installDeleteProtection puts the hub's delete-protection policy in force
// and waits until the API server applies it (it loads a new policy a
// moment after it is written): a Pool is deleted only with the override.
func installDeleteProtection(t *testing.T, hub client.Client) {
	t.Helper()
	for _, p := range guardrails.HubPolicies() {
		testutil.MustCreate(t, hub, p.Policy)
		testutil.MustCreate(t, hub, p.Binding)
	}
	probe := testutil.MakePool("probe", "workload-1", 0).Obj()
	testutil.MustCreate(t, hub, probe)
	var last error
	if err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		last = hub.Delete(ctx, probe, client.DryRunAll)
		return last != nil && strings.Contains(last.Error(), guardrails.DeleteProtectionRule), nil
	}); err != nil {
		t.Fatalf("the delete-protection policy never denied a delete; last answer: %v", last)
	}
}
