package statefulapp_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/testutil"
	"github.com/strata-dev/strata/internal/workload/statefulapp"
	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

const ns = "team-a"

// TestStatefulAppController runs the controller against a real API server
// and a fake shard manager served over gRPC on 127.0.0.1. Nothing else runs
// in the API server: the test plays the scheduler, the kubelets (binding
// pods, writing their status, finishing their deletion) and the drain.
func TestStatefulAppController(t *testing.T) {
	_, cfg := testutil.StartEnv(t)
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, appsv1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	testutil.MustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
		appsv1alpha1.AppLabel: "kv-app", fleetv1alpha1.NodeProfileLabel: "storage",
	}}})
	for i := 1; i <= 3; i++ {
		node := testutil.MakeNode(fmt.Sprintf("n%d", i), "storage-pool", fmt.Sprint(i)).Obj()
		status := node.Status
		testutil.MustCreate(t, c, node)
		node.Status = status
		if err := c.Status().Update(t.Context(), node); err != nil {
			t.Fatal(err)
		}
	}
	testutil.MustCreate(t, c, platform())
	sm, addr := startFakeShardManager(t)
	stop := startController(t, cfg, scheme)
	parent := t
	k := &kubelet{t: t, c: c, nodeOf: map[string]string{}}

	t.Run("an app gets its pods, each with its PVC, and is Ready once they are", func(t *testing.T) {
		testutil.MustCreate(t, c, &appsv1alpha1.StatefulApp{
			ObjectMeta: metav1.ObjectMeta{Name: "kv", Namespace: ns},
			Spec: appsv1alpha1.StatefulAppSpec{
				Application: "kv", Version: "1.0", Replicas: 3,
				Resources: appsv1alpha1.Resources{CPU: resource.MustParse("1"), Memory: resource.MustParse("1Gi")},
				Storage:   appsv1alpha1.Storage{Size: resource.MustParse("10Gi")},
				// Calls time out after a second; approvals hold for a minute.
				// Plaintext, said explicitly; the TLS subtests below switch.
				ShardManager: appsv1alpha1.ShardManager{Endpoint: addr, Transport: appsv1alpha1.TransportPlaintext,
					CallTimeoutSeconds: 1, ApprovalSeconds: 60},
			},
		})
		for i := range 3 {
			pod := waitPod(t, c, fmt.Sprintf("kv-%d", i), func(p *corev1.Pod) bool { return true })
			if img := pod.Spec.Containers[0].Image; img != "registry.test/apps/kv:1.0" {
				t.Errorf("pod %s image %s", pod.Name, img)
			}
			if v := pod.Spec.Volumes; len(v) != 1 || v[0].PersistentVolumeClaim == nil || v[0].PersistentVolumeClaim.ClaimName != fmt.Sprintf("data-kv-%d", i) {
				t.Errorf("pod %s volumes %+v, want its PVC", pod.Name, v)
			}
			if l := pod.Labels; l[appsv1alpha1.AppLabel] != "kv-app" || l[appsv1alpha1.StatefulAppLabel] != "kv" || l[appsv1alpha1.AppVersionLabel] != "1.0" {
				t.Errorf("pod %s labels %v", pod.Name, l)
			}
			pvc := getClaim(t, c, i)
			if *pvc.Spec.StorageClassName != "local-ssd" || pvc.Spec.Resources.Requests.Storage().String() != "10Gi" {
				t.Errorf("PVC %s: class %s, size %s", pvc.Name, *pvc.Spec.StorageClassName, pvc.Spec.Resources.Requests.Storage())
			}
		}
		waitApp(t, c, "Ready", k.everyoneReady, func(a *appsv1alpha1.StatefulApp) bool {
			return hasCondition(a, appsv1alpha1.StatefulAppReadyCondition, metav1.ConditionTrue, appsv1alpha1.AvailableReason) &&
				hasCondition(a, appsv1alpha1.StatefulAppProgressingCondition, metav1.ConditionFalse, appsv1alpha1.RolledOutReason) &&
				a.Status.ReadyReplicas == 3
		})
		if ids := sm.ids("kv-0"); len(ids) != 0 {
			t.Errorf("the shard manager was asked %v to make an app", ids)
		}
		if got := getApp(t, c).Status.ShardManagerTransport; got != appsv1alpha1.TransportPlaintext {
			t.Errorf("status.shardManagerTransport %q, want Plaintext (as the spec says)", got)
		}
	})

	var restartID string
	uids := podUIDs(t, c)
	t.Run("a new version: RESTART of kv-2 asked for; nothing stops while the shard manager says retry-after", func(t *testing.T) {
		sm.answer(shardmanagerv1.Decision_DECISION_RETRY_AFTER, "moving the leaders of 4 shards", time.Second)
		updateApp(t, c, func(a *appsv1alpha1.StatefulApp) { a.Spec.Version = "1.1" })
		app := waitApp(t, c, "waiting for a retry-after", k.nothing, func(a *appsv1alpha1.StatefulApp) bool {
			op := podOperation(a, "kv-2")
			return op != nil && op.State == appsv1alpha1.OperationRetryAfter && strings.Contains(op.Message, "moving the leaders") &&
				hasCondition(a, appsv1alpha1.StatefulAppProgressingCondition, metav1.ConditionTrue, appsv1alpha1.WaitingForShardManagerReason)
		})
		op := podOperation(app, "kv-2")
		restartID = op.ID
		if op.Kind != statefulapp.KindRestart || !strings.HasPrefix(op.ID, "team-a/kv/kv-2/Restart/") {
			t.Errorf("operation %+v, want a RESTART of kv-2", op)
		}
		if c := meta.FindStatusCondition(app.Status.Conditions, appsv1alpha1.StatefulAppProgressingCondition); !strings.Contains(c.Message, "kv-2 Restart") ||
			!strings.Contains(c.Message, "waiting for their turn") {
			t.Errorf("Progressing message %q does not say kv-2 waits and the others wait their turn", c.Message)
		}
		req := sm.request(restartID)
		if req.GetKind() != shardmanagerv1.OperationKind_OPERATION_KIND_RESTART || req.GetNamespace() != ns || req.GetApp() != "kv" ||
			req.GetNode() != k.nodeOf["kv-2"] || !strings.Contains(req.GetReason(), "version 1.1") || req.GetDeadline() == nil {
			t.Errorf("request %v", req)
		}
		if ids := append(sm.ids("kv-0"), sm.ids("kv-1")...); len(ids) != 0 {
			t.Errorf("operations %v asked for beyond maxConcurrentOperations 1", ids)
		}
		expectPodsUntouched(t, c, uids)
	})

	t.Run("DENIED: a Warning event, nothing stops", func(t *testing.T) {
		sm.answer(shardmanagerv1.Decision_DECISION_DENIED, "shard 7 would lose its last in-sync replica", 0)
		waitApp(t, c, "denied", k.nothing, func(a *appsv1alpha1.StatefulApp) bool {
			op := podOperation(a, "kv-2")
			return op != nil && op.State == appsv1alpha1.OperationDenied && strings.Contains(op.Message, "shard 7")
		})
		waitEvent(t, c, statefulapp.OperationDeniedEvent)
		expectPodsUntouched(t, c, uids)
	})

	t.Run("the shard manager too slow to answer: unreachable, said so, nothing stops", func(t *testing.T) {
		sm.setHang(true)
		app := waitApp(t, c, "ShardManagerReachable False", k.nothing, func(a *appsv1alpha1.StatefulApp) bool {
			return hasCondition(a, appsv1alpha1.ShardManagerReachableCondition, metav1.ConditionFalse, appsv1alpha1.ShardManagerUnreachableReason) &&
				hasCondition(a, appsv1alpha1.StatefulAppProgressingCondition, metav1.ConditionTrue, appsv1alpha1.WaitingForShardManagerReason)
		})
		if op := podOperation(app, "kv-2"); op.ID != restartID || !strings.Contains(op.Message, "no answer") {
			t.Errorf("operation %+v, want %s waiting for an answer", op, restartID)
		}
		waitEvent(t, c, statefulapp.ShardManagerUnreachEvent)
		expectPodsUntouched(t, c, uids)
	})

	t.Run("APPROVED: kv-2 is made again on its PVC at 1.1, and completed once Ready; then kv-1 and kv-0", func(t *testing.T) {
		claim := getClaim(t, c, 2)
		sm.setHang(false)
		sm.answer(shardmanagerv1.Decision_DECISION_APPROVED, "leaders moved", 0)
		// The kubelets finish deletions and start pods, but keep them not Ready.
		pod := waitPod(t, c, "kv-2", func(p *corev1.Pod) bool {
			k.pass(false)
			return p.UID != uids["kv-2"] && p.Labels[appsv1alpha1.AppVersionLabel] == "1.1"
		})
		if got := getClaim(t, c, 2); got.UID != claim.UID {
			t.Errorf("kv-2 came back on another PVC")
		}
		if img := pod.Spec.Containers[0].Image; img != "registry.test/apps/kv:1.1" {
			t.Errorf("kv-2 image %s", img)
		}
		waitApp(t, c, "kv-2 waiting for its pod", k.nothing, func(a *appsv1alpha1.StatefulApp) bool {
			op := podOperation(a, "kv-2")
			return op != nil && op.ID == restartID && op.State == appsv1alpha1.OperationWaitingForPod
		})
		if done, _ := sm.done(restartID); done != 0 {
			t.Errorf("the RESTART was completed before its pod was Ready")
		}
		waitApp(t, c, "every pod on 1.1 and Ready", k.everyoneReady, func(a *appsv1alpha1.StatefulApp) bool {
			return hasCondition(a, appsv1alpha1.StatefulAppReadyCondition, metav1.ConditionTrue, appsv1alpha1.AvailableReason) &&
				a.Status.UpdatedReplicas == 3
		})
		if done, _ := sm.done(restartID); done != 1 {
			t.Errorf("the RESTART of kv-2 completed %d times, want once", done)
		}
		if order := sm.restartOrder(); !slices.Equal(order, []string{"kv-2", "kv-1", "kv-0"}) {
			t.Errorf("restarts asked for in the order %v, want kv-2, kv-1, kv-0", order)
		}
		if n := sm.mostOut(); n != 1 {
			t.Errorf("%d operations were approved and not completed at once, want at most maxConcurrentOperations 1", n)
		}
		for i := range 3 {
			if cl := getClaim(t, c, i); cl.Annotations[appsv1alpha1.OperationAnnotation] != "" {
				t.Errorf("PVC %s still records %s", cl.Name, cl.Annotations[appsv1alpha1.OperationAnnotation])
			}
		}
	})

	t.Run("a Node cordoned for a disruption: EVICT asked for, the pod annotated for the drain, not deleted", func(t *testing.T) {
		node := k.nodeOf["kv-0"]
		before := getPod(t, c, "kv-0")
		setCordon(t, c, node, true, "d1")
		pod := waitPod(t, c, "kv-0", func(p *corev1.Pod) bool { return p.Annotations[appsv1alpha1.StopApprovedAnnotation] != "" })
		approval := pod.Annotations[appsv1alpha1.StopApprovedAnnotation]
		id, deadline, ok := strings.Cut(approval, "@")
		if _, err := time.Parse(time.RFC3339, deadline); !ok || err != nil || !strings.HasPrefix(id, "team-a/kv/kv-0/Evict/") {
			t.Errorf("stop-approved %q, want <evict id>@<RFC 3339 deadline>", approval)
		}
		if req := sm.request(id); req.GetKind() != shardmanagerv1.OperationKind_OPERATION_KIND_EVICT ||
			!strings.Contains(req.GetReason(), "disruption d1") {
			t.Errorf("request %v, want an EVICT for disruption d1", req)
		}
		app := waitApp(t, c, "EVICT approved", k.nothing, func(a *appsv1alpha1.StatefulApp) bool {
			op := podOperation(a, "kv-0")
			return op != nil && op.ID == id && op.State == appsv1alpha1.OperationApproved
		})
		if op := podOperation(app, "kv-0"); !strings.Contains(op.Message, "drain") {
			t.Errorf("operation message %q does not say it waits for the drain", op.Message)
		}
		if p := getPod(t, c, "kv-0"); p.UID != before.UID || p.DeletionTimestamp != nil {
			t.Fatalf("the controller deleted the pod of an EVICT")
		}

		// The drain evicts it; it comes back on its PVC and waits for its Node.
		evict(t, c, "kv-0")
		waitPod(t, c, "kv-0", func(p *corev1.Pod) bool {
			k.pass(true)
			return p.UID != before.UID && p.DeletionTimestamp == nil
		})
		waitApp(t, c, "kv-0 waiting for its Node", k.everyoneReady, func(a *appsv1alpha1.StatefulApp) bool {
			op := podOperation(a, "kv-0")
			return op != nil && op.ID == id && op.State == appsv1alpha1.OperationWaitingForPod && strings.Contains(op.Message, "scheduled")
		})
		setCordon(t, c, node, false, "")
		waitApp(t, c, "Ready after the disruption", k.everyoneReady, func(a *appsv1alpha1.StatefulApp) bool {
			return hasCondition(a, appsv1alpha1.StatefulAppReadyCondition, metav1.ConditionTrue, appsv1alpha1.AvailableReason)
		})
		if done, _ := sm.done(id); done != 1 {
			t.Errorf("the EVICT completed %d times, want once", done)
		}
	})

	t.Run("a controller restarted mid-operation asks again for the same operation, never a second one", func(t *testing.T) {
		sm.answer(shardmanagerv1.Decision_DECISION_RETRY_AFTER, "moving replicas", time.Second)
		before := getPod(t, c, "kv-1")
		annotatePod(t, c, "kv-1", appsv1alpha1.StopRequestedAnnotation, "disk check")
		app := waitApp(t, c, "EVICT of kv-1 waiting", k.nothing, func(a *appsv1alpha1.StatefulApp) bool {
			op := podOperation(a, "kv-1")
			return op != nil && op.Kind == statefulapp.KindEvict && op.State == appsv1alpha1.OperationRetryAfter
		})
		id := podOperation(app, "kv-1").ID

		stop()
		asked := sm.asked(id)
		// The restarted controller outlives this subtest: the transport's
		// subtests run on it.
		stop = startController(parent, cfg, scheme)
		err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			return sm.asked(id) > asked, nil
		})
		if err != nil {
			t.Fatalf("the restarted controller did not ask for %s again: %v", id, err)
		}
		sm.answer(shardmanagerv1.Decision_DECISION_APPROVED, "", 0)
		waitPod(t, c, "kv-1", func(p *corev1.Pod) bool {
			return strings.HasPrefix(p.Annotations[appsv1alpha1.StopApprovedAnnotation], id+"@")
		})
		evict(t, c, "kv-1")
		waitApp(t, c, "Ready after the eviction", k.everyoneReady, func(a *appsv1alpha1.StatefulApp) bool {
			return hasCondition(a, appsv1alpha1.StatefulAppReadyCondition, metav1.ConditionTrue, appsv1alpha1.AvailableReason) &&
				podOperation(a, "kv-1") == nil
		})
		if p := getPod(t, c, "kv-1"); p.UID == before.UID {
			t.Errorf("kv-1 was not evicted")
		}
		var evicts []string
		for _, x := range sm.ids("kv-1") {
			if strings.Contains(x, "/Evict/") {
				evicts = append(evicts, x)
			}
		}
		if !slices.Equal(evicts, []string{id}) {
			t.Errorf("EVICT operations of kv-1 %v, want only %s", evicts, id)
		}
		if done, cancelled := sm.done(id); done != 1 || cancelled != 0 {
			t.Errorf("%s completed %d times and cancelled %d times, want completed once", id, done, cancelled)
		}
		// The shard manager answered in plaintext, and the app says so.
		if c := meta.FindStatusCondition(getApp(t, c).Status.Conditions, appsv1alpha1.ShardManagerReachableCondition); c == nil ||
			c.Reason != appsv1alpha1.ShardManagerAnsweredReason || !strings.Contains(c.Message, "in plaintext") {
			t.Errorf("ShardManagerReachable %+v, want Answered, in plaintext", c)
		}
	})

	testTransport(t, c, k)
}

// testTransport switches the app kv to a shard manager that serves TLS:
// a CA that did not sign its certificate fails the handshake, and says so;
// the right one (the Secret rotated) is used at once; a Secret or key that
// is missing or holds no certificate stops every call, and nothing else.
func testTransport(t *testing.T, c client.Client, k *kubelet) {
	creds, right := testutil.ServerTLS(t)
	_, wrong := testutil.ServerTLS(t)
	sm, addr := startFakeShardManager(t, creds)
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kv-sm-ca", Namespace: ns}, Data: map[string][]byte{"ca.crt": wrong}}
	testutil.MustCreate(t, c, secret)
	setSecret := func(data map[string][]byte) {
		t.Helper()
		s := &corev1.Secret{}
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(secret), s); err != nil {
			t.Fatal(err)
		}
		s.Data = data
		if err := c.Update(t.Context(), s); err != nil {
			t.Fatal(err)
		}
	}
	reachable := func(a *appsv1alpha1.StatefulApp, status metav1.ConditionStatus, reason string, says ...string) bool {
		c := meta.FindStatusCondition(a.Status.Conditions, appsv1alpha1.ShardManagerReachableCondition)
		if c == nil || c.Status != status || c.Reason != reason {
			return false
		}
		for _, s := range says {
			if !strings.Contains(c.Message, s) {
				return false
			}
		}
		return true
	}
	source := "key ca.crt of Secret " + ns + "/kv-sm-ca"

	t.Run("TLS with a CA that did not sign the shard manager's certificate: the handshake failed, said so, nothing stops", func(t *testing.T) {
		uids := podUIDs(t, c)
		updateApp(t, c, func(a *appsv1alpha1.StatefulApp) {
			a.Spec.ShardManager.Endpoint = addr
			a.Spec.ShardManager.Transport = appsv1alpha1.TransportTLS
			a.Spec.ShardManager.TLS = &appsv1alpha1.ShardManagerTLS{CASecretRef: appsv1alpha1.SecretKeyRef{Name: "kv-sm-ca"}}
		})
		annotatePod(t, c, "kv-2", appsv1alpha1.StopRequestedAnnotation, "disk check")
		app := waitApp(t, c, "TLSHandshakeFailed", k.nothing, func(a *appsv1alpha1.StatefulApp) bool {
			op := podOperation(a, "kv-2")
			return op != nil && op.State == appsv1alpha1.OperationRequested &&
				reachable(a, metav1.ConditionFalse, appsv1alpha1.ShardManagerTLSHandshakeFailedReason, source, "certificate")
		})
		if app.Status.ShardManagerTransport != appsv1alpha1.TransportTLS {
			t.Errorf("status.shardManagerTransport %q, want TLS", app.Status.ShardManagerTransport)
		}
		if ids := sm.ids("kv-2"); len(ids) != 0 {
			t.Errorf("the shard manager got requests %v through a failed handshake", ids)
		}
		expectPodsUntouched(t, c, uids)
	})

	t.Run("the Secret rotated to the right CA: re-dialled, approved over TLS", func(t *testing.T) {
		setSecret(map[string][]byte{"ca.crt": right})
		waitPod(t, c, "kv-2", func(p *corev1.Pod) bool { return p.Annotations[appsv1alpha1.StopApprovedAnnotation] != "" })
		app := waitApp(t, c, "Answered over TLS", k.nothing, func(a *appsv1alpha1.StatefulApp) bool {
			return reachable(a, metav1.ConditionTrue, appsv1alpha1.ShardManagerAnsweredReason, "over TLS", source)
		})
		if ids := sm.ids("kv-2"); len(ids) != 1 || ids[0] != podOperation(app, "kv-2").ID {
			t.Errorf("the TLS shard manager was asked %v, want the EVICT of kv-2", ids)
		}
		evict(t, c, "kv-2")
		waitApp(t, c, "Ready after the eviction", k.everyoneReady, func(a *appsv1alpha1.StatefulApp) bool {
			return hasCondition(a, appsv1alpha1.StatefulAppReadyCondition, metav1.ConditionTrue, appsv1alpha1.AvailableReason) &&
				podOperation(a, "kv-2") == nil
		})
	})

	t.Run("a missing Secret, a missing key, no certificate: CAUnavailable names them, nothing is asked or stopped", func(t *testing.T) {
		uids := podUIDs(t, c)
		asked := len(sm.ids("kv-0"))
		if err := c.Delete(t.Context(), secret); err != nil {
			t.Fatal(err)
		}
		waitApp(t, c, "CAUnavailable: no Secret", k.nothing, func(a *appsv1alpha1.StatefulApp) bool {
			return reachable(a, metav1.ConditionFalse, appsv1alpha1.ShardManagerCAUnavailableReason, source, "does not exist") &&
				a.Status.ShardManagerTransport == appsv1alpha1.TransportTLS
		})
		annotatePod(t, c, "kv-0", appsv1alpha1.StopRequestedAnnotation, "disk check")
		waitApp(t, c, "EVICT of kv-0 waiting", k.nothing, func(a *appsv1alpha1.StatefulApp) bool {
			op := podOperation(a, "kv-0")
			return op != nil && op.State == appsv1alpha1.OperationRequested
		})
		testutil.MustCreate(t, c, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kv-sm-ca", Namespace: ns},
			Data: map[string][]byte{"tls.crt": right}})
		waitApp(t, c, "CAUnavailable: no key", k.nothing, func(a *appsv1alpha1.StatefulApp) bool {
			return reachable(a, metav1.ConditionFalse, appsv1alpha1.ShardManagerCAUnavailableReason, source, "has no key ca.crt")
		})
		setSecret(map[string][]byte{"ca.crt": []byte("not a certificate")})
		waitApp(t, c, "CAUnavailable: no certificate", k.nothing, func(a *appsv1alpha1.StatefulApp) bool {
			return reachable(a, metav1.ConditionFalse, appsv1alpha1.ShardManagerCAUnavailableReason, source, "no PEM-encoded certificate")
		})
		if n := len(sm.ids("kv-0")); n != asked {
			t.Errorf("the shard manager was asked about kv-0 without a CA")
		}
		expectPodsUntouched(t, c, uids)
		if p := getPod(t, c, "kv-0"); p.Annotations[appsv1alpha1.StopApprovedAnnotation] != "" {
			t.Errorf("kv-0 approved for eviction without a CA: %v", p.Annotations)
		}

		setSecret(map[string][]byte{"ca.crt": right})
		waitPod(t, c, "kv-0", func(p *corev1.Pod) bool { return p.Annotations[appsv1alpha1.StopApprovedAnnotation] != "" })
		evict(t, c, "kv-0")
		waitApp(t, c, "Ready after the eviction", k.everyoneReady, func(a *appsv1alpha1.StatefulApp) bool {
			return hasCondition(a, appsv1alpha1.StatefulAppReadyCondition, metav1.ConditionTrue, appsv1alpha1.AvailableReason) &&
				podOperation(a, "kv-0") == nil && reachable(a, metav1.ConditionTrue, appsv1alpha1.ShardManagerAnsweredReason, "over TLS")
		})
	})

	t.Run("the schema refuses a shard manager without a transport, or with both", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			sm   appsv1alpha1.ShardManager
			want string
		}{
			{"neither", appsv1alpha1.ShardManager{Endpoint: addr}, "spec.shardManager.transport"},
			{"TLS without a CA", appsv1alpha1.ShardManager{Endpoint: addr, Transport: appsv1alpha1.TransportTLS},
				"spec.shardManager.tls (caSecretRef) is required when spec.shardManager.transport is TLS"},
			{"both", appsv1alpha1.ShardManager{Endpoint: addr, Transport: appsv1alpha1.TransportPlaintext,
				TLS: &appsv1alpha1.ShardManagerTLS{CASecretRef: appsv1alpha1.SecretKeyRef{Name: "kv-sm-ca"}}},
				"spec.shardManager.tls must not be set when spec.shardManager.transport is Plaintext"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				app := &appsv1alpha1.StatefulApp{
					ObjectMeta: metav1.ObjectMeta{Name: "refused", Namespace: ns},
					Spec: appsv1alpha1.StatefulAppSpec{Application: "kv", Version: "1.0", Replicas: 1,
						Resources:    appsv1alpha1.Resources{CPU: resource.MustParse("1"), Memory: resource.MustParse("1Gi")},
						Storage:      appsv1alpha1.Storage{Size: resource.MustParse("10Gi")},
						ShardManager: tc.sm},
				}
				err := c.Create(t.Context(), app)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("creating it: %v; want refused: %s", err, tc.want)
				}
			})
		}
	})
}

func getApp(t *testing.T, c client.Client) *appsv1alpha1.StatefulApp {
	t.Helper()
	app := &appsv1alpha1.StatefulApp{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "kv"}, app); err != nil {
		t.Fatal(err)
	}
	return app
}

// kubelet plays the scheduler and the kubelets of Nodes n1..n3: it binds
// each pod to a Node (kv-<i> to n<i+1>, and back there ever after: its data
// is there) unless the Node is cordoned, finishes the deletion of pods, and
// makes bound pods Running and Ready when asked to.
type kubelet struct {
	t      *testing.T
	c      client.Client
	nodeOf map[string]string
}

func (k *kubelet) nothing()       {}
func (k *kubelet) everyoneReady() { k.pass(true) }

func (k *kubelet) pass(ready bool) {
	t, c := k.t, k.c
	t.Helper()
	pods := &corev1.PodList{}
	if err := c.List(t.Context(), pods, client.InNamespace(ns), client.MatchingLabels(statefulapp.Selector("kv"))); err != nil {
		t.Fatal(err)
	}
	for i := range pods.Items {
		pod := &pods.Items[i]
		if pod.DeletionTimestamp != nil {
			if err := c.Delete(t.Context(), pod, client.GracePeriodSeconds(0)); client.IgnoreNotFound(err) != nil {
				t.Fatal(err)
			}
			continue
		}
		node := k.nodeOf[pod.Name]
		if node == "" {
			var ordinal int
			if _, err := fmt.Sscanf(pod.Name, "kv-%d", &ordinal); err != nil {
				t.Fatal(err)
			}
			node = fmt.Sprintf("n%d", ordinal%3+1)
			k.nodeOf[pod.Name] = node
		}
		if pod.Spec.NodeName == "" {
			n := &corev1.Node{}
			if err := c.Get(t.Context(), client.ObjectKey{Name: node}, n); err != nil {
				t.Fatal(err)
			}
			if n.Spec.Unschedulable {
				continue
			}
			binding := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: ns},
				Target: corev1.ObjectReference{Kind: "Node", Name: node}}
			if err := c.SubResource("binding").Create(t.Context(), pod, binding); err != nil {
				t.Fatalf("binding %s: %v", pod.Name, err)
			}
			continue
		}
		if !ready || pod.Status.Phase == corev1.PodRunning {
			continue
		}
		pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue},
		}}
		if err := c.Status().Update(t.Context(), pod); err != nil && !isConflictOrGone(err) {
			t.Fatal(err)
		}
	}
}

func isConflictOrGone(err error) bool {
	return client.IgnoreNotFound(err) == nil || strings.Contains(err.Error(), "the object has been modified")
}

func startController(t *testing.T, cfg *rest.Config, scheme *runtime.Scheme) (stop func()) {
	t.Helper()
	mgr := testutil.NewAppsManager(t, cfg, scheme)
	// Named anew each time: -count=N and the restart run several in one process.
	r, err := statefulapp.New(statefulapp.Options{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(),
		Recorder: mgr.GetEventRecorder("statefulapp-controller"), Cluster: fmt.Sprintf("envtest-%d", time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}
	t.Cleanup(func() { stop() })
	return stop
}

func platform() *appsv1alpha1.AppPlatform {
	small := appsv1alpha1.Resources{CPU: resource.MustParse("50m"), Memory: resource.MustParse("64Mi")}
	return &appsv1alpha1.AppPlatform{
		ObjectMeta: metav1.ObjectMeta{Name: appsv1alpha1.PlatformName},
		Spec: appsv1alpha1.AppPlatformSpec{
			ImageRepository: "registry.test/apps",
			Sidecars:        []appsv1alpha1.InfraContainer{{Name: "log-shipper", Image: "registry.test/platform/log-shipper:1.0", Resources: small}},
		},
	}
}

// waitApp waits, playing the kubelets with each look, for the app's status
// to satisfy ok.
func waitApp(t *testing.T, c client.Client, what string, kubelets func(), ok func(*appsv1alpha1.StatefulApp) bool) *appsv1alpha1.StatefulApp {
	t.Helper()
	app := &appsv1alpha1.StatefulApp{}
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		kubelets()
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: "kv"}, app); err != nil {
			return false, err
		}
		return ok(app), nil
	})
	if err != nil {
		t.Fatalf("app not %s: %v; status %+v", what, err, app.Status)
	}
	return app
}

func waitPod(t *testing.T, c client.Client, name string, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{}
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, pod); err != nil {
			return false, client.IgnoreNotFound(err)
		}
		return ok(pod), nil
	})
	if err != nil {
		t.Fatalf("pod %s: %v; %+v", name, err, pod.ObjectMeta)
	}
	return pod
}

func waitEvent(t *testing.T, c client.Client, reason string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		events := &corev1.EventList{}
		if err := c.List(ctx, events, client.InNamespace(ns)); err != nil {
			return false, err
		}
		return slices.ContainsFunc(events.Items, func(e corev1.Event) bool {
			return e.InvolvedObject.Kind == "StatefulApp" && e.InvolvedObject.Name == "kv" && e.Reason == reason && e.Type == corev1.EventTypeWarning
		}), nil
	})
	if err != nil {
		t.Errorf("no Warning %s event about the app: %v", reason, err)
	}
}

func getPod(t *testing.T, c client.Client, name string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

func getClaim(t *testing.T, c client.Client, ordinal int) *corev1.PersistentVolumeClaim {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("data-kv-%d", ordinal)}, pvc); err != nil {
		t.Fatal(err)
	}
	return pvc
}

func podUIDs(t *testing.T, c client.Client) map[string]types.UID {
	t.Helper()
	uids := map[string]types.UID{}
	for i := range 3 {
		name := fmt.Sprintf("kv-%d", i)
		uids[name] = getPod(t, c, name).UID
	}
	return uids
}

// expectPodsUntouched: every pod is the same one, not being deleted.
func expectPodsUntouched(t *testing.T, c client.Client, uids map[string]types.UID) {
	t.Helper()
	for name, uid := range uids {
		if p := getPod(t, c, name); p.UID != uid || p.DeletionTimestamp != nil || p.Annotations[appsv1alpha1.StopApprovedAnnotation] != "" {
			t.Errorf("pod %s was stopped or approved for eviction without an approval", name)
		}
	}
}

func updateApp(t *testing.T, c client.Client, change func(*appsv1alpha1.StatefulApp)) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		app := &appsv1alpha1.StatefulApp{}
		if err := c.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "kv"}, app); err != nil {
			return err
		}
		change(app)
		return c.Update(t.Context(), app)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func annotatePod(t *testing.T, c client.Client, name, key, value string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod := getPod(t, c, name)
		pod.Annotations[key] = value
		return c.Update(t.Context(), pod)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// setCordon cordons (for a disruption, when set) or uncordons a Node, as the
// cluster manager does.
func setCordon(t *testing.T, c client.Client, name string, cordon bool, disruption string) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		node := &corev1.Node{}
		if err := c.Get(t.Context(), client.ObjectKey{Name: name}, node); err != nil {
			return err
		}
		node.Spec.Unschedulable = cordon
		if node.Annotations == nil {
			node.Annotations = map[string]string{}
		}
		if disruption != "" {
			node.Annotations[fleetv1alpha1.CordonedForAnnotation] = disruption
		} else {
			delete(node.Annotations, fleetv1alpha1.CordonedForAnnotation)
		}
		return c.Update(t.Context(), node)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// evict plays the drain: it evicts the pod through the Eviction API.
func evict(t *testing.T, c client.Client, name string) {
	t.Helper()
	pod := getPod(t, c, name)
	if err := c.SubResource("eviction").Create(t.Context(), pod, &policyv1.Eviction{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
	}); err != nil {
		t.Fatalf("evicting %s: %v", name, err)
	}
}

func podOperation(a *appsv1alpha1.StatefulApp, pod string) *appsv1alpha1.PodOperation {
	for _, p := range a.Status.Pods {
		if p.Name == pod {
			return p.Operation
		}
	}
	return nil
}

func hasCondition(a *appsv1alpha1.StatefulApp, typ string, status metav1.ConditionStatus, reason string) bool {
	c := meta.FindStatusCondition(a.Status.Conditions, typ)
	return c != nil && c.Status == status && c.Reason == reason && c.ObservedGeneration == a.Generation
}
