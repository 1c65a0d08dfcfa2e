package broker

import (
	"bytes"
	"context"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	certutil "k8s.io/client-go/util/cert"

	"github.com/strata-dev/strata/internal/metal/inventory"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// The fuzzers of the broker's API: the pure validation and conversion
// functions with round-trip properties, the page tokens, and every unary
// RPC of a real broker over SQLite fed arbitrary requests. Their seeds run
// in plain `go test`; `make fuzz` explores (hack/fuzz.sh).

// FuzzPageToken: a token this broker issued for a query gives back its
// cursor for that query only; anything else is InvalidArgument, and a token
// is accepted only if its bytes are exactly ones the broker signed.
func FuzzPageToken(f *testing.F) {
	f.Add("dc1", int32(0), "", "m-0001", "")
	f.Add("dc1", int32(3), "pool-a", "m-0042", "AQ")
	f.Add("", int32(-1), "p", "\x00", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("dc2", int32(7), "", "m", "not base64!")
	keyA := pageTokens{key: bytes.Repeat([]byte{1}, 32)}
	keyB := pageTokens{key: bytes.Repeat([]byte{2}, 32)}
	f.Fuzz(func(t *testing.T, datacenter string, zone int32, pool, cursor, forged string) {
		req := &brokerv1.ListMachinesRequest{Datacenter: datacenter, MaintenanceZone: zone, Pool: pool, PageSize: 10}
		token, err := keyA.issue(req, cursor)
		if err != nil {
			// A string that is not UTF-8 cannot be a proto3 filter (no
			// request carries one); a cursor longer than a Node name
			// gives a token cursor would refuse, so none is issued.
			return
		}
		if cursor != "" {
			next := proto.CloneOf(req)
			next.PageToken, next.PageSize = token, 500 // the page size may change between pages
			got, err := keyA.cursor(next)
			if err != nil || got != cursor {
				t.Fatalf("cursor of an issued token = %q, %v; want %q", got, err, cursor)
			}
			if _, err := keyB.cursor(next); status.Code(err) != codes.InvalidArgument {
				t.Fatalf("another key's broker took the token: %v", err)
			}
			other := proto.CloneOf(next)
			other.Pool += "x"
			if _, err := keyA.cursor(other); status.Code(err) != codes.InvalidArgument {
				t.Fatalf("a token of another query was taken: %v", err)
			}
		}
		req.PageToken = forged
		got, err := keyA.cursor(req)
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("a bad token got %v, want InvalidArgument", err)
			}
			return
		}
		if forged == "" {
			if got != "" {
				t.Fatalf("no token gave cursor %q", got)
			}
			return
		}
		// Accepted: the token's bytes must be the ones the broker issues
		// for this query and cursor.
		raw, _ := base64.RawURLEncoding.DecodeString(forged)
		reissued, err := keyA.issue(req, got)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := base64.RawURLEncoding.DecodeString(reissued)
		if !bytes.Equal(raw, want) {
			t.Fatalf("token %q was accepted but is not one the broker signed", forged)
		}
	})
}

// FuzzJoinTarget: a join target that validates converts to the store and
// back to what the API shows (the bootstrap token is write-only).
func FuzzJoinTarget(f *testing.F) {
	valid := func(jt *brokerv1.JoinTarget) []byte {
		raw, err := proto.Marshal(jt)
		if err != nil {
			f.Fatal(err)
		}
		return raw
	}
	const apiServer, token = "https://workload-1.example:6443", "abcdef.0123456789abcdef"
	ca, _, err := certutil.GenerateSelfSignedCertKey("workload-1.example", nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid(&brokerv1.JoinTarget{Cluster: "workload-1", ApiServer: apiServer, CaBundle: ca, BootstrapToken: token,
		NodeLabels: map[string]string{"strata.dev/pool": "a"},
		NodeTaints: []*brokerv1.Taint{{Key: "dedicated", Value: "gpu", Effect: "NoSchedule"}}}))
	// A kubeconfig where the token goes, and a plain-HTTP API server: refused.
	f.Add(valid(&brokerv1.JoinTarget{Cluster: "w", ApiServer: apiServer, CaBundle: ca, BootstrapToken: testKubeconfig}))
	f.Add(valid(&brokerv1.JoinTarget{Cluster: "w", ApiServer: "http://127.0.0.1:6443", CaBundle: ca, BootstrapToken: token}))
	f.Add(valid(&brokerv1.JoinTarget{Cluster: "Bad_Name"}))
	f.Add([]byte{0x0a, 0x01, 0xff})
	f.Fuzz(func(t *testing.T, raw []byte) {
		jt := &brokerv1.JoinTarget{}
		if proto.Unmarshal(raw, jt) != nil {
			return
		}
		if err := validateJoinTarget("join_target", jt); err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("validation failed with %v, want InvalidArgument", err)
			}
			return
		}
		stored := joinTargetFromAPI(jt)
		if stored.BootstrapToken != jt.GetBootstrapToken() || stored.APIServer != jt.GetApiServer() || !bytes.Equal(stored.CABundle, jt.GetCaBundle()) {
			t.Fatal("the store did not keep the API server, CA bundle and bootstrap token")
		}
		want := proto.CloneOf(jt)
		want.BootstrapToken = ""
		if len(want.NodeLabels) == 0 {
			want.NodeLabels = nil
		}
		if diff := cmp.Diff(want, joinTargetToAPI(stored), protocmp.Transform()); diff != "" {
			t.Fatalf("join target after the store (-want +got):\n%s", diff)
		}
	})
}

const testKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: w
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: u
  user: {token: abc}
contexts:
- name: c
  context: {cluster: w, user: u}
current-context: c
`

// FuzzNodeProfile: a profile that validates converts to the store and back
// unchanged (but for the times the broker sets).
func FuzzNodeProfile(f *testing.F) {
	f.Add("gpu", int32(64), int32(256), int32(8), "nvidia-h100", int32(1000), "gpu-v1")
	f.Add("small", int32(0), int32(0), int32(0), "", int32(0), "base")
	f.Add("x", int32(-1), int32(0), int32(0), "m", int32(0), "bad config!")
	f.Fuzz(func(t *testing.T, name string, cpu, mem, gpus int32, model string, disk int32, nodeConfig string) {
		p := &brokerv1.NodeProfile{Name: name, MinCpuCores: cpu, MinMemoryGib: mem, MinGpus: gpus, GpuModel: model,
			MinLocalDiskGib: disk, NodeConfig: nodeConfig}
		if err := validateProfile(p); err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("validation failed with %v, want InvalidArgument", err)
			}
			return
		}
		if diff := cmp.Diff(p, profileToAPI(profileFromAPI(p)), protocmp.Transform()); diff != "" {
			t.Fatalf("profile after the store (-want +got):\n%s", diff)
		}
	})
}

// FuzzOperation: an operation a disruption may carry converts to the store
// and back unchanged.
func FuzzOperation(f *testing.F) {
	f.Add(int32(brokerv1.OperationKind_OPERATION_KIND_REIMAGE), "os-2", "6.13", "gpu-v2", int32(brokerv1.DisruptionReason_DISRUPTION_REASON_PLANNED_UPGRADE))
	f.Add(int32(brokerv1.OperationKind_OPERATION_KIND_REBOOT), "", "", "", int32(brokerv1.DisruptionReason_DISRUPTION_REASON_REMEDIATION))
	f.Add(int32(brokerv1.OperationKind_OPERATION_KIND_REPLACE), "os", "", "", int32(brokerv1.DisruptionReason_DISRUPTION_REASON_DECOMMISSION))
	f.Add(int32(99), "", "", "", int32(0))
	f.Fuzz(func(t *testing.T, kind int32, osImage, kernel, nodeConfig string, reason int32) {
		in := &brokerv1.Operation{Kind: brokerv1.OperationKind(kind)}
		if osImage != "" || kernel != "" || nodeConfig != "" {
			in.Software = &brokerv1.Software{OsImage: osImage, Kernel: kernel, NodeConfig: nodeConfig}
		}
		r, ok := reverse(disruptionReasons, brokerv1.DisruptionReason(reason))
		if !ok {
			r = inventory.ReasonPlannedUpgrade
		}
		op, err := operationFromAPI(in, r)
		if err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("validation failed with %v, want InvalidArgument", err)
			}
			return
		}
		if diff := cmp.Diff(in, operationToAPI(op), protocmp.Transform()); diff != "" {
			t.Fatalf("operation after the store (-want +got):\n%s", diff)
		}
	})
}

// FuzzRPC feeds every unary RPC of a broker over SQLite an arbitrary
// request (method picks the RPC of the service descriptor, so a new RPC is
// fuzzed without a change here). Properties: no panic; every error is a
// gRPC status other than Unknown and Internal (bad input is the caller's
// fault and says so); a refused call writes nothing.
func FuzzRPC(f *testing.F) {
	methods := brokerv1.BrokerService_ServiceDesc.Methods
	index := map[string]uint8{}
	for i, m := range methods {
		index[m.MethodName] = uint8(i)
	}
	add := func(method string, req proto.Message) {
		i, ok := index[method]
		if !ok {
			f.Fatalf("no method %s", method)
		}
		raw, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(i, raw)
	}
	profile := &brokerv1.NodeProfile{Name: "small", MinCpuCores: 1, NodeConfig: "base"}
	add("CreateNodeProfile", &brokerv1.CreateNodeProfileRequest{Profile: profile})
	add("CreateNodeProfile", &brokerv1.CreateNodeProfileRequest{Profile: &brokerv1.NodeProfile{Name: "-bad-"}})
	add("UpdateNodeProfile", &brokerv1.UpdateNodeProfileRequest{Profile: profile})
	add("CreatePool", &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{Name: "p", Datacenter: inventory.DefaultDatacenter, NodeProfile: "seeded", Capacity: 2}})
	add("CreatePool", &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{Name: "p", Datacenter: inventory.DefaultDatacenter, NodeProfile: "seeded", Capacity: -1}})
	add("UpdatePool", &brokerv1.UpdatePoolRequest{Name: "seeded", Capacity: 3, JoinTarget: &brokerv1.JoinTarget{Cluster: "w"}})
	add("UpdatePool", &brokerv1.UpdatePoolRequest{Name: "seeded", Capacity: 1})
	add("DeletePool", &brokerv1.DeletePoolRequest{Name: "nope"})
	add("ListMachines", &brokerv1.ListMachinesRequest{PageSize: 3, PageToken: "AQ"})
	add("ListMachines", &brokerv1.ListMachinesRequest{Datacenter: inventory.DefaultDatacenter, MaintenanceZone: 2, State: brokerv1.MachineState(42)})
	add("GetMachine", &brokerv1.GetMachineRequest{Id: ""})
	add("CreateDisruption", &brokerv1.CreateDisruptionRequest{Machine: "nope", Reason: brokerv1.DisruptionReason_DISRUPTION_REASON_HARDWARE_REPAIR, OnBehalfOf: "me"})
	add("CreateDisruption", &brokerv1.CreateDisruptionRequest{Machine: "x", Reason: brokerv1.DisruptionReason_DISRUPTION_REASON_POOL_SHRINK, OnBehalfOf: "me",
		Operation: &brokerv1.Operation{Kind: brokerv1.OperationKind_OPERATION_KIND_REIMAGE}})
	add("ApproveDisruption", &brokerv1.ApproveDisruptionRequest{Id: "1", OnBehalfOf: "me"})
	add("CompleteDisruption", &brokerv1.CompleteDisruptionRequest{Id: "x"})
	add("RecordDisruptionStep", &brokerv1.RecordDisruptionStepRequest{Id: "1"})
	add("ListDisruptions", &brokerv1.ListDisruptionsRequest{})

	ctx := context.Background()
	store, err := inventory.Open(ctx, "sqlite://"+filepath.Join(f.TempDir(), "inventory.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = store.Close() })
	if _, err := inventory.Seed(ctx, store, inventory.GenerateOptions{Seed: 1, Machines: 24, MaintenanceZones: 3}); err != nil {
		f.Fatal(err)
	}
	b, err := New(Options{Store: store, Logger: logr.Discard()})
	if err != nil {
		f.Fatal(err)
	}
	// A profile and a pool for requests to find.
	if _, err := b.CreateNodeProfile(ctx, &brokerv1.CreateNodeProfileRequest{Profile: &brokerv1.NodeProfile{Name: "seeded", NodeConfig: "base"}}); err != nil {
		f.Fatal(err)
	}
	if _, err := b.CreatePool(ctx, &brokerv1.CreatePoolRequest{Pool: &brokerv1.Pool{Name: "seeded", Datacenter: inventory.DefaultDatacenter, NodeProfile: "seeded", Capacity: 2}}); err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, method uint8, raw []byte) {
		m := methods[int(method)%len(methods)]
		var decodeErr error
		decode := func(req any) error {
			decodeErr = proto.Unmarshal(raw, req.(proto.Message))
			return decodeErr
		}
		before := snapshot(t, b)
		_, err := m.Handler(b, ctx, decode, nil)
		if err == nil || decodeErr != nil {
			return // not a request of the RPC: gRPC answers that before the broker sees it
		}
		st, ok := status.FromError(err)
		switch {
		case !ok:
			t.Fatalf("%s: error %v is not a gRPC status", m.MethodName, err)
		case st.Code() == codes.Unknown || st.Code() == codes.Internal:
			t.Fatalf("%s: %v: bad input must get a status that says what is wrong", m.MethodName, err)
		case st.Message() == "":
			t.Fatalf("%s: %s without a message", m.MethodName, st.Code())
		}
		if diff := cmp.Diff(before, snapshot(t, b)); diff != "" {
			t.Fatalf("%s refused (%v) but wrote (-before +after):\n%s", m.MethodName, err, diff)
		}
	})
}

// snapshot is what the broker shows of its inventory, to tell a write.
func snapshot(t *testing.T, b *Broker) string {
	t.Helper()
	ctx := context.Background()
	var out strings.Builder
	add := func(m proto.Message, err error) {
		if err != nil {
			t.Fatalf("reading the inventory: %v", err)
		}
		out.WriteString(prototext.Format(m))
	}
	add(b.ListNodeProfiles(ctx, &brokerv1.ListNodeProfilesRequest{}))
	add(b.ListPools(ctx, &brokerv1.ListPoolsRequest{}))
	add(b.ListDisruptions(ctx, &brokerv1.ListDisruptionsRequest{}))
	add(b.ListMachines(ctx, &brokerv1.ListMachinesRequest{PageSize: maxPageSize}))
	return out.String()
}
