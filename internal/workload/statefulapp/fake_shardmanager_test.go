package statefulapp_test

import (
	"context"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

// fakeShardManager is a shard manager whose answers the test scripts,
// served by a real gRPC server on 127.0.0.1. It approves everything until
// told otherwise, and remembers every call.
type fakeShardManager struct {
	shardmanagerv1.UnimplementedShardManagerServiceServer

	mu       sync.Mutex
	response *shardmanagerv1.RequestOperationResponse
	// hang: calls get no answer until the caller gives up.
	hang bool
	// hung are the deadlines of the calls that hung (zero: the call had none).
	hung      []time.Time
	requests  []*shardmanagerv1.Operation
	completed []string
	cancelled []string
	// out are the approved operations not completed nor cancelled yet;
	// maxOut the most there ever were at once.
	out    map[string]bool
	maxOut int
	// conns counts the connections the server accepted.
	conns atomic.Int32
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int32
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// startFakeShardManager serves a fake shard manager until the test ends
// and returns it with its address; opts may make it serve TLS.
func startFakeShardManager(t *testing.T, opts ...grpc.ServerOption) (*fakeShardManager, string) {
	t.Helper()
	f := &fakeShardManager{out: map[string]bool{},
		response: &shardmanagerv1.RequestOperationResponse{Decision: shardmanagerv1.Decision_DECISION_APPROVED}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(opts...)
	shardmanagerv1.RegisterShardManagerServiceServer(srv, f)
	go func() { _ = srv.Serve(countingListener{Listener: lis, n: &f.conns}) }()
	t.Cleanup(srv.Stop)
	return f, lis.Addr().String()
}

// answer sets the answer to every request from now on.
func (f *fakeShardManager) answer(d shardmanagerv1.Decision, reason string, retryAfter time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.response = &shardmanagerv1.RequestOperationResponse{Decision: d, Reason: reason}
	if retryAfter > 0 {
		f.response.RetryAfter = durationpb.New(retryAfter)
	}
}

// setHang makes calls hang (true) or answer again (false).
func (f *fakeShardManager) setHang(hang bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hang = hang
}

func (f *fakeShardManager) hanging() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hang
}

func (f *fakeShardManager) RequestOperation(ctx context.Context, req *shardmanagerv1.RequestOperationRequest) (*shardmanagerv1.RequestOperationResponse, error) {
	if f.hanging() {
		deadline, _ := ctx.Deadline()
		f.mu.Lock()
		f.hung = append(f.hung, deadline)
		f.mu.Unlock()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	op := req.GetOperation()
	f.requests = append(f.requests, proto.Clone(op).(*shardmanagerv1.Operation))
	if f.response.GetDecision() == shardmanagerv1.Decision_DECISION_APPROVED {
		f.out[op.GetOperationId()] = true
		f.maxOut = max(f.maxOut, len(f.out))
	}
	return proto.Clone(f.response).(*shardmanagerv1.RequestOperationResponse), nil
}

func (f *fakeShardManager) CompleteOperation(ctx context.Context, req *shardmanagerv1.CompleteOperationRequest) (*shardmanagerv1.CompleteOperationResponse, error) {
	if f.hanging() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.completed = append(f.completed, req.GetOperationId())
	delete(f.out, req.GetOperationId())
	return &shardmanagerv1.CompleteOperationResponse{}, nil
}

func (f *fakeShardManager) CancelOperation(ctx context.Context, req *shardmanagerv1.CancelOperationRequest) (*shardmanagerv1.CancelOperationResponse, error) {
	if f.hanging() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = append(f.cancelled, req.GetOperationId())
	delete(f.out, req.GetOperationId())
	return &shardmanagerv1.CancelOperationResponse{}, nil
}

// ids are the distinct operation ids asked for about a pod, in the order
// first asked.
func (f *fakeShardManager) ids(pod string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, op := range f.requests {
		if op.GetPod() == pod && !slices.Contains(ids, op.GetOperationId()) {
			ids = append(ids, op.GetOperationId())
		}
	}
	return ids
}

// hungCalls are the deadlines of the calls that got no answer.
func (f *fakeShardManager) hungCalls() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.hung)
}

// asked counts the requests for an operation.
func (f *fakeShardManager) asked(id string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, op := range f.requests {
		if op.GetOperationId() == id {
			n++
		}
	}
	return n
}

// request is the last request for an operation, nil when none.
func (f *fakeShardManager) request(id string) *shardmanagerv1.Operation {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.requests) - 1; i >= 0; i-- {
		if f.requests[i].GetOperationId() == id {
			return f.requests[i]
		}
	}
	return nil
}

// done says whether the operation was completed (or cancelled), and how often.
func (f *fakeShardManager) done(id string) (completed, cancelled int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.completed {
		if c == id {
			completed++
		}
	}
	for _, c := range f.cancelled {
		if c == id {
			cancelled++
		}
	}
	return completed, cancelled
}

// restartOrder are the pods whose RESTART operations were asked for, in order.
func (f *fakeShardManager) restartOrder() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var pods, seen []string
	for _, op := range f.requests {
		if op.GetKind() == shardmanagerv1.OperationKind_OPERATION_KIND_RESTART && !slices.Contains(seen, op.GetOperationId()) {
			seen = append(seen, op.GetOperationId())
			pods = append(pods, op.GetPod())
		}
	}
	return pods
}

func (f *fakeShardManager) mostOut() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxOut
}
