package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/console/store"
)

// The kinds each page shows.
var (
	kindsMap      = []string{store.KindMachine, store.KindDisruption, store.KindMaintenanceRollout}
	kindsMachine  = []string{store.KindMachine, store.KindDisruption, store.KindNode}
	kindsClusters = []string{store.KindCluster, store.KindNode, store.KindPool, store.KindBrokerPool, store.KindMachine}
	kindsRollouts = []string{store.KindMaintenanceRollout, store.KindDisruption}
	kindsApps     = []string{store.KindStatelessApp, store.KindStatefulApp}
	kindsApp      = []string{store.KindStatelessApp, store.KindStatefulApp, store.KindPod, store.KindNode, store.KindMachine, store.KindDisruption, store.KindEvent}
	kindsPods     = []string{store.KindPod}
	kindsPod      = []string{store.KindPod, store.KindNode, store.KindMachine, store.KindDisruption}
	kindsNode     = []string{store.KindNode, store.KindPod, store.KindMachine, store.KindDisruption, store.KindEvent}
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /static/", s.static)
	mux.HandleFunc("GET /login", s.serveLogin)
	mux.HandleFunc("POST /login", s.serveLogin)
	mux.HandleFunc("POST /logout", s.serveLogout)
	app := http.NewServeMux()
	app.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/map", http.StatusSeeOther) })
	app.HandleFunc("GET /events", s.serveEvents)
	app.Handle("GET /map", s.view("map", "map", kindsMap, s.fillMap))
	app.Handle("GET /machines/{id}", s.view("machine", "map", kindsMachine, s.fillMachine))
	app.Handle("GET /clusters", s.view("clusters", "clusters", kindsClusters, s.fillClusters))
	app.Handle("GET /clusters/{name}", s.view("cluster", "clusters", kindsClusters, s.fillCluster))
	app.Handle("GET /rollouts", s.view("rollouts", "rollouts", kindsRollouts, s.fillRollouts))
	app.Handle("GET /rollouts/{name}", s.view("rollout", "rollouts", kindsRollouts, s.fillRollout))
	app.Handle("GET /apps", s.view("apps", "apps", kindsApps, s.fillApps))
	app.Handle("GET /apps/{cluster}/{namespace}/{name}", s.view("app", "apps", kindsApp, s.fillApp))
	app.Handle("GET /pods", s.view("pods", "pods", kindsPods, s.fillPods))
	app.Handle("GET /pods/{cluster}/{namespace}/{name}", s.view("pod", "pods", kindsPod, s.fillPod))
	app.Handle("GET /nodes/{cluster}/{name}", s.view("node", "clusters", kindsNode, s.fillNode))
	app.Handle("GET /search", s.view("search", "", nil, s.fillSearch))
	app.Handle("/", s.view("error", "", nil, func(r *http.Request, _ *page) error {
		return notFound("There is no page at %s.", r.URL.Path)
	}))
	mux.Handle("/", s.requireUser(app))
	return securityHeaders(readOnly(mux))
}

func decode[T any](o store.Object) (T, error) {
	var v T
	if err := json.Unmarshal(o.Data, &v); err != nil {
		return v, fmt.Errorf("decoding %s %s/%s of cluster %q: %w", o.Kind, o.Namespace, o.Name, o.Cluster, err)
	}
	return v, nil
}

func decodeAll[T any](objs []store.Object) ([]T, error) {
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		v, err := decode[T](o)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// --- fleet map and machines ---

type cell struct {
	ID, Class, Letter, Label string
	// Count is how many machines of the datacenter (of the zone, in a
	// zone's counts) are in this state: legend entries only.
	Count int
}

// machineState is how the map shows a machine: a colour class, a letter
// and words, so colour is never the only signal.
func machineState(m store.Machine, disruption string) (class, letter, word string) {
	switch {
	case m.State == store.MachineDecommissioned:
		return "s-decommissioned", "X", "decommissioned"
	case m.State == store.MachineUnhealthy || !m.Healthy:
		return "s-unhealthy", "U", "unhealthy"
	case m.State == store.MachineDisrupted || disruption != "":
		return "s-maintenance", "M", "in maintenance"
	case m.State == store.MachineAllocated:
		return "s-allocated", "A", "allocated"
	default:
		return "s-available", "F", "available (free)"
	}
}

type rackView struct {
	Name  string
	Cells []cell
}

type zoneView struct {
	Zone     int32
	Planned  bool
	Why      []string
	Racks    []rackView
	Machines int
	// Counts are the zone's machines by state, the states it has only.
	Counts []cell
}

type mapView struct {
	Datacenters []string
	Datacenter  string
	Zones       []zoneView
	Machines    int
	Truncated   bool
	Legend      []cell
}

func (s *Server) fillMap(r *http.Request, p *page) error {
	if err := s.need(r, accessMachines); err != nil {
		return err
	}
	ctx := r.Context()
	dcs, err := s.store.Datacenters(ctx)
	if err != nil {
		return err
	}
	dc := r.URL.Query().Get("dc")
	if dc == "" && len(dcs) > 0 {
		dc = dcs[0]
	}
	p.Title = "Fleet map"
	v := mapView{Datacenters: dcs, Datacenter: dc}
	for _, st := range []struct{ state, disruption string }{{store.MachineAvailable, ""}, {store.MachineAllocated, ""}, {store.MachineAllocated, "x"}, {store.MachineUnhealthy, ""}, {store.MachineDecommissioned, ""}} {
		c, l, w := machineState(store.Machine{State: st.state, Healthy: st.state != store.MachineUnhealthy}, st.disruption)
		v.Legend = append(v.Legend, cell{Class: c, Letter: l, Label: w})
	}
	p.Data = &v
	if dc == "" {
		return nil
	}
	if !slices.Contains(dcs, dc) {
		return notFound("No machines are in datacenter %q.", dc)
	}
	p.Title = "Fleet map: " + dc
	m, err := s.store.Map(ctx, dc)
	if err != nil {
		return err
	}
	rolling, err := s.rolloutZones(r, dc)
	if err != nil {
		return err
	}
	v.Machines, v.Truncated = m.Machines, m.Truncated
	for _, z := range m.Zones {
		zv := zoneView{Zone: z.Zone, Planned: z.PlannedMaintenance}
		if z.PlannedMaintenance {
			zv.Why = append(zv.Why, "planned upgrade in progress")
		}
		for _, name := range rolling[z.Zone] {
			zv.Planned = true
			zv.Why = append(zv.Why, "rollout "+name)
		}
		counts := map[string]int{}
		for _, rack := range z.Racks {
			rv := rackView{Name: rack.Name}
			for _, mc := range rack.Machines {
				c, l, w := machineState(mc.Machine, mc.Disruption)
				counts[c]++
				label := mc.ID + " (rack " + rack.Name + "): " + w
				if mc.Disruption != "" {
					label += ", disruption " + mc.Disruption
				}
				if mc.HealthMessage != "" {
					label += ", " + mc.HealthMessage
				}
				if mc.Pool != "" {
					label += ", pool " + mc.Pool
				}
				rv.Cells = append(rv.Cells, cell{ID: mc.ID, Class: c, Letter: l, Label: label})
				zv.Machines++
			}
			zv.Racks = append(zv.Racks, rv)
		}
		for i := range v.Legend {
			if n := counts[v.Legend[i].Class]; n > 0 {
				v.Legend[i].Count += n
				zv.Counts = append(zv.Counts, cell{Class: v.Legend[i].Class, Letter: v.Legend[i].Letter, Label: v.Legend[i].Label, Count: n})
			}
		}
		v.Zones = append(v.Zones, zv)
	}
	return nil
}

// rolloutZones finds the zones of datacenter dc a MaintenanceRollout is
// on now: its current zone, when one of its pools' clusters is in dc.
func (s *Server) rolloutZones(r *http.Request, dc string) (map[int32][]string, error) {
	ctx := r.Context()
	objs, err := s.store.Objects(ctx, store.HubCluster, []string{store.KindMaintenanceRollout}, "")
	if err != nil {
		return nil, err
	}
	rollouts, err := decodeAll[fleetv1alpha1.MaintenanceRollout](objs)
	if err != nil || len(rollouts) == 0 {
		return nil, err
	}
	clusterDC, poolCluster, err := s.placement(r)
	if err != nil {
		return nil, err
	}
	out := map[int32][]string{}
	for _, ro := range rollouts {
		if ro.Status.CurrentZone == 0 || meta(ro.Status.Conditions, fleetv1alpha1.RolloutCompleteCondition).Status == metav1.ConditionTrue {
			continue
		}
		for _, pool := range ro.Spec.Pools {
			if clusterDC[poolCluster[pool]] == dc {
				out[ro.Status.CurrentZone] = append(out[ro.Status.CurrentZone], ro.Name)
				break
			}
		}
	}
	return out, nil
}

// placement reads which datacenter each cluster is in and which cluster
// each hub pool is of.
func (s *Server) placement(r *http.Request) (clusterDC, poolCluster map[string]string, err error) {
	ctx := r.Context()
	cobjs, err := s.store.Objects(ctx, store.HubCluster, []string{store.KindCluster}, "")
	if err != nil {
		return nil, nil, err
	}
	pobjs, err := s.store.Objects(ctx, store.HubCluster, []string{store.KindPool}, "")
	if err != nil {
		return nil, nil, err
	}
	clusters, err := decodeAll[fleetv1alpha1.Cluster](cobjs)
	if err != nil {
		return nil, nil, err
	}
	pools, err := decodeAll[fleetv1alpha1.Pool](pobjs)
	if err != nil {
		return nil, nil, err
	}
	clusterDC, poolCluster = map[string]string{}, map[string]string{}
	for _, c := range clusters {
		clusterDC[c.Name] = c.Spec.Datacenter
	}
	for _, p := range pools {
		poolCluster[p.Name] = p.Spec.Cluster
	}
	return clusterDC, poolCluster, nil
}

func meta(conds []metav1.Condition, t string) metav1.Condition {
	for _, c := range conds {
		if c.Type == t {
			return c
		}
	}
	return metav1.Condition{Type: t, Status: metav1.ConditionUnknown}
}

type machineView struct {
	store.MachineDetail
	Class, Letter, Word string
	Active              []store.Disruption
}

func (s *Server) fillMachine(r *http.Request, p *page) error {
	if err := s.need(r, accessMachines); err != nil {
		return err
	}
	id := r.PathValue("id")
	d, err := s.store.Machine(r.Context(), id)
	if err != nil {
		return orNotFound(err, "The broker has no machine %q (or the fleet store has not seen it yet).", id)
	}
	v := machineView{MachineDetail: d}
	active := ""
	for _, x := range d.Disruptions {
		if slices.Contains(store.ActiveDisruptionStates, x.State) {
			v.Active, active = append(v.Active, x), x.Reason
		}
	}
	v.Class, v.Letter, v.Word = machineState(d.Machine, active)
	p.Title, p.Data = "Machine "+id, &v
	return nil
}

// --- clusters and pools ---

type totals struct{ Ready, NotReady, Draining int }

func (t *totals) add(c store.NodeCount) {
	t.Ready += c.Ready
	t.NotReady += c.NotReady
	t.Draining += c.Draining
}

// freshness is how current the view of a cluster is.
type freshness struct {
	Stale    bool
	Why      string
	LastSeen time.Time
	Error    string
}

func freshnessOf(now time.Time, sources []store.Source) freshness {
	if len(sources) == 0 {
		return freshness{Stale: true, Why: "not watched yet"}
	}
	f := freshness{LastSeen: sources[0].LastSeen}
	for _, src := range sources {
		if src.LastSeen.Before(f.LastSeen) {
			f.LastSeen = src.LastSeen
		}
		if src.LastError != "" && f.Error == "" {
			f.Stale, f.Error, f.Why = true, src.Kind+": "+src.LastError, "watch failing since "+src.ErrorSince.UTC().Format("15:04:05 UTC")
		}
		if !src.Synced && !f.Stale {
			f.Stale, f.Why = true, src.Kind+" not listed yet"
		}
	}
	if !f.Stale && now.Sub(f.LastSeen) > staleAfter {
		f.Stale, f.Why = true, "no word for over "+staleAfter.String()
	}
	return f
}

type profileRow struct {
	Profile string
	Nodes   totals
}

type clusterRow struct {
	Name, Datacenter, Version string
	Cordoned                  bool
	Ready                     metav1.Condition
	Conditions                []metav1.Condition
	Nodes                     totals
	Profiles                  []profileRow
	Fresh                     freshness
}

type poolRow struct {
	Name, Cluster, Profile, NodeConfig string
	Desired                            int32
	BrokerCapacity                     int32
	Allocated                          int
	Nodes                              totals
	Conditions                         []metav1.Condition
}

type clustersView struct {
	Clusters []clusterRow
	Pools    []poolRow
	Sources  []store.Source
	Nodes    []store.Node
	// CanMachines: the user may follow links to machines.
	CanMachines bool
}

func (s *Server) readClusters(r *http.Request, only string) (*clustersView, error) {
	if err := s.need(r, accessClusters); err != nil {
		return nil, err
	}
	ctx := r.Context()
	cobjs, err := s.store.Objects(ctx, store.HubCluster, []string{store.KindCluster}, "")
	if err != nil {
		return nil, err
	}
	counts, err := s.store.NodeCounts(ctx, only)
	if err != nil {
		return nil, err
	}
	sources, err := s.store.Sources(ctx)
	if err != nil {
		return nil, err
	}
	v := &clustersView{Sources: sources}
	now := s.clock.Now()
	for _, o := range cobjs {
		if only != "" && o.Name != only {
			continue
		}
		c, err := decode[fleetv1alpha1.Cluster](o)
		if err != nil {
			return nil, err
		}
		row := clusterRow{Name: c.Name, Datacenter: c.Spec.Datacenter, Version: c.Status.KubernetesVersion, Cordoned: c.Spec.Cordoned,
			Ready: meta(c.Status.Conditions, fleetv1alpha1.ClusterReadyCondition), Conditions: c.Status.Conditions}
		var own []store.Source
		for _, src := range sources {
			if src.Cluster == c.Name {
				own = append(own, src)
			}
		}
		row.Fresh = freshnessOf(now, own)
		profiles := map[string]*totals{}
		for _, n := range counts {
			if n.Cluster != c.Name {
				continue
			}
			row.Nodes.add(n)
			if profiles[n.Profile] == nil {
				profiles[n.Profile] = &totals{}
			}
			profiles[n.Profile].add(n)
		}
		for _, name := range slices.Sorted(mapKeys(profiles)) {
			row.Profiles = append(row.Profiles, profileRow{Profile: name, Nodes: *profiles[name]})
		}
		v.Clusters = append(v.Clusters, row)
	}
	if only != "" && len(v.Clusters) == 0 {
		return nil, notFound("The hub has no Cluster %q.", only)
	}
	if ok, err := s.can(r, accessPools); err != nil {
		return nil, err
	} else if ok {
		if v.Pools, err = s.readPools(r, only, counts); err != nil {
			return nil, err
		}
	}
	if v.CanMachines, err = s.can(r, accessMachines); err != nil {
		return nil, err
	}
	return v, nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (s *Server) readPools(r *http.Request, only string, counts []store.NodeCount) ([]poolRow, error) {
	ctx := r.Context()
	pobjs, err := s.store.Objects(ctx, store.HubCluster, []string{store.KindPool}, "")
	if err != nil {
		return nil, err
	}
	bpools, err := s.store.BrokerPools(ctx)
	if err != nil {
		return nil, err
	}
	machines, err := s.store.PoolMachines(ctx)
	if err != nil {
		return nil, err
	}
	capacity := map[string]int32{}
	for _, b := range bpools {
		capacity[b.Name] = b.Capacity
	}
	var rows []poolRow
	for _, o := range pobjs {
		pl, err := decode[fleetv1alpha1.Pool](o)
		if err != nil {
			return nil, err
		}
		if only != "" && pl.Spec.Cluster != only {
			continue
		}
		row := poolRow{Name: pl.Name, Cluster: pl.Spec.Cluster, Profile: pl.Spec.NodeProfile, NodeConfig: pl.Spec.NodeConfig,
			Desired: pl.Spec.Capacity, BrokerCapacity: capacity[pl.Name], Conditions: pl.Status.Conditions}
		for state, n := range machines[pl.Name] {
			if state != store.MachineAvailable && state != store.MachineDecommissioned {
				row.Allocated += n
			}
		}
		for _, c := range counts {
			if c.Cluster == pl.Spec.Cluster && c.Pool == pl.Name {
				row.Nodes.add(c)
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func (s *Server) fillClusters(r *http.Request, p *page) error {
	v, err := s.readClusters(r, "")
	if err != nil {
		return err
	}
	p.Title, p.Data = "Clusters and pools", v
	return nil
}

func (s *Server) fillCluster(r *http.Request, p *page) error {
	name := r.PathValue("name")
	v, err := s.readClusters(r, name)
	if err != nil {
		return err
	}
	var own []store.Source
	for _, src := range v.Sources {
		if src.Cluster == name {
			own = append(own, src)
		}
	}
	v.Sources = own
	if v.Nodes, err = s.store.Nodes(r.Context(), name); err != nil {
		return err
	}
	p.Title, p.Data = "Cluster "+name, v
	return nil
}

// --- rollouts ---

type rolloutRow struct {
	fleetv1alpha1.MaintenanceRollout
	State string
	// Waiting says why it does not move, in words ("" when it moves).
	Waiting string
}

func rolloutState(ro fleetv1alpha1.MaintenanceRollout) (state, waiting string) {
	complete := meta(ro.Status.Conditions, fleetv1alpha1.RolloutCompleteCondition)
	paused := meta(ro.Status.Conditions, fleetv1alpha1.RolloutPausedCondition)
	progressing := meta(ro.Status.Conditions, fleetv1alpha1.RolloutProgressingCondition)
	switch {
	case complete.Status == metav1.ConditionTrue:
		return "Complete", ""
	case paused.Status == metav1.ConditionTrue:
		return "Paused", strings.TrimSuffix(paused.Reason+": "+paused.Message, ": ")
	case progressing.Reason == fleetv1alpha1.RolloutMaintainingReason:
		return "Maintaining zone " + strconv.Itoa(int(ro.Status.CurrentZone)), ""
	case progressing.Reason != "":
		return "Waiting", strings.TrimSuffix(progressing.Reason+": "+progressing.Message, ": ")
	default:
		return "Not started", "no status yet"
	}
}

func (s *Server) readRollouts(r *http.Request) ([]rolloutRow, error) {
	if err := s.need(r, accessRollouts); err != nil {
		return nil, err
	}
	objs, err := s.store.Objects(r.Context(), store.HubCluster, []string{store.KindMaintenanceRollout}, "")
	if err != nil {
		return nil, err
	}
	ros, err := decodeAll[fleetv1alpha1.MaintenanceRollout](objs)
	if err != nil {
		return nil, err
	}
	rows := make([]rolloutRow, 0, len(ros))
	for _, ro := range ros {
		st, w := rolloutState(ro)
		rows = append(rows, rolloutRow{MaintenanceRollout: ro, State: st, Waiting: w})
	}
	return rows, nil
}

func (s *Server) fillRollouts(r *http.Request, p *page) error {
	rows, err := s.readRollouts(r)
	if err != nil {
		return err
	}
	p.Title, p.Data = "Maintenance rollouts", rows
	return nil
}

func (s *Server) fillRollout(r *http.Request, p *page) error {
	rows, err := s.readRollouts(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	for _, row := range rows {
		if row.Name == name {
			p.Title, p.Data = "Rollout "+name, &row
			return nil
		}
	}
	return notFound("The hub has no MaintenanceRollout %q.", name)
}

// --- apps ---

type appRow struct {
	Cluster, Namespace, Name, Kind string
	Fleet                          bool
	Ready, Replicas                int32
	Versions, Canary, Release      string
	FailureCategory, FailureReason string
	FailureMessage                 string
	// ReleasePhase is a fleet release's phase (Releasing, Paused,
	// Waiting, Blocked, Released); ReleaseStuck: it stopped (Paused or
	// Blocked) until someone acts.
	ReleasePhase, ReleaseVersion string
	ReleaseStuck                 bool
	Conditions                   []metav1.Condition
	Clusters                     []appsv1alpha1.ClusterAppStatus
}

// readiness is an app's readiness as a page shows it: a CSS class, a
// mark and a word (colour is never the only signal), and why.
type readiness struct {
	Class, Mark, Word, Why string
	OK                     bool
}

// Readiness follows the app's Ready condition, which knows more than the
// replica counts (a failing pod, a paused release); only an app that
// reports no Ready condition yet is judged by its counts.
func (a appRow) Readiness() readiness {
	c := meta(a.Conditions, "Ready")
	switch {
	case c.Status == metav1.ConditionTrue:
		return readiness{Class: "ok", Mark: "✓", Word: "Ready", OK: true}
	case c.Status == metav1.ConditionFalse:
		return readiness{Class: "bad", Mark: "✗", Word: "Not ready", Why: joinNonEmpty(": ", c.Reason, c.Message)}
	case hasCondition(a.Conditions, "Ready"):
		return readiness{Class: "unknown", Mark: "?", Word: "Readiness unknown", Why: joinNonEmpty(": ", c.Reason, c.Message)}
	case a.Ready >= a.Replicas:
		return readiness{Class: "ok", Mark: "✓", Word: "Ready", OK: true, Why: "no Ready condition reported yet; judged by its replicas"}
	default:
		return readiness{Class: "bad", Mark: "✗", Word: "Not ready", Why: "no Ready condition reported yet; judged by its replicas"}
	}
}

func hasCondition(conds []metav1.Condition, t string) bool {
	return slices.ContainsFunc(conds, func(c metav1.Condition) bool { return c.Type == t })
}

func appOf(o store.Object) (appRow, error) {
	row := appRow{Cluster: o.Cluster, Namespace: o.Namespace, Name: o.Name, Kind: o.Kind, Fleet: o.Cluster == store.HubCluster}
	switch o.Kind {
	case store.KindStatelessApp:
		a, err := decode[appsv1alpha1.StatelessApp](o)
		if err != nil {
			return row, err
		}
		row.Ready, row.Replicas, row.Conditions, row.Clusters = a.Status.ReadyReplicas, a.Spec.Replicas, a.Status.Conditions, a.Status.Clusters
		row.Versions = joinNonEmpty(" config ", firstNonEmpty(a.Status.Stable.AppVersion, a.Spec.AppVersion), firstNonEmpty(a.Status.Stable.ConfigVersion, a.Spec.ConfigVersion))
		if c := a.Spec.Canary; c != nil {
			row.Canary = fmt.Sprintf("%s at %d%%", joinNonEmpty(" config ", c.AppVersion, c.ConfigVersion), c.Percent)
			if t := a.Status.Canary; t != nil {
				row.Canary += fmt.Sprintf(" (%d/%d ready)", t.ReadyReplicas, t.Replicas)
			}
		}
		if rel := a.Status.Release; rel != nil {
			row.Release, row.ReleasePhase, row.ReleaseVersion = rel.Message, rel.Phase, rel.AppVersion
			row.ReleaseStuck = rel.Phase == "Paused" || rel.Phase == "Blocked"
		}
		row.Versions = fleetVersions(row.Versions, a.Status.Clusters)
		f := a.Status.Failure
		for i := 0; f == nil && i < len(a.Status.Clusters); i++ {
			f = a.Status.Clusters[i].Failure
		}
		if f != nil {
			row.FailureCategory, row.FailureReason, row.FailureMessage = string(f.Category), f.Reason, f.Message
		}
	case store.KindStatefulApp:
		a, err := decode[appsv1alpha1.StatefulApp](o)
		if err != nil {
			return row, err
		}
		row.Ready, row.Replicas, row.Conditions, row.Versions = a.Status.ReadyReplicas, a.Spec.Replicas, a.Status.Conditions, a.Spec.Version
		if c := a.Spec.Canary; c != nil {
			row.Canary = fmt.Sprintf("%s on %d replicas", c.Version, c.Replicas)
		}
	}
	if ready := meta(row.Conditions, "Ready"); ready.Status == metav1.ConditionFalse && row.FailureReason == "" {
		row.FailureReason, row.FailureMessage = ready.Reason, ready.Message
	}
	return row, nil
}

// fleetVersions says which versions a fleet app's clusters run when they
// differ (a release under way or paused): "2.0.0 on workload-1, 1.0.0 on
// workload-2"; else the app's version.
func fleetVersions(version string, clusters []appsv1alpha1.ClusterAppStatus) string {
	on := map[string][]string{}
	var order []string
	for _, c := range clusters {
		if c.AppVersion == "" {
			continue
		}
		if on[c.AppVersion] == nil {
			order = append(order, c.AppVersion)
		}
		on[c.AppVersion] = append(on[c.AppVersion], c.Cluster)
	}
	if len(order) < 2 {
		return version
	}
	parts := make([]string, 0, len(order))
	for _, v := range order {
		parts = append(parts, v+" on "+strings.Join(on[v], ", "))
	}
	return strings.Join(parts, "; ")
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func joinNonEmpty(sep string, s ...string) string {
	return strings.Join(slices.DeleteFunc(slices.Clone(s), func(x string) bool { return x == "" }), sep)
}

func (s *Server) fillApps(r *http.Request, p *page) error {
	objs, err := s.store.Objects(r.Context(), "", kindsApps, "")
	if err != nil {
		return err
	}
	allowed := s.namespaceFilter(r)
	var rows []appRow
	for _, o := range objs {
		if ok, err := allowed(o.Namespace); err != nil {
			return err
		} else if !ok {
			continue
		}
		row, err := appOf(o)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	p.Title, p.Data = "Apps", rows
	return nil
}

// chain answers "why is this pod not ready": its Node, the Node's
// machine and zone, and the disruptions touching them.
type chain struct {
	Pod         store.Pod
	Node        *store.Node
	Machine     *store.Machine
	Disruptions []store.Disruption
	Missing     string
}

// maxChains bounds the not-ready pods an app page explains (each costs a
// few reads).
const maxChains = 50

func (s *Server) chainOf(r *http.Request, pod store.Pod) (chain, error) {
	ctx := r.Context()
	c := chain{Pod: pod}
	if pod.Node == "" {
		c.Missing = "not scheduled to a Node"
		return c, nil
	}
	n, err := s.store.Node(ctx, pod.Cluster, pod.Node)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			c.Missing = "its Node " + pod.Node + " is not in the store"
			return c, nil
		}
		return c, err
	}
	c.Node = &n
	if n.Machine == "" {
		c.Missing = "its Node names no machine"
		return c, nil
	}
	f := store.DisruptionFilter{Machine: n.Machine, Datacenter: n.Datacenter, Zone: n.MaintenanceZone}
	if m, err := s.store.Machine(ctx, n.Machine); err == nil {
		c.Machine = &m.Machine
		f.Datacenter, f.Zone = m.Machine.Datacenter, m.Machine.MaintenanceZone
	} else if !errors.Is(err, store.ErrNotFound) {
		return c, err
	}
	if c.Disruptions, err = s.store.ActiveDisruptions(ctx, f); err != nil {
		return c, err
	}
	return c, nil
}

type appView struct {
	App       appRow
	Pods      []store.Pod
	Truncated bool
	Chains    []chain
	Events    []store.Event
	Unready   int
}

func (s *Server) fillApp(r *http.Request, p *page) error {
	cluster, ns, name := r.PathValue("cluster"), r.PathValue("namespace"), r.PathValue("name")
	if err := s.need(r, accessApps(ns)); err != nil {
		return err
	}
	ctx := r.Context()
	o, err := s.store.Object(ctx, cluster, kindsApps, ns, name)
	if err != nil {
		return orNotFound(err, "Cluster %q has no app %s in namespace %q.", cluster, name, ns)
	}
	row, err := appOf(o)
	if err != nil {
		return err
	}
	v := appView{App: row}
	f := store.PodFilter{Cluster: cluster, Namespace: ns, App: name, Limit: 2000}
	if cluster == store.HubCluster {
		f.Cluster = "" // a fleet app's pods are in its clusters
	}
	if v.Pods, v.Truncated, err = s.store.Pods(ctx, f); err != nil {
		return err
	}
	for _, pod := range v.Pods {
		if pod.Ready {
			continue
		}
		v.Unready++
		if len(v.Chains) < maxChains {
			c, err := s.chainOf(r, pod)
			if err != nil {
				return err
			}
			v.Chains = append(v.Chains, c)
		}
	}
	if v.Events, err = s.store.Events(ctx, cluster, o.Kind, ns, name); err != nil {
		return err
	}
	p.Title, p.Data = fmt.Sprintf("App %s/%s on %s", ns, name, cluster), &v
	return nil
}

// --- pods and nodes ---

type podsView struct {
	Filter store.PodFilter
	Ready  string
	Pods   []store.Pod
	// Rows are the table's rows, written in Go: html/template's
	// contextual escaping of 10,000 rows costs more than the page's
	// budget (200 ms); every value in them is escaped.
	Rows      template.HTML
	Truncated bool
	Hidden    int
}

// maxField bounds a filter field: Kubernetes names are at most 253.
const maxField = 253

func (s *Server) fillPods(r *http.Request, p *page) error {
	q := r.URL.Query()
	f := store.PodFilter{Cluster: q.Get("cluster"), Namespace: q.Get("namespace"), App: q.Get("app"), Node: q.Get("node"),
		Phase: q.Get("phase"), NamePrefix: q.Get("name")}
	for field, v := range map[string]string{"cluster": f.Cluster, "namespace": f.Namespace, "app": f.App, "node": f.Node, "phase": f.Phase, "name": f.NamePrefix} {
		if len(v) > maxField {
			return badRequest("The %s filter is longer than %d characters.", field, maxField)
		}
	}
	v := podsView{Ready: q.Get("ready")}
	switch v.Ready {
	case "":
	case "true", "false":
		b := v.Ready == "true"
		f.Ready = &b
	default:
		return badRequest("The ready filter is true, false or empty, not %q.", v.Ready)
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > store.MaxPods {
			return badRequest("The limit is a number from 1 to %d.", store.MaxPods)
		}
		f.Limit = n
	}
	if f.Namespace != "" {
		if err := s.need(r, accessApps(f.Namespace)); err != nil {
			return err
		}
	}
	pods, truncated, err := s.store.Pods(r.Context(), f)
	if err != nil {
		return err
	}
	v.Filter, v.Truncated = f, truncated
	if s.signIn {
		allowed := s.namespaceFilter(r)
		kept := pods[:0]
		for _, pod := range pods {
			ok, err := allowed(pod.Namespace)
			if err != nil {
				return err
			}
			if ok {
				kept = append(kept, pod)
			} else {
				v.Hidden++
			}
		}
		pods = kept
	}
	v.Pods, v.Rows = pods, podRows(pods)
	p.Title, p.Data = "Pods", &v
	return nil
}

func (s *Server) fillPod(r *http.Request, p *page) error {
	cluster, ns, name := r.PathValue("cluster"), r.PathValue("namespace"), r.PathValue("name")
	if err := s.need(r, accessApps(ns)); err != nil {
		return err
	}
	pod, err := s.store.Pod(r.Context(), cluster, ns, name)
	if err != nil {
		return orNotFound(err, "Cluster %q has no pod %s in namespace %q.", cluster, name, ns)
	}
	c, err := s.chainOf(r, pod)
	if err != nil {
		return err
	}
	p.Title, p.Data = "Pod "+ns+"/"+name, &c
	return nil
}

type nodeView struct {
	Node        store.Node
	Machine     *store.Machine
	Disruptions []store.Disruption
	Pods        []store.Pod
	Truncated   bool
	Events      []store.Event
}

func (s *Server) fillNode(r *http.Request, p *page) error {
	if err := s.need(r, accessClusters); err != nil {
		return err
	}
	cluster, name := r.PathValue("cluster"), r.PathValue("name")
	ctx := r.Context()
	n, err := s.store.Node(ctx, cluster, name)
	if err != nil {
		return orNotFound(err, "Cluster %q has no Node %q.", cluster, name)
	}
	c, err := s.chainOf(r, store.Pod{Cluster: cluster, Node: name})
	if err != nil {
		return err
	}
	v := nodeView{Node: n, Machine: c.Machine, Disruptions: c.Disruptions}
	pods, truncated, err := s.store.Pods(ctx, store.PodFilter{Cluster: cluster, Node: name, Limit: 1000})
	if err != nil {
		return err
	}
	allowed := s.namespaceFilter(r)
	for _, pod := range pods {
		if ok, err := allowed(pod.Namespace); err != nil {
			return err
		} else if ok {
			v.Pods = append(v.Pods, pod)
		}
	}
	v.Truncated = truncated
	if v.Events, err = s.store.Events(ctx, cluster, store.KindNode, "", name); err != nil {
		return err
	}
	p.Title, p.Data = "Node "+name, &v
	return nil
}

// --- search ---

type searchView struct {
	Query string
	Hits  []store.Hit
}

func (s *Server) fillSearch(r *http.Request, p *page) error {
	q := r.URL.Query().Get("q")
	p.Title, p.Query = "Search", q
	v := &searchView{Query: q}
	p.Data = v
	if strings.TrimSpace(q) == "" {
		return nil
	}
	p.Title = "Search: " + q
	hits, err := s.store.Search(r.Context(), q)
	if err != nil {
		return err
	}
	allowed := s.namespaceFilter(r)
	byKind := map[string]bool{}
	for _, h := range hits {
		var ok bool
		switch h.Kind {
		case store.HitApp, store.HitPod:
			ok, err = allowed(h.Namespace)
		default:
			seen, done := byKind[h.Kind]
			if !done {
				acc := accessClusters
				if h.Kind == store.HitMachine {
					acc = accessMachines
				}
				if seen, err = s.can(r, acc); err != nil {
					return err
				}
				byKind[h.Kind] = seen
			}
			ok = seen
		}
		if err != nil {
			return err
		}
		if ok {
			v.Hits = append(v.Hits, h)
		}
	}
	return nil
}

// podRows writes the pods table's rows, escaping every value (HTML text
// and attributes with html.EscapeString, path segments with
// url.PathEscape first).
func podRows(pods []store.Pod) template.HTML {
	var b strings.Builder
	b.Grow(len(pods) * 450)
	// Each piece is written on its own: concatenating them first would
	// allocate for every row.
	w := func(parts ...string) {
		for _, s := range parts {
			b.WriteString(s)
		}
	}
	e := html.EscapeString
	for _, p := range pods {
		cluster, ns := e(url.PathEscape(p.Cluster)), e(url.PathEscape(p.Namespace))
		w(`<tr><th scope="row"><a href="/pods/`, cluster, "/", ns, "/", e(url.PathEscape(p.Name)), `">`,
			e(p.Namespace), "/", e(p.Name), "</a></th><td>", e(p.Cluster), "</td><td>")
		if p.App != "" {
			w(`<a href="/apps/`, cluster, "/", ns, "/", e(url.PathEscape(p.App)), `">`, e(p.App), "</a>")
		}
		w("</td><td>", e(p.Phase))
		if p.Ready {
			w("</td><td>✓ ready</td><td>")
		} else {
			w(`</td><td class="bad">✗ not ready</td><td>`)
		}
		if p.Node != "" {
			w(`<a href="/nodes/`, cluster, "/", e(url.PathEscape(p.Node)), `">`, e(p.Node), "</a>")
		}
		w("</td><td>", strconv.Itoa(int(p.Restarts)), "</td><td>", e(p.Reason), "</td></tr>\n")
	}
	return template.HTML(b.String()) //nolint:gosec // every value above is escaped
}
