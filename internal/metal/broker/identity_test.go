package broker_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/metal/broker"
	"github.com/strata-dev/strata/internal/metal/broker/brokerclient"
	"github.com/strata-dev/strata/internal/testutil/testbroker"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// TestMutualTLS: over a real gRPC listener with real certificates, a
// caller is its certificate's subject; no certificate, or one of another
// CA, is Unauthenticated; a role that does not allow an RPC (or a reason)
// is PermissionDenied naming the identity and the RPC, and nothing is
// written; the actor of a record is the identity, whatever the request
// claims.
func TestMutualTLS(t *testing.T) {
	ca := testbroker.NewPKI(t)
	addr, _, _ := testbroker.StartServerWith(t, 20, 0, ca.ServerOptions())
	client := func(name string, groups ...string) brokerv1.BrokerServiceClient {
		return brokerv1.NewBrokerServiceClient(ca.Dial(addr, name, groups...))
	}
	const orchestrator = "strata-hub/maintenance-orchestrator"
	admin := client("root", "strata:admin")
	machine := func() string {
		resp, err := admin.ListMachines(t.Context(), &brokerv1.ListMachinesRequest{PageSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetMachines()[0].GetId()
	}()
	create := func(c brokerv1.BrokerServiceClient, reason brokerv1.DisruptionReason, onBehalfOf string) (*brokerv1.Disruption, error) {
		resp, err := c.CreateDisruption(t.Context(), &brokerv1.CreateDisruptionRequest{Machine: machine, Reason: reason, OnBehalfOf: onBehalfOf})
		return resp.GetDisruption(), err
	}
	written := func() int {
		resp, err := admin.ListDisruptions(t.Context(), &brokerv1.ListDisruptionsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return len(resp.GetDisruptions())
	}

	t.Run("no certificate", func(t *testing.T) {
		conn := ca.Dial(addr, "")
		_, err := brokerv1.NewBrokerServiceClient(conn).ListSKUs(t.Context(), &brokerv1.ListSKUsRequest{})
		wantCode(t, err, codes.Unauthenticated, "no identity: the broker requires a client certificate signed by its client CA")
		if _, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Errorf("a health check needs no identity, got %v", err)
		}
	})
	t.Run("certificate of another CA", func(t *testing.T) {
		other := testbroker.NewPKI(t)
		cert, key := other.Client("mallory", "strata:admin")
		pool, err := brokerclient.LoadCAPool(ca.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		pair, err := brokerclient.NewKeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := brokerclient.Dial(brokerclient.Options{Addresses: []string{addr}, TLS: tlsConfig(pool), Certificate: pair})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close() //nolint:errcheck // test
		_, err = create(brokerv1.NewBrokerServiceClient(conn), brokerv1.DisruptionReason_DISRUPTION_REASON_HARDWARE_REPAIR, "")
		wantCode(t, err, codes.Unauthenticated, `client certificate "mallory" is not one the broker trusts`)
	})
	t.Run("viewer creates a disruption", func(t *testing.T) {
		viewer := client("alice", "strata:viewer")
		if _, err := viewer.ListMachines(t.Context(), &brokerv1.ListMachinesRequest{}); err != nil {
			t.Errorf("a viewer lists machines: %v", err)
		}
		if err := watchMachines(t, viewer); err != nil {
			t.Errorf("a viewer watches machines: %v", err)
		}
		_, err := create(viewer, brokerv1.DisruptionReason_DISRUPTION_REASON_HARDWARE_REPAIR, "alice")
		wantCode(t, err, codes.PermissionDenied, "alice (groups strata:viewer) may not call CreateDisruption")
		if n := written(); n != 0 {
			t.Errorf("a denied call wrote %d disruptions", n)
		}
	})
	t.Run("no role at all", func(t *testing.T) {
		_, err := client("bob").ListSKUs(t.Context(), &brokerv1.ListSKUsRequest{})
		wantCode(t, err, codes.PermissionDenied, "bob may not call ListSKUs")
	})
	orch := client(orchestrator, "strata:maintenance")
	t.Run("orchestrator, a reason not its own", func(t *testing.T) {
		_, err := create(orch, brokerv1.DisruptionReason_DISRUPTION_REASON_DECOMMISSION, "")
		wantCode(t, err, codes.PermissionDenied, orchestrator+" (groups strata:maintenance) may not call CreateDisruption with reason decommission")
		if n := written(); n != 0 {
			t.Errorf("a denied call wrote %d disruptions", n)
		}
	})
	t.Run("orchestrator claims another actor", func(t *testing.T) {
		d, err := create(orch, brokerv1.DisruptionReason_DISRUPTION_REASON_PLANNED_UPGRADE, "cluster-manager/workload-1")
		if err != nil {
			t.Fatal(err)
		}
		got, err := admin.GetDisruption(t.Context(), &brokerv1.GetDisruptionRequest{Id: d.GetId()})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{orchestrator + " (for cluster-manager/workload-1)", orchestrator + " (for cluster-manager/workload-1)"}
		records := []string{who(got.GetDisruption()), who(got.GetDisruption().GetHistory()[0])}
		if diff := cmp.Diff(want, records); diff != "" {
			t.Errorf("actor of the disruption and of its first step (-want +got):\n%s", diff)
		}
		// Approving is the cluster manager's, not the orchestrator's.
		_, err = orch.ApproveDisruption(t.Context(), &brokerv1.ApproveDisruptionRequest{Id: d.GetId()})
		wantCode(t, err, codes.PermissionDenied, "may not call ApproveDisruption")
		cm := client("strata-hub/cluster-manager", "strata:cluster-manager")
		approved, err := cm.ApproveDisruption(t.Context(), &brokerv1.ApproveDisruptionRequest{Id: d.GetId(), OnBehalfOf: "maintenance/r1"})
		if err != nil {
			t.Fatal(err)
		}
		if approved.GetDisruption().GetActor() != orchestrator {
			t.Errorf("approval changed the disruption's actor to %q", approved.GetDisruption().GetActor())
		}
		// A batch is allowed item by item, as the RPCs its items stand for.
		batch := func(c brokerv1.BrokerServiceClient, action brokerv1.DisruptionAction) error {
			_, err := c.UpdateDisruptions(t.Context(), &brokerv1.UpdateDisruptionsRequest{Updates: []*brokerv1.DisruptionUpdate{
				{Id: d.GetId(), Action: brokerv1.DisruptionAction_DISRUPTION_ACTION_RECORD_STEP, Message: "cordoned"},
				{Id: d.GetId(), Action: action},
			}})
			return err
		}
		wantCode(t, batch(cm, brokerv1.DisruptionAction_DISRUPTION_ACTION_START), codes.PermissionDenied,
			"UpdateDisruptions item 1: strata-hub/cluster-manager (groups strata:cluster-manager) may not call StartDisruption")
		wantCode(t, batch(orch, brokerv1.DisruptionAction_DISRUPTION_ACTION_START), codes.PermissionDenied,
			"UpdateDisruptions item 0: "+orchestrator+" (groups strata:maintenance) may not call RecordDisruptionStep")
		if err := batch(cm, brokerv1.DisruptionAction_DISRUPTION_ACTION_APPROVE); err != nil {
			t.Errorf("the cluster manager records a step and approves in one batch: %v", err)
		}
		_, err = orch.CreateDisruptions(t.Context(), &brokerv1.CreateDisruptionsRequest{Disruptions: []*brokerv1.CreateDisruptionRequest{
			{Machine: machine, Reason: brokerv1.DisruptionReason_DISRUPTION_REASON_PLANNED_UPGRADE},
			{Machine: machine, Reason: brokerv1.DisruptionReason_DISRUPTION_REASON_DECOMMISSION},
		}})
		wantCode(t, err, codes.PermissionDenied, "CreateDisruptions item 1: "+orchestrator+" (groups strata:maintenance) may not call CreateDisruption with reason decommission")
	})
}

// watchMachines opens a machine watch and receives its first response.
func watchMachines(t *testing.T, c brokerv1.BrokerServiceClient) error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream, err := c.WatchMachines(ctx, &brokerv1.WatchMachinesRequest{})
	if err != nil {
		return err
	}
	_, err = stream.Recv()
	return err
}

// TestPolicyFile: a policy of its own roles and bindings replaces the
// built-in bindings, and a role that may list machines may watch them; an RPC the broker does not have is refused at start,
// naming the field.
func TestPolicyFile(t *testing.T) {
	ca := testbroker.NewPKI(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	opts := ca.ServerOptions()
	opts.PolicyFile = write("policy.yaml", `apiVersion: config.strata.dev/v1alpha1
kind: BrokerPolicy
roles:
- name: repairer
  rpcs: [ListMachines, CreateDisruption]
  disruptionReasons: [hardware-repair]
bindings:
- role: repairer
  users: [carol]
`)
	addr, _, _ := testbroker.StartServerWith(t, 20, 0, opts)
	carol := brokerv1.NewBrokerServiceClient(ca.Dial(addr, "carol"))
	machines, err := carol.ListMachines(t.Context(), &brokerv1.ListMachinesRequest{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.CreateDisruption(t.Context(), &brokerv1.CreateDisruptionRequest{
		Machine: machines.GetMachines()[0].GetId(), Reason: brokerv1.DisruptionReason_DISRUPTION_REASON_HARDWARE_REPAIR,
	}); err != nil {
		t.Errorf("carol, a repairer, asks for a hardware repair: %v", err)
	}
	_, err = carol.ListPools(t.Context(), &brokerv1.ListPoolsRequest{})
	wantCode(t, err, codes.PermissionDenied, "carol may not call ListPools")
	// The file's role lists machines, and so may watch them.
	if err := watchMachines(t, carol); err != nil {
		t.Errorf("carol, who may list machines, watches them: %v", err)
	}
	// The file's bindings replace the built-in ones: strata:admin is no one.
	root := brokerv1.NewBrokerServiceClient(ca.Dial(addr, "root", "strata:admin"))
	_, err = root.ListPools(t.Context(), &brokerv1.ListPoolsRequest{})
	wantCode(t, err, codes.PermissionDenied, "root (groups strata:admin) may not call ListPools")
	wantCode(t, watchMachines(t, root), codes.PermissionDenied, "root (groups strata:admin) may not call WatchMachines")

	opts.Address = "127.0.0.1:0"
	opts.PolicyFile = write("typo.yaml", "apiVersion: config.strata.dev/v1alpha1\nkind: BrokerPolicy\nbinding:\n- role: admin\n  users: [carol]\n")
	if _, err := broker.NewServer(nil, opts, nil); err == nil || !strings.Contains(err.Error(), `unknown field "binding"`) {
		t.Errorf("NewServer with a misspelt field in the policy = %v, want it named", err)
	}
	opts.PolicyFile = write("bad.yaml", `apiVersion: config.strata.dev/v1alpha1
kind: BrokerPolicy
roles:
- name: repairer
  rpcs: [ListMachines, DrainEverything]
bindings:
- role: repairer
  users: [carol]
`)
	opts.Address = "127.0.0.1:0"
	_, err = broker.NewServer(nil, opts, nil)
	if err == nil || !strings.Contains(err.Error(), "roles[0].rpcs[1]: Invalid value: \"DrainEverything\": is not a method of strata.broker.v1.BrokerService") {
		t.Errorf("NewServer with an unknown RPC in the policy = %v, want the field named", err)
	}
}

// TestTokenNeverInPlaintext: a bearer token is refused over plaintext to
// an address that is not loopback, by the broker's configuration and by
// the client before it dials.
func TestTokenNeverInPlaintext(t *testing.T) {
	c := &configv1alpha1.BrokerConfiguration{Database: configv1alpha1.Database{DSN: "x.db"}, Listen: "0.0.0.0:7443", TokenFile: "/etc/token"}
	c.Default()
	errs := c.Validate()
	if len(errs) != 1 || errs[0].Field != "tokenFile" || !strings.Contains(errs[0].Detail, "a bearer token over plaintext to non-loopback address 0.0.0.0:7443") {
		t.Errorf("BrokerConfiguration with a token over plaintext: %v, want tokenFile refused", errs)
	}
	err := broker.ServerOptions{Address: "0.0.0.0:7443", TokenFile: "/etc/token", Insecure: true}.Validate()
	if err == nil || !strings.Contains(err.Error(), "--insecure accepts anyone") {
		t.Errorf("ServerOptions with token and insecure: %v", err)
	}
	_, err = brokerclient.Dial(brokerclient.Options{Addresses: []string{"127.0.0.1:1", "10.0.0.7:7443"}, Token: "s3cret"})
	if err == nil || !strings.Contains(err.Error(), "refusing to send a bearer token in plaintext to 10.0.0.7:7443") {
		t.Errorf("Dial with a token in plaintext to 10.0.0.7 = %v", err)
	}
	conn, err := brokerclient.Dial(brokerclient.Options{Addresses: []string{"127.0.0.1:1"}, Token: "s3cret"})
	if err != nil {
		t.Errorf("Dial with a token to loopback = %v, want allowed", err)
	} else {
		_ = conn.Close()
	}
}

func tlsConfig(pool *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}
