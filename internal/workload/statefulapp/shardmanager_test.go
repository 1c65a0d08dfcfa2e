package statefulapp_test

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/strata-dev/strata/internal/workload/statefulapp"
	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

func TestConnections(t *testing.T) {
	fake, addr := startFakeShardManager(t)
	conns := statefulapp.NewConnections()
	t.Cleanup(func() { _ = conns.Close() })
	ask := func(endpoint string, timeout time.Duration) (*shardmanagerv1.RequestOperationResponse, error) {
		c, err := conns.Client(endpoint)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		defer cancel()
		return c.RequestOperation(ctx, &shardmanagerv1.RequestOperationRequest{Operation: &shardmanagerv1.Operation{OperationId: "op", Pod: "kv-0"}})
	}

	t.Run("an answer", func(t *testing.T) {
		resp, err := ask(addr, 5*time.Second)
		if err != nil || resp.GetDecision() != shardmanagerv1.Decision_DECISION_APPROVED {
			t.Fatalf("answer %v, %v; want approved", resp, err)
		}
		if n := fake.asked("op"); n != 1 {
			t.Errorf("the shard manager was asked %d times, want 1", n)
		}
	})

	t.Run("a slow shard manager: the call ends at its timeout, without an answer", func(t *testing.T) {
		fake.setHang(true)
		before := fake.asked("op")
		_, err := ask(addr, time.Second)
		if status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("error %v, want DeadlineExceeded", err)
		}
		// The shard manager got the call with its deadline (so it stops
		// working on it too), and answered nothing.
		if hung := fake.hungCalls(); len(hung) != 1 || hung[0].IsZero() {
			t.Errorf("the shard manager saw hung calls with deadlines %v, want one call with a deadline", hung)
		}
		if n := fake.asked("op"); n != before {
			t.Errorf("the shard manager answered %d more requests, want none", n-before)
		}
		// The connection still serves once the shard manager answers again.
		fake.setHang(false)
		if resp, err := ask(addr, 5*time.Second); err != nil || resp.GetDecision() != shardmanagerv1.Decision_DECISION_APPROVED {
			t.Errorf("after the timeout: answer %v, %v; want approved", resp, err)
		}
	})

	t.Run("nothing listening: Unavailable, at once", func(t *testing.T) {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := lis.Addr().String()
		_ = lis.Close()
		_, err = ask(closed, 5*time.Second)
		if status.Code(err) != codes.Unavailable {
			t.Errorf("error %v, want Unavailable", err)
		}
	})

	t.Run("one connection per endpoint, closed with Close", func(t *testing.T) {
		for range 3 {
			if _, err := ask(addr, 5*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		if n := fake.conns.Load(); n != 1 {
			t.Errorf("the shard manager accepted %d connections, want 1", n)
		}
		if err := conns.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := conns.Client(addr); err == nil {
			t.Error("a client after Close, want an error")
		}
	})
}
