package refstorecli

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/testutil"
	refstorev1 "github.com/strata-dev/strata/proto/strata/refstore/v1"
	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

func TestServeFlags(t *testing.T) {
	required := []string{"--namespace=shop", "--app=kv"}
	cases := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "defaults", args: required},
		{name: "no namespace", args: []string{"--app=kv"}, wantErr: "--namespace is required"},
		{name: "no app", args: []string{"--namespace=shop"}, wantErr: "--app is required"},
		{name: "min in sync above replication", args: append([]string{"--replication=2", "--min-in-sync=3"}, required...),
			wantErr: "min-in-sync must be 1 to the replication (2), not 3"},
		{name: "no shards", args: append([]string{"--shards=-1"}, required...), wantErr: "shards must be 1 to 10000, not -1"},
		{name: "not loopback", args: append([]string{"--listen=0.0.0.0:7480"}, required...), wantErr: "give --insecure to accept anyone"},
		{name: "not loopback, insecure", args: append([]string{"--listen=0.0.0.0:7480", "--insecure"}, required...)},
		{name: "not host:port", args: append([]string{"--listen=7480"}, required...), wantErr: `--listen "7480" is not host:port`},
		{name: "negative hold", args: append([]string{"--restart-hold=-1s"}, required...), wantErr: "restart hold must not be negative, not -1s"},
		{name: "TLS", args: append([]string{"--tls-cert-file=sm.crt", "--tls-key-file=sm.key"}, required...)},
		{name: "a certificate without its key", args: append([]string{"--tls-cert-file=sm.crt"}, required...),
			wantErr: `--tls-cert-file "sm.crt" and --tls-key-file "": give both (TLS) or neither (plaintext)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := newServe()
			if err := cmd.ParseFlags(tc.args); err != nil {
				t.Fatal(err)
			}
			f := &serveFlags{}
			fs := cmd.Flags()
			f.namespace, _ = fs.GetString("namespace")
			f.app, _ = fs.GetString("app")
			f.shards, _ = fs.GetInt("shards")
			f.replication, _ = fs.GetInt("replication")
			f.minInSync, _ = fs.GetInt("min-in-sync")
			f.listen, _ = fs.GetString("listen")
			f.insecure, _ = fs.GetBool("insecure")
			f.tlsCertFile, _ = fs.GetString("tls-cert-file")
			f.tlsKeyFile, _ = fs.GetString("tls-key-file")
			f.restartHold, _ = fs.GetDuration("restart-hold")
			f.approvalGrace, _ = fs.GetDuration("approval-grace")
			err := f.validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("validate = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("validate = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// syncBuffer is a writer for the command's logs.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServe runs `strata refstore serve` against an API server whose pods'
// status the test writes: it prints where it serves, follows the pods
// (Ready or not, the StatefulApp's replicas), answers both services, and
// stops cleanly.
func TestServe(t *testing.T) {
	env, cfg := testutil.StartEnv(t)
	kube := kubernetes.NewForConfigOrDie(cfg)
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), appsv1alpha1.AddToScheme(scheme)); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, testutil.AdminKubeconfig(t, env), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	testutil.MustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}})
	testutil.MustCreate(t, c, &appsv1alpha1.StatefulApp{
		ObjectMeta: metav1.ObjectMeta{Name: "kv", Namespace: "shop"},
		Spec: appsv1alpha1.StatefulAppSpec{
			Application: "kv", Version: "1.0", Replicas: 3,
			Resources:    appsv1alpha1.Resources{CPU: resource.MustParse("1"), Memory: resource.MustParse("1Gi")},
			Storage:      appsv1alpha1.Storage{Size: resource.MustParse("10Gi")},
			ShardManager: appsv1alpha1.ShardManager{Endpoint: "127.0.0.1:7480", Transport: appsv1alpha1.TransportPlaintext},
		},
	})
	// kv-5 is a pod past the StatefulApp's replicas (a scale-down under way):
	// it holds no shard.
	for _, name := range []string{"kv-0", "kv-1", "kv-2", "kv-5"} {
		testutil.MustCreate(t, c, &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: "data-" + name, Namespace: "shop"},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")}}},
		})
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: map[string]string{appsv1alpha1.StatefulAppLabel: "kv"}},
			Spec: corev1.PodSpec{NodeName: "node-" + name, Containers: []corev1.Container{{Name: "kv", Image: "kv:1.0"}},
				Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-" + name}}}}},
		}
		testutil.MustCreate(t, c, pod)
		setReady(t, kube, name, true)
	}

	cmdCtx, stop := context.WithCancel(ctx)
	out, outW := io.Pipe()
	logs := &syncBuffer{}
	cmd := NewCommand()
	cmd.SetOut(outW)
	cmd.SetErr(logs)
	cmd.SetArgs([]string{"serve", "--kubeconfig", kubeconfig, "--namespace", "shop", "--app", "kv", "--shards", "6",
		"--listen", "127.0.0.1:0", "--restart-hold", "0s"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(cmdCtx); _ = outW.Close() }()

	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the first line: %v (logs: %s)", err, logs.String())
	}
	m := regexp.MustCompile(`^Serving strata\.shardmanager\.v1\.ShardManagerService and strata\.refstore\.v1\.RefStoreService for StatefulApp shop/kv on (127\.0\.0\.1:\d+)\n$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("first line %q does not say where it serves", line)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	conn, err := grpc.NewClient(m[1], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close() //nolint:errcheck // test
	sm := shardmanagerv1.NewShardManagerServiceClient(conn)
	kv := refstorev1.NewRefStoreServiceClient(conn)

	describe := func() map[string]string {
		resp, err := sm.DescribeShards(ctx, &shardmanagerv1.DescribeShardsRequest{Namespace: "shop", App: "kv"})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, p := range resp.GetPods() {
			inSync := 0
			for _, r := range p.GetReplicas() {
				if r.GetInSync() {
					inSync++
				}
			}
			got[p.GetPod()] = strings.Join([]string{map[bool]string{true: "available", false: "unavailable"}[p.GetAvailable()],
				strconv.Itoa(len(p.GetReplicas())) + " replicas", strconv.Itoa(inSync) + " in sync"}, ", ")
		}
		return got
	}
	waitFor(t, "every pod's replicas in sync", func() bool {
		got := describe()
		return got["kv-0"] == "available, 6 replicas, 6 in sync" && got["kv-1"] == "available, 6 replicas, 6 in sync" &&
			got["kv-2"] == "available, 6 replicas, 6 in sync" && got["kv-5"] == "available, 0 replicas, 0 in sync"
	})
	if _, err := kv.Put(ctx, &refstorev1.PutRequest{Key: "greeting", Value: []byte("hello")}); err != nil {
		t.Fatal(err)
	}
	if resp, err := kv.Get(ctx, &refstorev1.GetRequest{Key: "greeting"}); err != nil || string(resp.GetValue()) != "hello" {
		t.Fatalf("Get = %v, %v; want hello", resp, err)
	}

	setReady(t, kube, "kv-1", false)
	waitFor(t, "kv-1 unavailable", func() bool { return describe()["kv-1"] == "unavailable, 6 replicas, 0 in sync" })
	resp, err := sm.RequestOperation(ctx, &shardmanagerv1.RequestOperationRequest{Operation: &shardmanagerv1.Operation{
		OperationId: "shop/kv/kv-2/RESTART/1", Namespace: "shop", App: "kv", Pod: "kv-2",
		Kind: shardmanagerv1.OperationKind_OPERATION_KIND_RESTART, Deadline: timestamppb.New(time.Now().Add(time.Minute)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetDecision() != shardmanagerv1.Decision_DECISION_DENIED ||
		resp.GetReason() != "shards 0, 1, 2, 3, 4, 5 have 1 in-sync replica besides kv-2 (kv-1 not Ready); 2 needed" {
		t.Fatalf("RequestOperation = %s %q, want DENIED because kv-1 is not Ready", resp.GetDecision(), resp.GetReason())
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	if !strings.Contains(logs.String(), "Stopped the reference store") {
		t.Errorf("logs do not say it stopped:\n%s", logs.String())
	}
}

func setReady(t *testing.T, kube kubernetes.Interface, name string, ready bool) {
	t.Helper()
	pod, err := kube.CoreV1().Pods("shop").Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	pod.Status.Phase = corev1.PodRunning
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}
	if _, err := kube.CoreV1().Pods("shop").UpdateStatus(t.Context(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
