package manager_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/cluster/cluster"
	"github.com/strata-dev/strata/internal/cluster/drain"
	"github.com/strata-dev/strata/internal/cluster/manager"
	"github.com/strata-dev/strata/internal/cluster/pool"
	"github.com/strata-dev/strata/internal/cluster/remote"
	"github.com/strata-dev/strata/internal/metal/provision/sim"
	"github.com/strata-dev/strata/internal/testutil"
	"github.com/strata-dev/strata/internal/testutil/testbroker"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

const (
	ns          = "strata-system"
	appNS       = "app"
	clusterName = "wl"
	// the pool's capacity: the broker's budget lets 10% (2) of it be open at once.
	capacity = 20
	// deadline is the drain deadline the manager runs with; the test moves
	// the manager's clock past it rather than waiting.
	deadline = time.Minute
)

var actor = manager.Actor(clusterName)

// TestClusterManager runs the cluster manager beside the Cluster and Pool
// controllers against a real API server (the hub, which also plays the
// workload cluster), with the workload cluster's kube-controller-manager
// (deployment, replicaset and disruption controllers) and kube-scheduler,
// and a real broker on SQLite whose sim provisioner registers the Nodes.
// The test plays the kubelet: it marks bound pods running and ready.
func TestClusterManager(t *testing.T) {
	env, cfg := testutil.StartJoinEnv(t)
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, fleetv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	admin, err := env.AddUser(envtest.User{Name: "hub", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	startKubeComponents(t, kubeconfig)
	testutil.MustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	// The namespace of an AppNamespace, labelled as its controller does: a
	// blocked drain names the tenant.
	testutil.MustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNS, Labels: map[string]string{
		appsv1alpha1.AppNamespaceLabel: appNS, appsv1alpha1.AppLabel: "shop", appsv1alpha1.TenantLabel: string(appsv1alpha1.StatelessTenant),
	}}})
	testutil.MustCreate(t, c, testutil.MakeSecret(ns, clusterName+"-kubeconfig", "kubeconfig", kubeconfig))
	testutil.MustCreate(t, c, testutil.MakeCluster(clusterName, ns).Obj())

	bc, _ := testbroker.Start(t, 200, 0, sim.Cluster{Name: clusterName, Kubeconfig: kubeconfig})
	clock := &shiftedClock{}
	startControllers(t, cfg, scheme, bc, clock)
	go playKubelet(ctx, c)

	testutil.MustCreate(t, c, testutil.MakePool("web", clusterName, capacity).Obj())
	nodes := waitNodes(t, c, "web", capacity)
	// Nodes in distinct MZs, so that planned upgrades one after the other
	// never wait on another MZ's.
	a, b, stuck, gone, reimaged, batch, overrun := nodes[0], nodes[1], nodes[2], nodes[3], nodes[4], nodes[5], nodes[6]
	waitCondition(t, c, metav1.ConditionTrue, fleetv1alpha1.DrainsWithinDeadlineReason)

	t.Run("a planned upgrade cordons, drains within the PDB, approves, and uncordons once completed", func(t *testing.T) {
		// The other Nodes are held unschedulable while the pods start, so
		// that they all land on a and its drain has to move them.
		for _, n := range nodes[1:] {
			setUnschedulable(t, c, n.Name, true)
		}
		testutil.MustCreate(t, c, deployment("web", 4, preferNode(a.Name)))
		testutil.MustCreate(t, c, pdb("web", intstr.FromInt32(3)))
		waitReadyPods(t, c, "web", 4)
		for _, n := range nodes[1:] {
			setUnschedulable(t, c, n.Name, false)
		}
		if on := len(podsOn(t, c, "web", a.Name)); on < 2 {
			t.Fatalf("%d pods of web run on %s, want most of them there for the drain to mean something", on, a.Name)
		}
		lowest := sampleReady(t, c, "web")

		d := createDisruption(t, bc, a.Name, brokerv1.DisruptionReason_DISRUPTION_REASON_PLANNED_UPGRADE)
		waitState(t, bc, d, brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED)
		node := getNode(t, c, a.Name)
		if !node.Spec.Unschedulable || node.Annotations[fleetv1alpha1.CordonedForAnnotation] != d {
			t.Errorf("approved: node unschedulable %v, cordoned-for %q; want cordoned for %s", node.Spec.Unschedulable,
				node.Annotations[fleetv1alpha1.CordonedForAnnotation], d)
		}
		if left := podsOn(t, c, "web", a.Name); len(left) != 0 {
			t.Errorf("approved with %d pods of web still on the node", len(left))
		}
		waitReadyPods(t, c, "web", 4)
		if min := lowest(); min < 3 {
			t.Errorf("ready pods of web fell to %d during the drain; the PDB's minimum is 3", min)
		}
		waitNode(t, c, a.Name, "the drain marks removed once approved", func(n *corev1.Node) bool {
			_, started := n.Annotations[fleetv1alpha1.DrainStartedAnnotation]
			return !started && n.Spec.Unschedulable
		})

		start(t, bc, d)
		if n := getNode(t, c, a.Name); !n.Spec.Unschedulable {
			t.Error("the node was uncordoned while its disruption is in progress")
		}
		complete(t, bc, d)
		waitNode(t, c, a.Name, "uncordoned after completion", func(n *corev1.Node) bool {
			return !n.Spec.Unschedulable && n.Annotations[fleetv1alpha1.CordonedForAnnotation] == ""
		})

		history := waitHistory(t, bc, d, "uncordoned node "+a.Name)
		var order []string
		for _, h := range history {
			switch msg := h.GetMessage(); {
			case h.GetOnBehalfOf() != actor:
			case h.GetTo() == brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED && h.GetFrom() == brokerv1.DisruptionState_DISRUPTION_STATE_PENDING:
				order = append(order, "approve")
			case msg == "cordoned node "+a.Name+" for planned-upgrade":
				order = append(order, "cordon")
			case strings.HasPrefix(msg, "drained node "+a.Name+" for planned-upgrade: evicted ") && !strings.Contains(msg, "evicted 0 pods"):
				order = append(order, "drain")
			case msg == "uncordoned node "+a.Name+" after planned-upgrade: the disruption is completed":
				order = append(order, "uncordon")
			}
		}
		if want := []string{"cordon", "drain", "approve", "uncordon"}; !slices.Equal(order, want) {
			t.Errorf("steps by %s = %v, want %v; history:\n%s", actor, order, want, historyText(history))
		}
		waitEvent(t, c, a.Name, "Uncordoned")
	})

	t.Run("a Node cordoned by hand stays cordoned after its disruption", func(t *testing.T) {
		cordonByHand(t, c, b.Name)
		solo := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "solo", Namespace: appNS},
			Spec: corev1.PodSpec{NodeName: b.Name, TerminationGracePeriodSeconds: ptr.To[int64](0),
				Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
		}
		testutil.MustCreate(t, c, solo)

		d := createDisruption(t, bc, b.Name, brokerv1.DisruptionReason_DISRUPTION_REASON_PLANNED_UPGRADE)
		waitState(t, bc, d, brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED)
		if err := c.Get(ctx, client.ObjectKeyFromObject(solo), &corev1.Pod{}); !apierrors.IsNotFound(err) {
			t.Errorf("the pod of the hand-cordoned node was not evicted: %v", err)
		}
		if n := getNode(t, c, b.Name); n.Annotations[fleetv1alpha1.CordonedForAnnotation] != "" {
			t.Errorf("Strata marked a cordon that is not its own: %v", n.Annotations)
		}
		start(t, bc, d)
		complete(t, bc, d)
		// The manager has seen the end of the disruption once its drain marks go.
		waitNode(t, c, b.Name, "the drain marks removed", func(n *corev1.Node) bool {
			_, started := n.Annotations[fleetv1alpha1.DrainStartedAnnotation]
			return !started
		})
		history := waitHistory(t, bc, d, "already cordoned by someone else")
		n := getNode(t, c, b.Name)
		if !n.Spec.Unschedulable || n.Annotations[fleetv1alpha1.CordonedForAnnotation] != "" {
			t.Errorf("after the disruption: unschedulable %v, annotations %v; want the hand cordon kept", n.Spec.Unschedulable, n.Annotations)
		}
		if slices.ContainsFunc(history, func(h *brokerv1.DisruptionTransition) bool { return strings.Contains(h.GetMessage(), "uncordon") }) {
			t.Errorf("the record shows an uncordon of a hand-cordoned node:\n%s", historyText(history))
		}
	})

	t.Run("a reimage the broker performs brings the Node back on the new config, uncordoned", func(t *testing.T) {
		resp, err := bc.CreateDisruption(ctx, &brokerv1.CreateDisruptionRequest{
			Machine: reimaged.Name, Reason: brokerv1.DisruptionReason_DISRUPTION_REASON_PLANNED_UPGRADE, OnBehalfOf: "test/reimage",
			Operation: &brokerv1.Operation{Kind: brokerv1.OperationKind_OPERATION_KIND_REIMAGE, Software: &brokerv1.Software{NodeConfig: "kubelet-1.37-v2"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		d := resp.GetDisruption().GetId()
		waitState(t, bc, d, brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED)
		start(t, bc, d)
		waitState(t, bc, d, brokerv1.DisruptionState_DISRUPTION_STATE_COMPLETED)
		waitNode(t, c, reimaged.Name, "uncordoned on the new node config", func(n *corev1.Node) bool {
			return !n.Spec.Unschedulable && n.Annotations[fleetv1alpha1.CordonedForAnnotation] == "" &&
				n.Labels[fleetv1alpha1.NodeConfigLabel] == "kubelet-1.37-v2"
		})
		waitHistory(t, bc, d, "uncordoned node "+reimaged.Name+" after planned-upgrade: the disruption is completed")
	})

	t.Run("a machine without a Node is approved at once", func(t *testing.T) {
		if err := c.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: gone.Name}}); err != nil {
			t.Fatal(err)
		}
		d := createDisruption(t, bc, gone.Name, brokerv1.DisruptionReason_DISRUPTION_REASON_REMEDIATION)
		waitState(t, bc, d, brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED)
		history := waitHistory(t, bc, d, "")
		approval := history[len(history)-1]
		if approval.GetOnBehalfOf() != actor || !strings.Contains(approval.GetMessage(), "no Node") {
			t.Errorf("approval = %s %q, want %s saying there is no Node", approval.GetOnBehalfOf(), approval.GetMessage(), actor)
		}
		cancel(t, bc, d)
	})

	t.Run("a drain a PDB holds past the deadline stays Pending, forces nothing, and the Cluster says why", func(t *testing.T) {
		testutil.MustCreate(t, c, deployment("held", 1, requireNode(stuck.Name)))
		testutil.MustCreate(t, c, pdb("held", intstr.FromInt32(1)))
		pods := waitReadyPods(t, c, "held", 1)
		held := pods[0]

		d := createDisruption(t, bc, stuck.Name, brokerv1.DisruptionReason_DISRUPTION_REASON_HARDWARE_REPAIR)
		waitNode(t, c, stuck.Name, "drain blocked by the PDB", func(n *corev1.Node) bool {
			return n.Spec.Unschedulable && strings.Contains(n.Annotations[fleetv1alpha1.DrainBlockedAnnotation], appNS+"/"+held.Name)
		})
		clock.advance(deadline + time.Second)
		cond := waitCondition(t, c, metav1.ConditionFalse, fleetv1alpha1.DrainDeadlineExceededReason)
		// It says which pod blocks the drain, whose it is (its controller
		// and its tenant) and why.
		for _, want := range []string{"node " + stuck.Name, d, "hardware-repair", "nothing is forced",
			appNS + "/" + held.Name + " (ReplicaSet held-", "; tenant: AppNamespace app of app shop): ", "disruption budget"} {
			if !strings.Contains(cond.Message, want) {
				t.Errorf("condition message %q does not name %q", cond.Message, want)
			}
		}
		if got := getDisruption(t, bc, d).GetState(); got != brokerv1.DisruptionState_DISRUPTION_STATE_PENDING {
			t.Errorf("disruption is %v, want it left Pending", got)
		}
		now := &corev1.Pod{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(&held), now); err != nil || now.UID != held.UID || now.DeletionTimestamp != nil {
			t.Errorf("the pod the PDB protects was forced: %v, %+v", err, now.ObjectMeta)
		}
		// The Cluster controller writes the Cluster's status when the
		// cluster changes (one more Node); the manager's condition survives.
		counted := clusterStatus(t, c).Status.Nodes
		testutil.MustCreate(t, c, testutil.MakeNode("bystander", "", "1").Obj())
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			return clusterStatus(t, c).Status.Nodes == counted+1, nil
		})
		if err != nil {
			t.Fatalf("the Cluster controller did not count the new Node: %v", err)
		}
		if got := meta.FindStatusCondition(clusterStatus(t, c).Status.Conditions, fleetv1alpha1.ClusterDrainsOnScheduleCondition); got == nil || got.Status != metav1.ConditionFalse {
			t.Errorf("after the Cluster controller wrote its status, DrainsOnSchedule = %+v", got)
		}

		cancel(t, bc, d)
		waitNode(t, c, stuck.Name, "uncordoned once cancelled", func(n *corev1.Node) bool {
			return !n.Spec.Unschedulable && len(n.Annotations[fleetv1alpha1.DrainBlockedAnnotation]) == 0
		})
		waitCondition(t, c, metav1.ConditionTrue, fleetv1alpha1.DrainsWithinDeadlineReason)
	})

	t.Run("a Job's pod is evicted; a non-interruptible Job's pod is waited for until it finishes", func(t *testing.T) {
		testutil.MustCreate(t, c, job("etl", false, batch.Name))
		testutil.MustCreate(t, c, job("train", true, batch.Name))
		etl, train := waitReadyPods(t, c, "etl", 1)[0], waitReadyPods(t, c, "train", 1)[0]

		d := createDisruption(t, bc, batch.Name, brokerv1.DisruptionReason_DISRUPTION_REASON_PLANNED_UPGRADE)
		waitNode(t, c, batch.Name, "the drain waiting for the non-interruptible pod", func(n *corev1.Node) bool {
			return strings.Contains(n.Annotations[fleetv1alpha1.DrainBlockedAnnotation], appNS+"/"+train.Name+" (Job train; tenant: AppNamespace app of app shop): "+drain.WaitingReason)
		})
		// The Job's pod went through the Eviction API, which marks it so.
		waitPod(t, c, etl, "evicted", func(p *corev1.Pod) bool {
			return p == nil || slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
				return c.Type == corev1.DisruptionTarget && c.Reason == "EvictionByEvictionAPI"
			})
		})
		if got := getDisruption(t, bc, d).GetState(); got != brokerv1.DisruptionState_DISRUPTION_STATE_PENDING {
			t.Errorf("disruption is %v while the non-interruptible pod runs, want Pending", got)
		}
		// The job finishes: the drain is over, and the pod was never evicted.
		finish(t, c, train.Name)
		waitState(t, bc, d, brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED)
		now := &corev1.Pod{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(&train), now); err != nil || now.DeletionTimestamp != nil ||
			slices.ContainsFunc(now.Status.Conditions, func(c corev1.PodCondition) bool { return c.Type == corev1.DisruptionTarget }) {
			t.Errorf("the non-interruptible pod was disrupted: %v, %+v", err, now)
		}
		// How many pods were evicted is not judged here: a pod of the app
		// web, moved off Node a by the first step, may have landed on this
		// Node, and is evicted too.
		waitHistory(t, bc, d, "drained node "+batch.Name+" for planned-upgrade: evicted ")
		cancel(t, bc, d)
	})

	t.Run("a non-interruptible pod is evicted once the drain's deadline passes, and the record says why", func(t *testing.T) {
		testutil.MustCreate(t, c, job("sim", true, overrun.Name))
		sim := waitReadyPods(t, c, "sim", 1)[0]
		d := createDisruption(t, bc, overrun.Name, brokerv1.DisruptionReason_DISRUPTION_REASON_HARDWARE_REPAIR)
		waitNode(t, c, overrun.Name, "the drain waiting for the non-interruptible pod", func(n *corev1.Node) bool {
			return strings.Contains(n.Annotations[fleetv1alpha1.DrainBlockedAnnotation], appNS+"/"+sim.Name)
		})
		if p := &(corev1.Pod{}); c.Get(ctx, client.ObjectKeyFromObject(&sim), p) != nil || p.DeletionTimestamp != nil {
			t.Fatalf("the non-interruptible pod left before the deadline: %+v", p.ObjectMeta)
		}
		clock.advance(deadline + time.Second)
		waitHistory(t, bc, d, "evicted non-interruptible pod "+appNS+"/"+sim.Name+" (Job sim) from node "+overrun.Name+
			" for hardware-repair: the drain's deadline of 1m0s passed")
		waitEvent(t, c, overrun.Name, manager.NonInterruptibleEvictedReason)
		waitState(t, bc, d, brokerv1.DisruptionState_DISRUPTION_STATE_APPROVED)
		cancel(t, bc, d)
	})
}

// job is a Job of one pod that stays on a Node, non-interruptible or not;
// its pods carry the label app=<name>, like the Deployments' (appPods).
func job(name string, nonInterruptible bool, node string) *batchv1.Job {
	annotations := map[string]string{}
	if nonInterruptible {
		annotations[drain.NonInterruptibleAnnotation] = "true"
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: appNS},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}, Annotations: annotations},
				Spec: corev1.PodSpec{
					Affinity:                      requireNode(node),
					RestartPolicy:                 corev1.RestartPolicyNever,
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers:                    []corev1.Container{{Name: "work", Image: "batch:1"}},
				},
			},
		},
	}
}

// finish ends a running pod successfully, as its kubelet would report.
func finish(t *testing.T, c client.Client, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p := &corev1.Pod{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: appNS, Name: name}, p); err != nil {
			return false, err
		}
		p.Status.Phase = corev1.PodSucceeded
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "PodCompleted", LastTransitionTime: metav1.Now()}}
		return c.Status().Update(ctx, p) == nil, nil // a conflict with playKubelet is tried again
	})
	if err != nil {
		t.Fatalf("finishing pod %s: %v", name, err)
	}
}

// waitPod waits until the pod (nil once gone) satisfies ok.
func waitPod(t *testing.T, c client.Client, pod corev1.Pod, what string, ok func(*corev1.Pod) bool) {
	t.Helper()
	var seen *corev1.Pod
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		p := &corev1.Pod{}
		err := c.Get(ctx, client.ObjectKeyFromObject(&pod), p)
		switch {
		case apierrors.IsNotFound(err):
			p = nil
		case err != nil:
			return false, err
		}
		seen = p
		return ok(p), nil
	})
	if err != nil {
		t.Fatalf("pod %s: want %s; last seen %+v: %v", pod.Name, what, seen, err)
	}
}

// startKubeComponents runs the workload cluster's kube-controller-manager
// (only what a drain relies on: deployments, replica sets, disruption
// budgets' status and Jobs) and kube-scheduler, from the binaries `make tools` built.
func startKubeComponents(t *testing.T, kubeconfig []byte) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{
		"kube-controller-manager": {"--controllers=deployment,replicaset,disruption,job"},
		"kube-scheduler":          nil,
	} {
		bin := filepath.Join(os.Getenv("KUBEBUILDER_ASSETS"), name)
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("%s is missing from KUBEBUILDER_ASSETS: run `make tools` (%v)", name, err)
		}
		logPath := filepath.Join(dir, name+".log")
		logFile, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, append([]string{"--kubeconfig=" + path, "--leader-elect=false", "--secure-port=0", "-v=1"}, args...)...)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", name, err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			_ = logFile.Close()
			if t.Failed() {
				if out, err := os.ReadFile(logPath); err == nil {
					t.Logf("%s log (tail):\n%s", name, out[max(0, len(out)-4000):])
				}
			}
		})
	}
}

func startControllers(t *testing.T, cfg *rest.Config, scheme *runtime.Scheme, bc brokerv1.BrokerServiceClient, clock *shiftedClock) {
	t.Helper()
	testutil.StartManager(t, cfg, scheme, func(mgr ctrl.Manager) error {
		cr, err := cluster.New(cluster.Options{Client: mgr.GetClient(), Prober: cluster.NewAPIProber(), ProbeInterval: time.Second})
		if err != nil {
			return err
		}
		if err := cr.SetupWithManager(mgr); err != nil {
			return err
		}
		workloads := remote.New(mgr.GetClient())
		if err := mgr.Add(workloads); err != nil {
			return err
		}
		pr, err := pool.New(pool.Options{Hub: mgr.GetClient(), Broker: bc, Clusters: workloads, Recorder: mgr.GetEventRecorder("pool-controller")})
		if err != nil {
			return err
		}
		if err := pr.SetupWithManager(mgr); err != nil {
			return err
		}
		m, err := manager.New(manager.Options{Hub: mgr.GetClient(), Broker: bc, Clusters: workloads, DrainDeadline: deadline, Clock: clock})
		if err != nil {
			return err
		}
		return m.SetupWithManager(mgr)
	})
}

// shiftedClock is the real clock moved ahead by what the test advanced it.
type shiftedClock struct{ offset atomic.Int64 }

func (s *shiftedClock) Now() time.Time                  { return time.Now().Add(time.Duration(s.offset.Load())) }
func (s *shiftedClock) Since(t time.Time) time.Duration { return s.Now().Sub(t) }
func (s *shiftedClock) advance(d time.Duration)         { s.offset.Add(int64(d)) }

// playKubelet marks the pods bound to a Node running and ready (unless they
// finished), as kubelets would, and removes the not-ready taint the API
// server gives a new Node, as the node lifecycle controller would once the
// kubelet reports Ready, until ctx ends.
func playKubelet(ctx context.Context, c client.Client) {
	_ = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		nodes := &corev1.NodeList{}
		if err := c.List(ctx, nodes); err != nil {
			return false, nil //nolint:nilerr // try again
		}
		for i := range nodes.Items {
			n := &nodes.Items[i]
			notReady := func(t corev1.Taint) bool { return t.Key == corev1.TaintNodeNotReady }
			if slices.ContainsFunc(n.Spec.Taints, notReady) {
				before := n.DeepCopy()
				n.Spec.Taints = slices.DeleteFunc(n.Spec.Taints, notReady)
				_ = c.Patch(ctx, n, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
			}
		}
		pods := &corev1.PodList{}
		if err := c.List(ctx, pods, client.InNamespace(appNS)); err != nil {
			return false, nil //nolint:nilerr // try again
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			finished := p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
			if p.Spec.NodeName == "" || p.DeletionTimestamp != nil || ready(p) || finished {
				continue
			}
			p.Status.Phase = corev1.PodRunning
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
			_ = c.Status().Update(ctx, p) // a conflict is retried on the next poll
		}
		return false, nil
	})
}

func ready(p *corev1.Pod) bool {
	return slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
		return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
	})
}

func deployment(name string, replicas int32, affinity *corev1.Affinity) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: appNS},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Affinity:                      affinity,
					TerminationGracePeriodSeconds: ptr.To[int64](0),
					Containers:                    []corev1.Container{{Name: "app", Image: "app:1"}},
				},
			},
		},
	}
}

// preferNode makes the scheduler put pods on a Node while it can.
func preferNode(node string) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 100, Preference: hostIs(node)}},
	}}
}

// requireNode keeps pods on one Node.
func requireNode(node string) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{hostIs(node)}},
	}}
}

func hostIs(node string) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{{
		Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{node},
	}}}
}

func pdb(app string, minAvailable intstr.IntOrString) *policyv1.PodDisruptionBudget {
	return &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: appNS},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: &minAvailable,
			Selector:     &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}},
		},
	}
}

// appPods lists an app's pods.
func appPods(t *testing.T, c client.Client, app string) []corev1.Pod {
	t.Helper()
	pods := &corev1.PodList{}
	if err := c.List(t.Context(), pods, client.InNamespace(appNS), client.MatchingLabels{"app": app}); err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

func podsOn(t *testing.T, c client.Client, app, node string) []corev1.Pod {
	t.Helper()
	return slices.DeleteFunc(appPods(t, c, app), func(p corev1.Pod) bool { return p.Spec.NodeName != node })
}

// waitReadyPods waits until an app has n ready pods that are not leaving, and
// returns them.
func waitReadyPods(t *testing.T, c client.Client, app string, n int) []corev1.Pod {
	t.Helper()
	var readyPods []corev1.Pod
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		readyPods = slices.DeleteFunc(appPods(t, c, app), func(p corev1.Pod) bool { return !ready(&p) || p.DeletionTimestamp != nil })
		return len(readyPods) == n, nil
	})
	if err != nil {
		var all []string
		for _, p := range appPods(t, c, app) {
			all = append(all, fmt.Sprintf("%s on %q %s ready=%v", p.Name, p.Spec.NodeName, p.Status.Phase, ready(&p)))
		}
		t.Fatalf("app %s has %d ready pods, want %d; pods: %v", app, len(readyPods), n, all)
	}
	return readyPods
}

// sampleReady samples an app's ready pods until the test ends and returns
// the lowest count seen so far.
func sampleReady(t *testing.T, c client.Client, app string) func() int {
	t.Helper()
	var (
		mu     sync.Mutex
		lowest = -1
	)
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			pods := &corev1.PodList{}
			if err := c.List(ctx, pods, client.InNamespace(appNS), client.MatchingLabels{"app": app}); err != nil {
				return false, nil //nolint:nilerr // the test is ending
			}
			n := 0
			for i := range pods.Items {
				if ready(&pods.Items[i]) && pods.Items[i].DeletionTimestamp == nil {
					n++
				}
			}
			mu.Lock()
			if lowest < 0 || n < lowest {
				lowest = n
			}
			mu.Unlock()
			return false, nil
		})
	}()
	t.Cleanup(func() { stop(); <-done })
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return lowest
	}
}

func waitNodes(t *testing.T, c client.Client, pool string, n int) []corev1.Node {
	t.Helper()
	nodes := &corev1.NodeList{}
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := c.List(ctx, nodes, client.MatchingLabels{fleetv1alpha1.PoolLabel: pool}); err != nil {
			return false, err
		}
		return len(nodes.Items) == n, nil
	})
	if err != nil {
		t.Fatalf("pool %s has %d Nodes, want %d", pool, len(nodes.Items), n)
	}
	// One Node per MZ first.
	seen := map[string]bool{}
	var spread, rest []corev1.Node
	for _, node := range nodes.Items {
		if mz := node.Labels[fleetv1alpha1.MaintenanceZoneLabel]; !seen[mz] {
			seen[mz] = true
			spread = append(spread, node)
		} else {
			rest = append(rest, node)
		}
	}
	return append(spread, rest...)
}

func getNode(t *testing.T, c client.Client, name string) *corev1.Node {
	t.Helper()
	n := &corev1.Node{}
	if err := c.Get(t.Context(), client.ObjectKey{Name: name}, n); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitNode(t *testing.T, c client.Client, name, what string, ok func(*corev1.Node) bool) {
	t.Helper()
	n := &corev1.Node{}
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Name: name}, n); err != nil {
			return false, err
		}
		return ok(n), nil
	})
	if err != nil {
		t.Fatalf("node %s: want %s; unschedulable %v, annotations %v: %v", name, what, n.Spec.Unschedulable, n.Annotations, err)
	}
}

func cordonByHand(t *testing.T, c client.Client, name string) {
	t.Helper()
	setUnschedulable(t, c, name, true)
}

// setUnschedulable cordons or uncordons a Node as a person would.
func setUnschedulable(t *testing.T, c client.Client, name string, unschedulable bool) {
	t.Helper()
	n := getNode(t, c, name)
	before := n.DeepCopy()
	n.Spec.Unschedulable = unschedulable
	if err := c.Patch(t.Context(), n, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
}

func clusterStatus(t *testing.T, c client.Client) *fleetv1alpha1.Cluster {
	t.Helper()
	cl := &fleetv1alpha1.Cluster{}
	if err := c.Get(t.Context(), client.ObjectKey{Name: clusterName}, cl); err != nil {
		t.Fatal(err)
	}
	return cl
}

// waitCondition waits for the Cluster's DrainsOnSchedule condition, current
// with its generation.
func waitCondition(t *testing.T, c client.Client, status metav1.ConditionStatus, reason string) metav1.Condition {
	t.Helper()
	var got *metav1.Condition
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		cl := clusterStatus(t, c)
		got = meta.FindStatusCondition(cl.Status.Conditions, fleetv1alpha1.ClusterDrainsOnScheduleCondition)
		return got != nil && got.Status == status && got.Reason == reason && got.ObservedGeneration == cl.Generation, nil
	})
	if err != nil {
		t.Fatalf("DrainsOnSchedule = %+v, want %s %s", got, status, reason)
	}
	return *got
}

func createDisruption(t *testing.T, bc brokerv1.BrokerServiceClient, machine string, reason brokerv1.DisruptionReason) string {
	t.Helper()
	resp, err := bc.CreateDisruption(t.Context(), &brokerv1.CreateDisruptionRequest{
		Machine: machine, Reason: reason, OnBehalfOf: "test/" + t.Name(), Message: "test"})
	if err != nil {
		t.Fatalf("creating a disruption of %s: %v", machine, err)
	}
	return resp.GetDisruption().GetId()
}

func getDisruption(t *testing.T, bc brokerv1.BrokerServiceClient, id string) *brokerv1.Disruption {
	t.Helper()
	resp, err := bc.GetDisruption(t.Context(), &brokerv1.GetDisruptionRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetDisruption()
}

func waitState(t *testing.T, bc brokerv1.BrokerServiceClient, id string, state brokerv1.DisruptionState) {
	t.Helper()
	var d *brokerv1.Disruption
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		d = getDisruption(t, bc, id)
		return d.GetState() == state, nil
	})
	if err != nil {
		t.Fatalf("disruption %s is %v, want %v; history:\n%s", id, d.GetState(), state, historyText(d.GetHistory()))
	}
}

// waitHistory waits until a step of the disruption's history contains text
// and returns the history.
func waitHistory(t *testing.T, bc brokerv1.BrokerServiceClient, id, text string) []*brokerv1.DisruptionTransition {
	t.Helper()
	var d *brokerv1.Disruption
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		d = getDisruption(t, bc, id)
		return slices.ContainsFunc(d.GetHistory(), func(h *brokerv1.DisruptionTransition) bool { return strings.Contains(h.GetMessage(), text) }), nil
	})
	if err != nil {
		t.Fatalf("disruption %s: no step says %q; history:\n%s", id, text, historyText(d.GetHistory()))
	}
	return d.GetHistory()
}

func historyText(history []*brokerv1.DisruptionTransition) string {
	var b strings.Builder
	for _, h := range history {
		fmt.Fprintf(&b, "  %v -> %v by %s: %s\n", h.GetFrom(), h.GetTo(), h.GetOnBehalfOf(), h.GetMessage())
	}
	return b.String()
}

func start(t *testing.T, bc brokerv1.BrokerServiceClient, id string) {
	t.Helper()
	if _, err := bc.StartDisruption(t.Context(), &brokerv1.StartDisruptionRequest{Id: id, OnBehalfOf: "test/" + t.Name()}); err != nil {
		t.Fatal(err)
	}
}

func complete(t *testing.T, bc brokerv1.BrokerServiceClient, id string) {
	t.Helper()
	if _, err := bc.CompleteDisruption(t.Context(), &brokerv1.CompleteDisruptionRequest{Id: id, OnBehalfOf: "test/" + t.Name()}); err != nil {
		t.Fatal(err)
	}
}

func cancel(t *testing.T, bc brokerv1.BrokerServiceClient, id string) {
	t.Helper()
	if _, err := bc.CancelDisruption(t.Context(), &brokerv1.CancelDisruptionRequest{Id: id, OnBehalfOf: "test/" + t.Name()}); err != nil {
		t.Fatal(err)
	}
}

// waitEvent waits for an Event about a Node with the reason.
func waitEvent(t *testing.T, c client.Client, node, reason string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		events := &corev1.EventList{}
		if err := c.List(ctx, events); err != nil {
			return false, err
		}
		return slices.ContainsFunc(events.Items, func(e corev1.Event) bool {
			return e.InvolvedObject.Kind == "Node" && e.InvolvedObject.Name == node && e.Reason == reason
		}), nil
	})
	if err != nil {
		t.Errorf("no %s event about node %s: %v", reason, node, err)
	}
}
