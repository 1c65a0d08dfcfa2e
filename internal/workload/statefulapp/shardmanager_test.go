package statefulapp_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/types"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	"github.com/strata-dev/strata/internal/testutil"
	"github.com/strata-dev/strata/internal/workload/statefulapp"
	shardmanagerv1 "github.com/strata-dev/strata/proto/strata/shardmanager/v1"
)

var appKV = types.NamespacedName{Namespace: "store", Name: "kv"}

// ask asks the shard manager at target, for app, about an operation.
func ask(t *testing.T, conns *statefulapp.Connections, app types.NamespacedName, target statefulapp.Target, timeout time.Duration) (*shardmanagerv1.RequestOperationResponse, error) {
	t.Helper()
	c, err := conns.Client(app, target)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	return c.RequestOperation(ctx, &shardmanagerv1.RequestOperationRequest{Operation: &shardmanagerv1.Operation{OperationId: "op", Pod: "kv-0"}})
}

func TestConnections(t *testing.T) {
	fake, addr := startFakeShardManager(t)
	conns := statefulapp.NewConnections()
	t.Cleanup(func() { _ = conns.Close() })
	plain := func(endpoint string) statefulapp.Target { return statefulapp.Target{Endpoint: endpoint} }

	t.Run("an answer", func(t *testing.T) {
		resp, err := ask(t, conns, appKV, plain(addr), 5*time.Second)
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
		_, err := ask(t, conns, appKV, plain(addr), time.Second)
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
		if resp, err := ask(t, conns, appKV, plain(addr), 5*time.Second); err != nil || resp.GetDecision() != shardmanagerv1.Decision_DECISION_APPROVED {
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
		_, err = ask(t, conns, types.NamespacedName{Namespace: "store", Name: "elsewhere"}, plain(closed), 5*time.Second)
		var hs *statefulapp.HandshakeError
		if status.Code(err) != codes.Unavailable || errors.As(err, &hs) {
			t.Errorf("error %v, want Unavailable (not a handshake failure)", err)
		}
	})

	t.Run("one connection per endpoint, shared by apps, closed with Close", func(t *testing.T) {
		for _, app := range []string{"kv", "kv", "other"} {
			if _, err := ask(t, conns, types.NamespacedName{Namespace: "store", Name: app}, plain(addr), 5*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		if n := fake.conns.Load(); n != 1 {
			t.Errorf("the shard manager accepted %d connections, want 1", n)
		}
		if err := conns.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := conns.Client(appKV, plain(addr)); err == nil {
			t.Error("a client after Close, want an error")
		}
	})
}

// tlsShardManager serves a fake shard manager over TLS with a certificate
// for 127.0.0.1 from a CA of its own, returned as PEM.
func tlsShardManager(t *testing.T) (*fakeShardManager, string, []byte) {
	t.Helper()
	creds, ca := testutil.ServerTLS(t)
	fake, addr := startFakeShardManager(t, creds)
	return fake, addr, ca
}

func TestConnectionsTLS(t *testing.T) {
	fake, addr, ca := tlsShardManager(t)
	_, plainAddr := startFakeShardManager(t)
	_, other := testutil.ServerTLS(t)
	withCA := func(endpoint string, ca []byte, serverName string) statefulapp.Target {
		return statefulapp.Target{Endpoint: endpoint, TLS: &statefulapp.TargetTLS{CA: ca, ServerName: serverName, Source: "key ca.crt of Secret store/kv-ca"}}
	}
	conns := statefulapp.NewConnections()
	t.Cleanup(func() { _ = conns.Close() })

	t.Run("the CA that signed its certificate: an answer", func(t *testing.T) {
		if resp, err := ask(t, conns, appKV, withCA(addr, ca, ""), 5*time.Second); err != nil || resp.GetDecision() != shardmanagerv1.Decision_DECISION_APPROVED {
			t.Fatalf("answer %v, %v; want approved", resp, err)
		}
	})

	handshakeFails := []struct {
		name   string
		target statefulapp.Target
		says   string
	}{
		{"another CA", withCA(addr, other, ""), "certificate signed by unknown authority"},
		{"the right CA, another server name", withCA(addr, ca, "kv.example"), "kv.example"},
		{"a shard manager without TLS", withCA(plainAddr, ca, ""), "first record does not look like a TLS handshake"},
	}
	for _, tc := range handshakeFails {
		t.Run(tc.name+": a handshake failure, no request", func(t *testing.T) {
			before := fake.asked("op")
			_, err := ask(t, conns, types.NamespacedName{Namespace: "store", Name: tc.name}, tc.target, 5*time.Second)
			var hs *statefulapp.HandshakeError
			if !errors.As(err, &hs) {
				t.Fatalf("error %v, want a HandshakeError", err)
			}
			for _, want := range []string{"TLS handshake", tc.target.Endpoint, "key ca.crt of Secret store/kv-ca", tc.says} {
				if msg := err.Error(); !strings.Contains(msg, want) {
					t.Errorf("error %q does not say %q", msg, want)
				}
			}
			if n := fake.asked("op"); n != before {
				t.Errorf("the shard manager answered %d requests through a failed handshake", n-before)
			}
		})
	}

	t.Run("a CA that is not PEM: no connection", func(t *testing.T) {
		if _, err := conns.Client(appKV, withCA(addr, []byte("junk"), "")); err == nil || !strings.Contains(err.Error(), "no PEM-encoded certificate") {
			t.Errorf("error %v, want one saying the CA holds no certificate", err)
		}
	})

	t.Run("a rotated CA is a new connection; the old one is closed once no app uses it", func(t *testing.T) {
		conns := statefulapp.NewConnections()
		t.Cleanup(func() { _ = conns.Close() })
		before := fake.conns.Load()
		// The bundle of a rotation: the new CA beside the old.
		rotated := append(append([]byte(nil), ca...), other...)
		for _, bundle := range [][]byte{ca, rotated} {
			if _, err := ask(t, conns, appKV, withCA(addr, bundle, ""), 5*time.Second); err != nil {
				t.Fatal(err)
			}
		}
		if n := fake.conns.Load() - before; n != 2 {
			t.Errorf("the shard manager accepted %d connections, want 2 (one per CA)", n)
		}
		old, err := conns.Client(types.NamespacedName{Namespace: "store", Name: "late"}, withCA(addr, ca, ""))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := old.RequestOperation(t.Context(), &shardmanagerv1.RequestOperationRequest{}); err != nil {
			t.Errorf("the old CA's connection, dialled again for another app: %v", err)
		}
		conns.Forget(types.NamespacedName{Namespace: "store", Name: "late"})
		if _, err := old.RequestOperation(t.Context(), &shardmanagerv1.RequestOperationRequest{}); status.Code(err) != codes.Canceled {
			t.Errorf("a call on a connection no app uses: %v, want Canceled (closed)", err)
		}
	})
}

func TestTransportOf(t *testing.T) {
	ca := &appsv1alpha1.ShardManagerTLS{CASecretRef: appsv1alpha1.SecretKeyRef{Name: "kv-ca"}}
	for _, tc := range []struct {
		name       string
		sm         appsv1alpha1.ShardManager
		want       appsv1alpha1.ShardManagerTransport
		wantReason string
	}{
		{name: "TLS with a CA", sm: appsv1alpha1.ShardManager{Transport: appsv1alpha1.TransportTLS, TLS: ca}, want: appsv1alpha1.TransportTLS},
		{name: "Plaintext, said", sm: appsv1alpha1.ShardManager{Transport: appsv1alpha1.TransportPlaintext}, want: appsv1alpha1.TransportPlaintext},
		{name: "nothing said: not plaintext", sm: appsv1alpha1.ShardManager{}, wantReason: appsv1alpha1.ShardManagerTransportInvalidReason},
		{name: "a CA but no transport: not dialled", sm: appsv1alpha1.ShardManager{TLS: ca}, wantReason: appsv1alpha1.ShardManagerTransportInvalidReason},
		{name: "TLS without a CA", sm: appsv1alpha1.ShardManager{Transport: appsv1alpha1.TransportTLS}, wantReason: appsv1alpha1.ShardManagerTransportInvalidReason},
		{name: "TLS with an unnamed Secret", sm: appsv1alpha1.ShardManager{Transport: appsv1alpha1.TransportTLS, TLS: &appsv1alpha1.ShardManagerTLS{}},
			wantReason: appsv1alpha1.ShardManagerTransportInvalidReason},
		{name: "Plaintext with a CA: both", sm: appsv1alpha1.ShardManager{Transport: appsv1alpha1.TransportPlaintext, TLS: ca},
			wantReason: appsv1alpha1.ShardManagerTransportInvalidReason},
		{name: "another word", sm: appsv1alpha1.ShardManager{Transport: "plain"}, wantReason: appsv1alpha1.ShardManagerTransportInvalidReason},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := statefulapp.TransportOf(tc.sm)
			reason := ""
			var te *statefulapp.TargetError
			if errors.As(err, &te) {
				reason = te.Reason
			} else if err != nil {
				t.Fatalf("error %v, want a TargetError", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("transport (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantReason, reason); diff != "" {
				t.Errorf("reason (-want +got):\n%s", diff)
			}
			if err != nil && !strings.Contains(err.Error(), "spec.shardManager.") {
				t.Errorf("error %q does not name the field", err)
			}
		})
	}
}
