package e2e

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
	fleetv1alpha1 "github.com/strata-dev/strata/api/fleet/v1alpha1"
	"github.com/strata-dev/strata/internal/localdc"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

// batchProfile is the node profile of the trial's Pools: highmem machines,
// apart from the general ones the other tests' apps use.
const batchProfile = "highmem"

// jobOrg is an organisation of the trial: its queue (the Cohort its teams
// borrow from) with quota of its own, and two teams, each a queue and an
// AppNamespace of the same name.
type jobOrg struct {
	name  string
	teams []string
}

var jobOrgs = []jobOrg{
	{name: "search", teams: []string{"ranking", "indexing"}},
	{name: "ads", teams: []string{"ctr", "bidding"}},
}

// jobsTrial runs the jobs platform end to end in a running local
// datacenter: Pools of batchProfile in every workload cluster, two
// organisations of two teams each, jobs of pods gang pods submitted at
// once on the hub, a MaintenanceRollout of the first cluster's Pool while
// they run; it samples what runs in the workload clusters throughout.
type jobsTrial struct {
	bin, home, hub string
	clusters       []string
	// poolCapacity is the Nodes of each cluster's batch Pool.
	poolCapacity int
	// teamCPU is each team's quota and orgCPU each organisation's own, in
	// cores of batchProfile: an organisation's jobs use at most
	// orgCPU + teams x teamCPU.
	teamCPU, orgCPU int64
	jobs            int
	pods            int32
	podCPU          int64
	runTime         time.Duration
	// prefix names the run's jobs, so runs in one datacenter differ.
	prefix string
	// rollout, when set, is the MaintenanceRollout of the first cluster's
	// Pool that runs beside the jobs.
	rollout string
}

func (tr *jobsTrial) pool(cluster string) string { return "batch-" + cluster }

// setUp creates the Pools, queues and namespaces, and waits until they are
// ready.
func (tr *jobsTrial) setUp(t testing.TB) {
	t.Helper()
	var b strings.Builder
	for _, c := range tr.clusters {
		fmt.Fprintf(&b, `---
apiVersion: fleet.strata.dev/v1alpha1
kind: Pool
metadata: {name: %s}
spec: {cluster: %s, capacity: %d, nodeProfile: %s}
`, tr.pool(c), c, tr.poolCapacity, batchProfile)
	}
	for _, org := range jobOrgs {
		fmt.Fprintf(&b, `---
apiVersion: apps.strata.dev/v1alpha1
kind: BatchQueue
metadata: {name: %s}
spec:
  organization: %s
  quotas: [{nodeProfile: %s, cpu: "%d", memory: 4Ti}]
`, org.name, org.name, batchProfile, tr.orgCPU)
		for _, team := range org.teams {
			fmt.Fprintf(&b, `---
apiVersion: apps.strata.dev/v1alpha1
kind: BatchQueue
metadata: {name: %s}
spec:
  organization: %s
  parent: %s
  quotas: [{nodeProfile: %s, cpu: "%d", memory: 4Ti}]
---
apiVersion: apps.strata.dev/v1alpha1
kind: AppNamespace
metadata: {name: %s}
spec: {app: %s, tenant: batch, nodeProfile: %s, batchQueue: %s}
`, team, org.name, org.name, batchProfile, tr.teamCPU, team, team, batchProfile, team)
		}
	}
	runKubectlApply(t, tr.bin, tr.hub, b.String())
	hc := appsClient(t, tr.hub)
	for _, c := range tr.clusters {
		poll(t, 4*time.Minute, "Pool "+tr.pool(c)+" Ready", func(ctx context.Context) (bool, string) {
			p := &fleetv1alpha1.Pool{}
			if err := hc.Get(ctx, client.ObjectKey{Name: tr.pool(c)}, p); err != nil {
				return false, err.Error()
			}
			return meta.IsStatusConditionTrue(p.Status.Conditions, fleetv1alpha1.PoolReadyCondition), conditionsOf(p.Status.Conditions)
		})
	}
	for _, org := range jobOrgs {
		for _, q := range append([]string{org.name}, org.teams...) {
			poll(t, 2*time.Minute, "BatchQueue "+q+" Ready", func(ctx context.Context) (bool, string) {
				bq := &appsv1alpha1.BatchQueue{}
				if err := hc.Get(ctx, client.ObjectKey{Name: q}, bq); err != nil {
					return false, err.Error()
				}
				return meta.IsStatusConditionTrue(bq.Status.Conditions, appsv1alpha1.BatchQueueReadyCondition) &&
					meta.IsStatusConditionTrue(bq.Status.Conditions, appsv1alpha1.BatchQueueClustersSyncedCondition), conditionsOf(bq.Status.Conditions)
			})
		}
		for _, team := range org.teams {
			poll(t, 2*time.Minute, "AppNamespace "+team+" Ready", func(ctx context.Context) (bool, string) {
				an := &appsv1alpha1.AppNamespace{}
				if err := hc.Get(ctx, client.ObjectKey{Name: team}, an); err != nil {
					return false, err.Error()
				}
				return meta.IsStatusConditionTrue(an.Status.Conditions, appsv1alpha1.AppNamespaceReadyCondition), conditionsOf(an.Status.Conditions)
			})
		}
	}
}

// teams are the trial's teams in submission order: the first team of each
// organisation gets two jobs of three, so that it borrows.
func (tr *jobsTrial) teamOf(i int) (org, team string) {
	o := jobOrgs[i%len(jobOrgs)]
	if (i/len(jobOrgs))%3 == 2 {
		return o.name, o.teams[1]
	}
	return o.name, o.teams[0]
}

func (tr *jobsTrial) job(i int) *batchv1.Job {
	_, team := tr.teamOf(i)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("%s-%04d", tr.prefix, i), Namespace: team,
			Labels: map[string]string{kueue.QueueNameLabel: team},
		},
		Spec: batchv1.JobSpec{
			Parallelism: ptr.To(tr.pods), Completions: ptr.To(tr.pods),
			CompletionMode: ptr.To(batchv1.IndexedCompletion),
			BackoffLimit:   ptr.To[int32](0),
			// A pod evicted by a drain is started again, not counted as
			// the job's failure (docs/jobs.md#maintenance).
			PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
				Action:          batchv1.PodFailurePolicyActionIgnore,
				OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
			}}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{runTimeAnnotation: tr.runTime.String()}},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{
						Name: "train", Image: "registry.example/train:1",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: *resource.NewQuantity(tr.podCPU, resource.DecimalSI), corev1.ResourceMemory: resource.MustParse("1Gi"),
						}},
					}},
				},
			},
		},
	}
}

// jobsResult is what a trial measured and found.
type jobsResult struct {
	jobs                int
	admittedPerSecond   float64
	queueToRunning      []time.Duration
	p50, p99            time.Duration
	maxOrgCPU           map[string]int64
	maxTeamCPU          map[string]int64
	quotaViolations     []string
	partialGangs        []string
	brokenGangs         int // whole, then short of a pod a drain evicted
	maintenancePlaced   []string
	failed, unfinished  []string
	samples             int
	perCluster          map[string]int
	submitted, finished time.Time
}

// run submits the jobs at once and waits until every one has finished,
// sampling the workload clusters.
func (tr *jobsTrial) run(t testing.TB, timeout time.Duration) jobsResult {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	hubCS := clientset(t, tr.hub)
	hc := appsClient(t, tr.hub)
	watchers := map[string]*podWatch{}
	for _, c := range tr.clusters {
		watchers[c] = watchPods(ctx, t, clientset(t, localdc.KubeconfigPath(tr.home, c)), tr.prefix)
	}
	res := jobsResult{jobs: tr.jobs, maxOrgCPU: map[string]int64{}, maxTeamCPU: map[string]int64{}, perCluster: map[string]int{}}
	var sampling sync.WaitGroup
	sampling.Add(1)
	go func() {
		defer sampling.Done()
		tr.sample(ctx, watchers, &res)
	}()

	if tr.rollout != "" {
		runKubectlApply(t, tr.bin, tr.hub, fmt.Sprintf(`
apiVersion: fleet.strata.dev/v1alpha1
kind: MaintenanceRollout
metadata: {name: %s}
spec: {pools: [%s], nodeConfig: %s}
`, tr.rollout, tr.pool(tr.clusters[0]), tr.rollout))
		run(t, tr.bin, "kubectl", "--kubeconfig", tr.hub, "patch", "pool", tr.pool(tr.clusters[0]), "--type", "merge",
			"-p", fmt.Sprintf(`{"spec":{"nodeConfig":%q}}`, tr.rollout))
	}

	// The hub's Kueue makes a queued Job MultiKueue's only once it has read
	// the queues (after a restart too); until then the hub refuses it
	// (guardrail queued-job). A person creates it again: so does the trial,
	// with a dry run, before it starts the clock.
	err := wait.PollUntilContextTimeout(ctx, time.Second, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		for i := range min(tr.jobs, len(jobOrgs)*len(jobOrgs[0].teams)) {
			if _, err := hubCS.BatchV1().Jobs(tr.job(i).Namespace).Create(ctx, tr.job(i), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("the hub's Kueue does not take jobs in every team's queue: %v", err)
	}
	res.submitted = time.Now()
	sem := make(chan struct{}, 16)
	var submit sync.WaitGroup
	errs := make(chan error, tr.jobs)
	for i := range tr.jobs {
		submit.Add(1)
		sem <- struct{}{}
		go func() {
			defer submit.Done()
			defer func() { <-sem }()
			if _, err := hubCS.BatchV1().Jobs(tr.job(i).Namespace).Create(ctx, tr.job(i), metav1.CreateOptions{}); err != nil {
				errs <- err
			}
		}()
	}
	submit.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("submitting a job on the hub: %v", err)
	}
	t.Logf("%d jobs of %d pods submitted in %s", tr.jobs, tr.pods, time.Since(res.submitted).Round(time.Millisecond))

	// Every job finishes: Complete or Failed on the hub (Kueue copies the
	// status back from the workload cluster).
	var last string
	err = wait.PollUntilContextTimeout(ctx, 5*time.Second, timeout, true, func(ctx context.Context) (bool, error) {
		done, state := tr.finished(ctx, hc)
		last = state
		return done, nil
	})
	res.finished = time.Now()
	if err != nil {
		t.Errorf("jobs did not all finish within %s: %s\n%s", timeout, last, run(t, tr.bin, "strata", "apps", "--home", tr.home, "jobs", jobOrgs[0].teams[0]))
	}
	cancel()
	sampling.Wait()
	tr.collect(t, hc, watchers, &res)
	return res
}

// finished reports whether every job of the run has finished, and how many
// are in which state.
func (tr *jobsTrial) finished(ctx context.Context, hc client.Client) (bool, string) {
	jobs := &batchv1.JobList{}
	if err := hc.List(ctx, jobs); err != nil {
		return false, err.Error()
	}
	states := map[string]int{}
	n := 0
	for i := range jobs.Items {
		j := &jobs.Items[i]
		if !strings.HasPrefix(j.Name, tr.prefix+"-") {
			continue
		}
		n++
		states[jobState(j)]++
	}
	return n == tr.jobs && states["Complete"]+states["Failed"] == n, fmt.Sprintf("%d jobs: %v", n, states)
}

func jobState(j *batchv1.Job) string {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return string(c.Type)
		}
	}
	if ptr.Deref(j.Spec.Suspend, false) {
		return "Suspended"
	}
	return "Active"
}

// podWatch records every pod of the run's jobs in one workload cluster as
// it changes: where and when it was placed, and when it ran.
type podWatch struct {
	mu   sync.Mutex
	pods map[string]*podRecord // by namespace/name
	live cache.Store
}

type podRecord struct {
	namespace, job, node string
	cpu                  int64
	scheduled, running   time.Time
}

func watchPods(ctx context.Context, t testing.TB, cs kubernetes.Interface, prefix string) *podWatch {
	t.Helper()
	w := &podWatch{pods: map[string]*podRecord{}}
	factory := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = batchv1.JobNameLabel
	}))
	inf := factory.Core().V1().Pods().Informer()
	record := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok || !strings.HasPrefix(p.Labels[batchv1.JobNameLabel], prefix+"-") {
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		key := p.Namespace + "/" + p.Name
		r := w.pods[key]
		if r == nil {
			r = &podRecord{namespace: p.Namespace, job: p.Labels[batchv1.JobNameLabel], cpu: podCPU(p)}
			w.pods[key] = r
		}
		if p.Spec.NodeName != "" {
			r.node = p.Spec.NodeName
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue && r.scheduled.IsZero() {
				r.scheduled = c.LastTransitionTime.Time
			}
		}
		if p.Status.Phase == corev1.PodRunning && r.running.IsZero() {
			r.running = time.Now()
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: record, UpdateFunc: func(_, obj any) { record(obj) }})
	w.live = inf.GetStore()
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		t.Fatal("the pod watch of a workload cluster did not sync")
	}
	return w
}

func podCPU(p *corev1.Pod) int64 {
	var m int64
	for _, c := range p.Spec.Containers {
		m += c.Resources.Requests.Cpu().MilliValue()
	}
	return m
}

// sample checks, every second until ctx ends, what runs in the workload
// clusters: the cores each team and organisation holds (bound, not
// finished pods) against the quotas, and gangs placed in part. A gang seen
// in part in three samples in a row (binding a gang's pods takes
// milliseconds) is a partial gang, unless that copy of the job (the
// Job's uid in its cluster) was whole before: then a drain evicted one of
// its pods, and it gets it back, or its gang shrinks to the pods left
// (docs/jobs.md#gangs-all-of-a-jobs-pods-or-none); those are counted.
func (tr *jobsTrial) sample(ctx context.Context, watchers map[string]*podWatch, res *jobsResult) {
	orgOfTeam := map[string]string{}
	for _, o := range jobOrgs {
		for _, team := range o.teams {
			orgOfTeam[team] = o.name
		}
	}
	orgLimit := tr.orgCPU + int64(len(jobOrgs[0].teams))*tr.teamCPU
	partial := map[string]int{}
	whole := map[string]bool{}
	broken := map[string]bool{}
	reported := map[string]bool{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		team := map[string]int64{}
		bound := map[string]int32{}
		for _, w := range watchers {
			for _, obj := range w.live.List() {
				p := obj.(*corev1.Pod)
				if !strings.HasPrefix(p.Labels[batchv1.JobNameLabel], tr.prefix+"-") || p.Status.Phase == corev1.PodSucceeded ||
					p.Status.Phase == corev1.PodFailed || p.DeletionTimestamp != nil {
					continue
				}
				job := p.Namespace + "/" + p.Labels[batchv1.JobNameLabel] + "@" + p.Labels[batchv1.ControllerUidLabel]
				if _, ok := bound[job]; !ok {
					bound[job] = 0
				}
				if p.Spec.NodeName != "" {
					team[p.Namespace] += podCPU(p)
					bound[job]++
				}
			}
		}
		res.samples++
		org := map[string]int64{}
		for t, m := range team {
			org[orgOfTeam[t]] += m
			res.maxTeamCPU[t] = max(res.maxTeamCPU[t], m/1000)
		}
		for o, m := range org {
			res.maxOrgCPU[o] = max(res.maxOrgCPU[o], m/1000)
			if m > orgLimit*1000 {
				res.quotaViolations = append(res.quotaViolations, fmt.Sprintf("%s: organisation %s holds %d cores, its quota is %d",
					time.Now().Format(time.TimeOnly), o, m/1000, orgLimit))
			}
		}
		for job, n := range bound {
			switch {
			case n == tr.pods:
				whole[job] = true
				partial[job] = 0
			case n > 0 && whole[job]:
				broken[job] = true
				res.brokenGangs = len(broken)
			case n > 0:
				partial[job]++
			default:
				partial[job] = 0
			}
			if partial[job] >= 3 && !reported[job] {
				reported[job] = true
				res.partialGangs = append(res.partialGangs, fmt.Sprintf("%s: %d of %d pods placed for 3 s", job, n, tr.pods))
			}
		}
	}
}

// collect reads the run's figures: admission times from the hub's
// Workloads, placement and run times from the pod watches, and the pods
// placed in a maintenance zone while it was maintained.
func (tr *jobsTrial) collect(t testing.TB, hc client.Client, watchers map[string]*podWatch, res *jobsResult) {
	t.Helper()
	jobs := &batchv1.JobList{}
	if err := hc.List(t.Context(), jobs); err != nil {
		t.Fatal(err)
	}
	created := map[string]time.Time{}
	for i := range jobs.Items {
		j := &jobs.Items[i]
		if !strings.HasPrefix(j.Name, tr.prefix+"-") {
			continue
		}
		created[j.Namespace+"/"+j.Name] = j.CreationTimestamp.Time
		switch jobState(j) {
		case "Complete":
		case "Failed":
			res.failed = append(res.failed, j.Namespace+"/"+j.Name)
		default:
			res.unfinished = append(res.unfinished, j.Namespace+"/"+j.Name+" ("+jobState(j)+")")
		}
	}
	// Admitted: the last Admitted of the run's hub Workloads.
	wls := kueue.NewList(kueue.WorkloadKind)
	if err := hc.List(t.Context(), wls); err != nil {
		t.Fatal(err)
	}
	var lastAdmitted time.Time
	admitted := 0
	for _, wl := range wls.Items {
		if !strings.Contains(wl.GetName(), tr.prefix+"-") {
			continue
		}
		conds, _, _ := unstructured.NestedSlice(wl.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Admitted" {
				at, _ := time.Parse(time.RFC3339, fmt.Sprint(m["lastTransitionTime"]))
				admitted++
				if at.After(lastAdmitted) {
					lastAdmitted = at
				}
			}
		}
	}
	// Admitted jobs that finished carry Admitted=False: count them by the
	// jobs that ran instead when the Workloads no longer say.
	ran := map[string]time.Time{}
	for c, w := range watchers {
		w.mu.Lock()
		perJob := map[string]bool{}
		for _, p := range w.pods {
			key := p.namespace + "/" + p.job
			if p.running.After(ran[key]) {
				ran[key] = p.running
			}
			perJob[key] = true
		}
		res.perCluster[c] = len(perJob)
		w.mu.Unlock()
	}
	span := lastAdmitted.Sub(res.submitted).Seconds()
	if admitted < len(ran) {
		admitted = len(ran)
	}
	if span > 0 {
		res.admittedPerSecond = float64(admitted) / span
	}
	for key, at := range ran {
		if c, ok := created[key]; ok && !at.IsZero() {
			res.queueToRunning = append(res.queueToRunning, at.Sub(c))
		}
	}
	slices.Sort(res.queueToRunning)
	res.p50, res.p99 = percentile(res.queueToRunning, 0.50), percentile(res.queueToRunning, 0.99)
	if tr.rollout != "" {
		res.maintenancePlaced = tr.placedInMaintenance(t, watchers[tr.clusters[0]])
	}
}

func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// placedInMaintenance lists the run's pods placed on a Node of the rolled
// Pool while its maintenance zone was maintained: from the first
// disruption of a machine of the zone to the last one's end.
func (tr *jobsTrial) placedInMaintenance(t testing.TB, w *podWatch) []string {
	t.Helper()
	zoneOf := map[string]int32{}
	windows := map[int32][2]time.Time{}
	for _, d := range disruptionsBy(t, tr.bin, tr.home, "maintenance/"+tr.rollout) {
		zoneOf[d.GetMachine()] = d.GetMaintenanceZone()
		span, ok := windows[d.GetMaintenanceZone()]
		if !ok || d.GetCreateTime().AsTime().Before(span[0]) {
			span[0] = d.GetCreateTime().AsTime()
		}
		if d.GetUpdateTime().AsTime().After(span[1]) {
			span[1] = d.GetUpdateTime().AsTime()
		}
		windows[d.GetMaintenanceZone()] = span
	}
	if len(windows) == 0 {
		t.Errorf("rollout %s made no disruption", tr.rollout)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for name, p := range w.pods {
		zone, ok := zoneOf[p.node]
		if !ok || p.scheduled.IsZero() {
			continue
		}
		// The PodScheduled condition's time is cut to the second: count
		// the pod only if all of that second is inside the window (a pod
		// bound in the second the zone came back may be bound after it).
		if span := windows[zone]; !p.scheduled.Before(span[0]) && !p.scheduled.Add(time.Second).After(span[1]) {
			out = append(out, fmt.Sprintf("%s on %s (MZ %d) at %s, maintained %s-%s", name, p.node, zone,
				p.scheduled.Format(time.TimeOnly), span[0].Format(time.TimeOnly), span[1].Format(time.TimeOnly)))
		}
	}
	slices.Sort(out)
	return out
}

// check fails t on what the platform promises: quotas never exceeded,
// borrowing within the organisation only, no partial gang, every job
// finished, none placed in a zone under maintenance.
func (res jobsResult) check(t testing.TB) {
	t.Helper()
	for _, list := range []struct {
		what  string
		items []string
	}{
		{"quota exceeded", res.quotaViolations}, {"partial gangs", res.partialGangs},
		{"jobs failed", res.failed}, {"jobs unfinished", res.unfinished},
		{"pods placed in a zone under maintenance", res.maintenancePlaced},
	} {
		if len(list.items) > 0 {
			t.Errorf("%s: %d, e.g. %s", list.what, len(list.items), strings.Join(list.items[:min(5, len(list.items))], "; "))
		}
	}
	if res.samples == 0 {
		t.Error("the workload clusters were never sampled")
	}
	t.Logf("%d jobs in %s: %.2f admitted/s, queue-to-running p50 %s p99 %s; per cluster %v; peak cores per org %v, per team %v; "+
		"%d gangs short of an evicted pod for a while; %d samples",
		res.jobs, res.finished.Sub(res.submitted).Round(time.Second), res.admittedPerSecond, res.p50.Round(time.Millisecond),
		res.p99.Round(time.Millisecond), res.perCluster, res.maxOrgCPU, res.maxTeamCPU, res.brokenGangs, res.samples)
}

// testJobs is the jobs platform in TestApps' datacenter: 32 jobs of 8
// pods, two organisations of two teams, a MaintenanceRollout beside them,
// kubectl strata jobs as a person reads it.
func testJobs(t *testing.T, bin, home string) {
	tr := &jobsTrial{
		bin: bin, home: home, hub: localdc.KubeconfigPath(home, localdc.HubName),
		clusters:     []string{localdc.WorkloadClusterName(1), localdc.WorkloadClusterName(2)},
		poolCapacity: 4, teamCPU: 32, orgCPU: 32,
		jobs: 32, pods: 8, podCPU: 2, runTime: 5 * time.Second, prefix: "e2e", rollout: "batch-v2",
	}
	tr.setUp(t)
	res := tr.run(t, 10*time.Minute)
	res.check(t)
	orgLimit := tr.orgCPU + 2*tr.teamCPU
	// The first team of each organisation gets two jobs of three, so it
	// should borrow; which one does depends on when the fleet's capacity
	// (both organisations fill it) frees while its sibling is idle, so
	// borrowing is asked of either.
	if res.maxTeamCPU["ranking"] <= tr.teamCPU && res.maxTeamCPU["ctr"] <= tr.teamCPU {
		t.Errorf("no team borrowed: ranking at most %d cores, ctr %d; a team's quota is %d (its organisation's is %d)",
			res.maxTeamCPU["ranking"], res.maxTeamCPU["ctr"], tr.teamCPU, orgLimit)
	}
	if len(res.perCluster) < 2 {
		t.Errorf("jobs ran in %v, want both clusters", res.perCluster)
	}
	waitRolloutComplete(t, tr)

	t.Run("kubectl strata jobs", func(t *testing.T) {
		out := pluginRun(t, bin, tr.hub, "jobs")
		for _, want := range []string{"QUEUE", "ranking", "search", batchProfile} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl strata jobs lacks %q:\n%s", want, out)
			}
		}
		out = pluginRun(t, bin, tr.hub, "jobs", "ranking", "--all")
		if !strings.Contains(out, "Finished") || !strings.Contains(out, tr.prefix+"-0000") {
			t.Errorf("kubectl strata jobs ranking --all lacks the finished jobs:\n%s", out)
		}
	})
}

// waitRolloutComplete waits until the trial's MaintenanceRollout completed.
func waitRolloutComplete(t testing.TB, tr *jobsTrial) {
	t.Helper()
	waitRollout(t, hubClient(t, tr.hub), tr.rollout, 15*time.Minute, func(ro *fleetv1alpha1.MaintenanceRollout) bool {
		return meta.IsStatusConditionTrue(ro.Status.Conditions, fleetv1alpha1.RolloutCompleteCondition)
	})
}
