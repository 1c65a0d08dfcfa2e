package broker

import (
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/util/validation/field"

	configv1alpha1 "github.com/strata-dev/strata/api/config/v1alpha1"
	"github.com/strata-dev/strata/internal/metal/inventory"
	brokerv1 "github.com/strata-dev/strata/proto/strata/broker/v1"
)

// brokerService prefixes the full names of the broker's own methods.
var brokerService = "/" + brokerv1.BrokerService_ServiceDesc.ServiceName + "/"

// readRPCs change nothing.
var readRPCs = []string{
	"GetMachine", "ListMachines", "WatchMachines", "ListSKUs", "GetNodeProfile", "ListNodeProfiles",
	"GetPool", "ListPools", "WatchPools", "GetDisruption", "ListDisruptions", "WatchDisruptions",
}

// impliedRPCs: a role that may call the key may call the value too, its
// own roles and those of policy files alike. WatchMachines returns nothing
// ListMachines does not (it is the listing, then the same rows again as
// they change), so whoever may list machines may watch them, without a
// policy written before it existed being edited.
var impliedRPCs = map[string]string{"ListMachines": "WatchMachines"}

// builtinRoles are what each built-in role may call: what its controller
// calls, and no more.
var builtinRoles = map[string]configv1alpha1.BrokerRole{
	configv1alpha1.RolePoolManager: {RPCs: append(slices.Clone(readRPCs),
		"CreateNodeProfile", "UpdateNodeProfile", "DeleteNodeProfile", "CreatePool", "UpdatePool", "DeletePool",
		// The shrinks of a pool whose cluster is gone: no cluster manager
		// is left to approve them.
		"ApproveDisruption")},
	configv1alpha1.RoleMaintenance: {RPCs: append(slices.Clone(readRPCs), "CreateDisruption", "StartDisruption", "CancelDisruption"),
		DisruptionReasons: []string{string(inventory.ReasonPlannedUpgrade)}},
	configv1alpha1.RoleRemediation: {RPCs: append(slices.Clone(readRPCs), "CreateDisruption", "StartDisruption", "CancelDisruption"),
		DisruptionReasons: []string{string(inventory.ReasonRemediation)}},
	configv1alpha1.RoleClusterManager: {RPCs: append(slices.Clone(readRPCs), "ApproveDisruption", "CompleteDisruption", "RecordDisruptionStep")},
	configv1alpha1.RoleViewer:         {RPCs: readRPCs},
	configv1alpha1.RoleAdmin:          {RPCs: []string{"*"}},
}

// role is a role compiled: full method names, and the reasons of the
// disruptions it may create (nil: any).
type role struct {
	all     bool
	methods map[string]bool
	reasons []brokerv1.DisruptionReason
}

func (r role) allows(method string, req any) bool {
	if !r.all && !r.methods[method] {
		return false
	}
	if cd, ok := req.(*brokerv1.CreateDisruptionRequest); ok && r.reasons != nil {
		return slices.Contains(r.reasons, cd.GetReason())
	}
	return true
}

// Authorizer decides, per RPC, whether an identity may call it: it may
// when a role bound to its name or one of its groups lists the RPC (and,
// for CreateDisruption, the reason).
type Authorizer struct {
	users, groups map[string][]role
}

// NewAuthorizer compiles a defaulted, validated policy; an RPC the broker
// does not have is an error naming its field.
func NewAuthorizer(p *configv1alpha1.BrokerPolicy) (*Authorizer, error) {
	roles := map[string]role{}
	var errs field.ErrorList
	compile := func(path *field.Path, name string, spec configv1alpha1.BrokerRole) {
		r := role{methods: map[string]bool{}}
		for i, rpc := range spec.RPCs {
			switch {
			case rpc == "*":
				r.all = true
			case strings.Contains(rpc, "/"):
				r.methods["/"+rpc] = true
			case !isBrokerMethod(rpc):
				errs = append(errs, field.Invalid(path.Child("rpcs").Index(i), rpc, "is not a method of "+brokerv1.BrokerService_ServiceDesc.ServiceName))
			default:
				r.methods[brokerService+rpc] = true
			}
		}
		for rpc, also := range impliedRPCs {
			if r.methods[brokerService+rpc] {
				r.methods[brokerService+also] = true
			}
		}
		for _, reason := range spec.DisruptionReasons {
			r.reasons = append(r.reasons, disruptionReasons[inventory.DisruptionReason(reason)])
		}
		roles[name] = r
	}
	for name, spec := range builtinRoles {
		compile(nil, name, spec)
	}
	for i, spec := range p.Roles {
		compile(field.NewPath("roles").Index(i), spec.Name, spec)
	}
	if len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	a := &Authorizer{users: map[string][]role{}, groups: map[string][]role{}}
	for _, b := range p.Bindings {
		for _, u := range b.Users {
			a.users[u] = append(a.users[u], roles[b.Role])
		}
		for _, g := range b.Groups {
			a.groups[g] = append(a.groups[g], roles[b.Role])
		}
	}
	return a, nil
}

func isBrokerMethod(name string) bool {
	d := brokerv1.BrokerService_ServiceDesc
	return slices.ContainsFunc(d.Methods, func(m grpc.MethodDesc) bool { return m.MethodName == name }) ||
		slices.ContainsFunc(d.Streams, func(s grpc.StreamDesc) bool { return s.StreamName == name })
}

// Authorize says whether id may call method with req: nil, or
// PermissionDenied naming the identity and the RPC.
//
// A batch (CreateDisruptions, UpdateDisruptions) is allowed when each of its
// items is allowed as the RPC it stands for: the roles need not name the
// batch RPCs.
func (a *Authorizer) Authorize(id Identity, method string, req any) error {
	if items := batchItems(method, req); items != nil {
		for i, it := range items {
			if err := a.Authorize(id, it.method, it.req); err != nil {
				return status.Errorf(codes.PermissionDenied, "%s item %d: %s", strings.TrimPrefix(method, brokerService), i, status.Convert(err).Message())
			}
		}
		return nil
	}
	roles := slices.Clone(a.users[id.Name])
	for _, g := range id.Groups {
		roles = append(roles, a.groups[g]...)
	}
	for _, r := range roles {
		if r.allows(method, req) {
			return nil
		}
	}
	rpc := strings.TrimPrefix(method, brokerService)
	if cd, ok := req.(*brokerv1.CreateDisruptionRequest); ok && slices.ContainsFunc(roles, func(r role) bool { return r.allows(method, nil) }) {
		reason, _ := reverse(disruptionReasons, cd.GetReason())
		return status.Errorf(codes.PermissionDenied, "%s may not call %s with reason %s: no role of it allows that reason", id, rpc, reason)
	}
	return status.Errorf(codes.PermissionDenied, "%s may not call %s: no role of it allows it (docs/broker.md)", id, rpc)
}

// batchItem is one item of a batch RPC as the RPC it stands for.
type batchItem struct {
	method string
	req    any
}

// actionRPCs are the RPCs UpdateDisruptions' actions stand for.
var actionRPCs = map[brokerv1.DisruptionAction]string{
	brokerv1.DisruptionAction_DISRUPTION_ACTION_APPROVE:     "ApproveDisruption",
	brokerv1.DisruptionAction_DISRUPTION_ACTION_START:       "StartDisruption",
	brokerv1.DisruptionAction_DISRUPTION_ACTION_COMPLETE:    "CompleteDisruption",
	brokerv1.DisruptionAction_DISRUPTION_ACTION_CANCEL:      "CancelDisruption",
	brokerv1.DisruptionAction_DISRUPTION_ACTION_RECORD_STEP: "RecordDisruptionStep",
}

// batchItems are the items of a batch RPC, nil for any other RPC. An
// update without a known action stands for no RPC: only a role that may
// call everything passes it (and the broker refuses it as invalid).
func batchItems(method string, req any) []batchItem {
	switch r := req.(type) {
	case *brokerv1.CreateDisruptionsRequest:
		if method != brokerService+"CreateDisruptions" {
			return nil
		}
		items := make([]batchItem, 0, len(r.GetDisruptions()))
		for _, d := range r.GetDisruptions() {
			items = append(items, batchItem{brokerService + "CreateDisruption", d})
		}
		return items
	case *brokerv1.UpdateDisruptionsRequest:
		if method != brokerService+"UpdateDisruptions" {
			return nil
		}
		items := make([]batchItem, 0, len(r.GetUpdates()))
		for _, u := range r.GetUpdates() {
			rpc, ok := actionRPCs[u.GetAction()]
			if !ok {
				rpc = "UpdateDisruptions"
			}
			items = append(items, batchItem{brokerService + rpc, u})
		}
		return items
	}
	return nil
}
