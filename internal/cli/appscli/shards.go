package appscli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/workload/statefulapp"
	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

// shardManagerTimeout bounds the call of a StatefulApp's shard manager:
// status shows the rest without its shards rather than wait.
const shardManagerTimeout = 3 * time.Second

// Shards is what a StatefulApp's shard manager says of its shards
// (DescribeShards), as status shows it and prints it with -o json|yaml.
type Shards struct {
	// Shards in all, the replication the system wants and the fewest
	// in-sync replicas a shard may have.
	Shards            int32 `json:"shards"`
	ReplicationFactor int32 `json:"replicationFactor"`
	MinInSync         int32 `json:"minInSync"`
	// Pods are the replicas each pod holds.
	Pods []PodShards `json:"pods,omitempty"`
	// Operations the shard manager holds now (approved or being prepared).
	Operations []ShardOperation `json:"operations,omitempty"`
}

// PodShards are the replicas one pod holds.
type PodShards struct {
	Pod string `json:"pod"`
	// Available: the pod's replicas are being served.
	Available bool      `json:"available"`
	Replicas  []Replica `json:"replicas,omitempty"`
}

// Replica is one replica of a shard.
type Replica struct {
	Shard int32 `json:"shard"`
	// Role is leader or follower.
	Role   string `json:"role"`
	InSync bool   `json:"inSync"`
}

// ShardOperation is an operation the shard manager holds.
type ShardOperation struct {
	ID       string       `json:"id"`
	Pod      string       `json:"pod"`
	Kind     string       `json:"kind"`
	Reason   string       `json:"reason,omitempty"`
	Deadline *metav1.Time `json:"deadline,omitempty"`
}

// Roles of a replica.
const (
	leaderRole   = "leader"
	followerRole = "follower"
)

// shardsRead is what was asked of one StatefulApp's shard manager: its
// shards, or why it could not say.
type shardsRead struct {
	shards *Shards
	err    string
}

// describeAll asks the shard manager of each StatefulApp for its shards,
// in parallel, each call bounded by shardManagerTimeout, dialled as the
// app's spec says (the CA read by reader, as the caller). The result is
// aligned with apps.
func describeAll(ctx context.Context, reader client.Reader, apps []appsv1alpha1.StatefulApp) []shardsRead {
	out := make([]shardsRead, len(apps))
	if len(apps) == 0 {
		return out
	}
	conns := statefulapp.NewConnections()
	defer func() { _ = conns.Close() }()
	var wg sync.WaitGroup
	for i := range apps {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(ctx, shardManagerTimeout)
			defer cancel()
			out[i] = describeShards(ctx, reader, conns, &apps[i])
		})
	}
	wg.Wait()
	return out
}

// describeShards calls DescribeShards of the app's shard manager.
func describeShards(ctx context.Context, reader client.Reader, conns *statefulapp.Connections, app *appsv1alpha1.StatefulApp) shardsRead {
	target, err := shardManagerTarget(ctx, reader, app)
	if err != nil {
		return shardsRead{err: "shard manager not asked: " + err.Error()}
	}
	sm, err := conns.Client(client.ObjectKeyFromObject(app), target)
	if err != nil {
		return shardsRead{err: fmt.Sprintf("shard manager unreachable: %v", err)}
	}
	resp, err := sm.DescribeShards(ctx, &shardmanagerv1.DescribeShardsRequest{Namespace: app.Namespace, App: app.Name})
	if err != nil {
		return shardsRead{err: callError(target.Endpoint, err)}
	}
	return shardsRead{shards: fromProto(resp)}
}

// shardManagerTarget is how the app's shard manager is dialled: as its
// spec says (never in plaintext unless it says Plaintext), verified with
// the CA of its Secret, which the caller must be allowed to read.
func shardManagerTarget(ctx context.Context, reader client.Reader, app *appsv1alpha1.StatefulApp) (statefulapp.Target, error) {
	sm := app.Spec.ShardManager
	target := statefulapp.Target{Endpoint: sm.Endpoint}
	transport, err := statefulapp.TransportOf(sm)
	if err != nil || transport == appsv1alpha1.TransportPlaintext {
		return target, err
	}
	ref := sm.TLS.CASecretRef
	key, source := statefulapp.CAKey(ref), statefulapp.CASource(app.Namespace, ref)
	secret := &corev1.Secret{}
	if err := reader.Get(ctx, client.ObjectKey{Namespace: app.Namespace, Name: ref.Name}, secret); err != nil {
		if apierrors.IsForbidden(err) {
			return target, fmt.Errorf("you may not read its CA, %s (spec.shardManager.tls.caSecretRef): %w", source, err)
		}
		return target, fmt.Errorf("reading its CA, %s: %w", source, err)
	}
	ca := secret.Data[key]
	if _, err := statefulapp.ParseCA(ca); err != nil {
		return target, fmt.Errorf("its CA, %s: %w", source, err)
	}
	target.TLS = &statefulapp.TargetTLS{CA: ca, ServerName: sm.TLS.ServerName, Source: source}
	return target, nil
}

// callError says why the shard manager did not answer.
func callError(endpoint string, err error) string {
	if hs := (*statefulapp.HandshakeError)(nil); errors.As(err, &hs) {
		return "shard manager unreachable: " + hs.Error()
	}
	st := status.Convert(err)
	switch st.Code() {
	case codes.DeadlineExceeded:
		return fmt.Sprintf("shard manager unreachable: %s did not answer within %s", endpoint, shardManagerTimeout)
	case codes.Unavailable, codes.Canceled:
		return fmt.Sprintf("shard manager unreachable: %s: %s", endpoint, st.Message())
	}
	return fmt.Sprintf("shard manager at %s failed DescribeShards: %s: %s", endpoint, st.Code(), st.Message())
}

func fromProto(resp *shardmanagerv1.DescribeShardsResponse) *Shards {
	s := &Shards{Shards: resp.GetShards(), ReplicationFactor: resp.GetReplicationFactor(), MinInSync: resp.GetMinInSync()}
	for _, p := range resp.GetPods() {
		ps := PodShards{Pod: p.GetPod(), Available: p.GetAvailable()}
		for _, r := range p.GetReplicas() {
			role := "unknown"
			switch r.GetRole() {
			case shardmanagerv1.ReplicaRole_REPLICA_ROLE_LEADER:
				role = leaderRole
			case shardmanagerv1.ReplicaRole_REPLICA_ROLE_FOLLOWER:
				role = followerRole
			}
			ps.Replicas = append(ps.Replicas, Replica{Shard: r.GetShard(), Role: role, InSync: r.GetInSync()})
		}
		slices.SortFunc(ps.Replicas, func(a, b Replica) int { return cmp.Compare(a.Shard, b.Shard) })
		s.Pods = append(s.Pods, ps)
	}
	for _, op := range resp.GetOperations() {
		so := ShardOperation{ID: op.GetOperationId(), Pod: op.GetPod(), Kind: operationKind(op.GetKind()), Reason: op.GetReason()}
		if op.GetDeadline() != nil {
			so.Deadline = &metav1.Time{Time: op.GetDeadline().AsTime()}
		}
		s.Operations = append(s.Operations, so)
	}
	return s
}

// operationKind names a kind as the StatefulApp's status does.
func operationKind(k shardmanagerv1.OperationKind) string {
	switch k {
	case shardmanagerv1.OperationKind_OPERATION_KIND_RESTART:
		return "Restart"
	case shardmanagerv1.OperationKind_OPERATION_KIND_EVICT:
		return "Evict"
	case shardmanagerv1.OperationKind_OPERATION_KIND_MOVE:
		return "Move"
	case shardmanagerv1.OperationKind_OPERATION_KIND_REMOVE:
		return "Remove"
	}
	return "Unknown"
}

// pod returns the shards of a pod, nil when the shard manager named none.
func (s *Shards) pod(name string) *PodShards {
	for i := range s.Pods {
		if s.Pods[i].Pod == name {
			return &s.Pods[i]
		}
	}
	return nil
}

// maxListed caps the shards a summary names.
const maxListed = 8

// shardList reads "3, 7, 12" or "3, 7, ... and 5 more".
func shardList(ids []int32) string {
	parts := make([]string, 0, min(len(ids), maxListed))
	for _, id := range ids[:min(len(ids), maxListed)] {
		parts = append(parts, fmt.Sprint(id))
	}
	s := strings.Join(parts, ", ")
	if more := len(ids) - maxListed; more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}

// podShardsLine sums up a pod's replicas: "12 shards (4 leader), all in
// sync", or which are not.
func podShardsLine(p *PodShards) string {
	if p == nil {
		return "no shards (the shard manager names no replica on it)"
	}
	leaders := 0
	var outOfSync []int32
	for _, r := range p.Replicas {
		if r.Role == leaderRole {
			leaders++
		}
		if !r.InSync {
			outOfSync = append(outOfSync, r.Shard)
		}
	}
	s := fmt.Sprintf("%s (%d leader)", plural(len(p.Replicas), "shard"), leaders)
	switch {
	case len(p.Replicas) == 0:
		s = "no shards"
	case len(outOfSync) == 0:
		s += ", all in sync"
	default:
		s += fmt.Sprintf(", %d out of sync: %s", len(outOfSync), shardList(outOfSync))
	}
	if !p.Available {
		s += "; not served (the pod is not available)"
	}
	return s
}

// appShardsLine sums up the app's shards: their number and replication,
// the shards with fewer in-sync replicas than the minimum, and the
// operations the shard manager holds.
func appShardsLine(s *Shards) string {
	inSync := map[int32]int32{}
	for _, p := range s.Pods {
		for _, r := range p.Replicas {
			if _, ok := inSync[r.Shard]; !ok {
				inSync[r.Shard] = 0
			}
			if r.InSync {
				inSync[r.Shard]++
			}
		}
	}
	line := fmt.Sprintf("%s, replication %d, min in-sync %d", plural(int(s.Shards), "shard"), s.ReplicationFactor, s.MinInSync)
	var below []string
	for _, shard := range slices.Sorted(maps.Keys(inSync)) {
		if inSync[shard] < s.MinInSync {
			below = append(below, fmt.Sprintf("%d (%d in sync)", shard, inSync[shard]))
		}
	}
	switch {
	case len(below) > 0:
		listed := strings.Join(below[:min(len(below), maxListed)], ", ")
		if more := len(below) - maxListed; more > 0 {
			listed += fmt.Sprintf(" and %d more", more)
		}
		line += fmt.Sprintf("; %d below min in-sync: %s", len(below), listed)
	case len(inSync) > 0:
		line += fmt.Sprintf("; every shard has %d or more in sync", s.MinInSync)
	}
	if missing := int(s.Shards) - len(inSync); missing > 0 {
		line += fmt.Sprintf("; %s on no pod", plural(missing, "shard"))
	}
	if len(s.Operations) > 0 {
		ops := make([]string, 0, len(s.Operations))
		for _, op := range s.Operations {
			ops = append(ops, fmt.Sprintf("%s of %s (%s)", op.Kind, op.Pod, op.ID))
		}
		line += fmt.Sprintf("\nthe shard manager holds %s: %s", plural(len(ops), "operation"), strings.Join(ops, ", "))
	}
	return line
}

// plural reads "1 shard", "2 shards".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
