package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	schedulingv1alpha3 "k8s.io/api/scheduling/v1alpha3"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/strata-dev/strata/internal/workload/jobgang"
	"github.com/strata-dev/strata/internal/workload/kueue"
)

// The annotations of a Job's pod template that the local datacenter's kwok
// stages read (internal/localdc/appstages.yaml).
const (
	runTimeAnnotation   = "strata.dev/run-time"
	runResultAnnotation = "strata.dev/run-result"
)

// jobsNamespace holds the plain Jobs of these steps, outside any
// AppNamespace (and its quota).
const jobsNamespace = "kwok-jobs"

// testJobRunTime: kwok plays a Job's pod for the run time its template's
// annotation gives, then ends it Succeeded, or Failed when asked to.
func testJobRunTime(t *testing.T, c client.Client) {
	ensureJobsNamespace(t, c)
	const runTime = 10 * time.Second
	ok := plainJob("runs", 1, map[string]string{runTimeAnnotation: runTime.String()})
	failing := plainJob("fails", 1, map[string]string{runTimeAnnotation: runTime.String(), runResultAnnotation: "Failed"})
	for _, j := range []*batchv1.Job{ok, failing} {
		if err := c.Create(t.Context(), j); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		job      *batchv1.Job
		finished batchv1.JobConditionType
		phase    corev1.PodPhase
		exitCode int32
	}{
		{ok, batchv1.JobComplete, corev1.PodSucceeded, 0},
		{failing, batchv1.JobFailed, corev1.PodFailed, 1},
	} {
		waitJobCondition(t, c, tc.job.Name, tc.finished)
		pods := jobPods(t, c, tc.job.Name)
		if len(pods) != 1 {
			t.Fatalf("Job %s has %d pods, want 1 (backoffLimit 0)", tc.job.Name, len(pods))
		}
		p := pods[0]
		if p.Status.Phase != tc.phase || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Terminated == nil {
			t.Fatalf("pod %s of Job %s: phase %s, container statuses %+v; want %s, terminated", p.Name, tc.job.Name, p.Status.Phase, p.Status.ContainerStatuses, tc.phase)
		}
		term := p.Status.ContainerStatuses[0].State.Terminated
		if term.ExitCode != tc.exitCode {
			t.Errorf("pod %s of Job %s exited %d, want %d", p.Name, tc.job.Name, term.ExitCode, tc.exitCode)
		}
		// The run time is honoured: the container ran at least that long
		// (kwok's status, not the test's clock).
		if ran := term.FinishedAt.Sub(term.StartedAt.Time); ran < runTime {
			t.Errorf("pod %s of Job %s ran %s, want at least its run time %s", p.Name, tc.job.Name, ran, runTime)
		}
	}
}

// testEvictedJobPod: a running Job pod that is evicted (as a drain does) is
// stopped as a kubelet would stop it, Failed with its DisruptionTarget
// condition, so that the Job controller lets it go and, its
// podFailurePolicy ignoring disruptions, starts another; the Job completes.
func testEvictedJobPod(t *testing.T, c client.Client) {
	ensureJobsNamespace(t, c)
	job := plainJob("evicted", 1, map[string]string{runTimeAnnotation: "4s"})
	job.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
		Action:          batchv1.PodFailurePolicyActionIgnore,
		OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
	}}}
	if err := c.Create(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	var first corev1.Pod
	poll(t, time.Minute, "the Job's pod Running", func(context.Context) (bool, string) {
		pods := jobPods(t, c, job.Name)
		if len(pods) == 1 && pods[0].Status.Phase == corev1.PodRunning {
			first = pods[0]
			return true, ""
		}
		return false, fmt.Sprintf("%d pods", len(pods))
	})
	if err := c.SubResource("eviction").Create(t.Context(), &first, &policyv1.Eviction{}); err != nil {
		t.Fatalf("evicting %s: %v", first.Name, err)
	}
	waitJobCondition(t, c, job.Name, batchv1.JobComplete)
	for _, p := range jobPods(t, c, job.Name) {
		if p.Name == first.Name {
			t.Errorf("the evicted pod %s is still there (phase %s, deleted %v)", p.Name, p.Status.Phase, p.DeletionTimestamp)
		}
	}
}

// testGangScheduling: a gang Job of 8 pods on a Node where only 7 fit binds
// none of them, each pending with the scheduler's reason; once room frees,
// all 8 bind.
func testGangScheduling(t *testing.T, c client.Client) {
	ensureJobsNamespace(t, c)
	node, free := emptiestNode(t, c)
	// Each pod takes an eighth of the Node's free cpu less a 2-cpu slack;
	// a blocker leaves room for 7.5 pods: 7 fit, the 8th does not, and the
	// slack and the half pod absorb other pods coming and going.
	per := (free - 2000) / 8
	blocker := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "gang-blocker", Namespace: jobsNamespace},
		Spec: corev1.PodSpec{
			NodeName:   node,
			Containers: []corev1.Container{{Name: "c", Image: "registry.example/blocker:1", Resources: cpuRequest(free - 7*per - per/2)}},
		},
	}
	if err := c.Create(t.Context(), blocker); err != nil {
		t.Fatal(err)
	}
	job := plainJob("gang", 8, nil)
	job.Spec.Scheduling = &batchv1.JobSchedulingConfiguration{
		SchedulingPolicy: &schedulingv1alpha3.WorkloadPodGroupSchedulingPolicy{Gang: &schedulingv1alpha3.WorkloadPodGroupGangSchedulingPolicy{}},
	}
	job.Spec.Template.Spec.Containers[0].Resources = cpuRequest(per)
	job.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
		}}},
	}}
	if err := c.Create(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "all 8 pods of the gang refused by the scheduler", func(context.Context) (bool, string) {
		pods := jobPods(t, c, job.Name)
		var seen []string
		refused, forTheGang := 0, 0
		for _, p := range pods {
			if p.Spec.NodeName != "" {
				t.Fatalf("pod %s of the gang was bound to %s while the gang cannot fit", p.Name, p.Spec.NodeName)
			}
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse && cond.Reason == corev1.PodReasonUnschedulable {
					refused++
					// The pods that would fit wait for the gang; the one
					// that does not is short of cpu.
					if strings.Contains(cond.Message, "minCount (8) cannot be satisfied") {
						forTheGang++
					}
				}
			}
			seen = append(seen, p.Name+": "+podScheduled(p))
		}
		return len(pods) == 8 && refused == 8 && forTheGang > 0, strings.Join(seen, "; ")
	})
	if err := c.Delete(t.Context(), blocker, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	poll(t, 2*time.Minute, "the gang bound and done", func(ctx context.Context) (bool, string) {
		j := &batchv1.Job{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(job), j); err != nil {
			return false, err.Error()
		}
		return j.Status.Succeeded == 8, fmt.Sprintf("succeeded %d, active %d", j.Status.Succeeded, j.Status.Active)
	})
	for _, p := range jobPods(t, c, job.Name) {
		if p.Spec.NodeName != node {
			t.Errorf("pod %s of the gang ran on %q, want %s", p.Name, p.Spec.NodeName, node)
		}
	}
}

// plainJob is a Job of n pods (completions n, all at once), no retry, with
// the pod template's annotations.
func plainJob(name string, n int32, annotations map[string]string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: jobsNamespace},
		Spec: batchv1.JobSpec{
			Parallelism: ptr.To(n), Completions: ptr.To(n), BackoffLimit: ptr.To[int32](0),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: annotations},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "work", Image: "registry.example/batch:1"}},
				},
			},
		},
	}
}

func cpuRequest(milli int64) corev1.ResourceRequirements {
	return corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: *resource.NewMilliQuantity(milli, resource.DecimalSI)}}
}

func ensureJobsNamespace(t *testing.T, c client.Client) {
	t.Helper()
	err := c.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: jobsNamespace}})
	if client.IgnoreAlreadyExists(err) != nil {
		t.Fatal(err)
	}
}

func jobPods(t *testing.T, c client.Client, job string) []corev1.Pod {
	t.Helper()
	pods := &corev1.PodList{}
	if err := c.List(t.Context(), pods, client.InNamespace(jobsNamespace), client.MatchingLabels{batchv1.JobNameLabel: job}); err != nil {
		t.Fatal(err)
	}
	return pods.Items
}

func waitJobCondition(t *testing.T, c client.Client, name string, want batchv1.JobConditionType) {
	t.Helper()
	poll(t, 2*time.Minute, "Job "+name+" "+string(want), func(ctx context.Context) (bool, string) {
		j := &batchv1.Job{}
		if err := c.Get(ctx, client.ObjectKey{Namespace: jobsNamespace, Name: name}, j); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, cond := range j.Status.Conditions {
			if cond.Type == want && cond.Status == corev1.ConditionTrue {
				return true, ""
			}
			seen = append(seen, string(cond.Type)+"="+string(cond.Status))
		}
		return false, fmt.Sprintf("conditions %v, active %d", seen, j.Status.Active)
	})
}

func podScheduled(p corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled {
			return string(c.Status) + "/" + c.Reason + " " + c.Message
		}
	}
	return "not looked at yet"
}

// emptiestNode is the Ready, schedulable Node with the most free cpu, and
// that free cpu in millicores (allocatable less the requests of its pods).
func emptiestNode(t *testing.T, c client.Client) (string, int64) {
	t.Helper()
	nodes := &corev1.NodeList{}
	if err := c.List(t.Context(), nodes); err != nil {
		t.Fatal(err)
	}
	pods := &corev1.PodList{}
	if err := c.List(t.Context(), pods); err != nil {
		t.Fatal(err)
	}
	used := map[string]int64{}
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, ctr := range p.Spec.Containers {
			used[p.Spec.NodeName] += ctr.Resources.Requests.Cpu().MilliValue()
		}
	}
	best, free := "", int64(0)
	for _, n := range nodes.Items {
		ready := slices.ContainsFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool {
			return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
		})
		if !ready || n.Spec.Unschedulable || len(n.Spec.Taints) > 0 {
			continue
		}
		if f := n.Status.Allocatable.Cpu().MilliValue() - used[n.Name]; f > free {
			best, free = n.Name, f
		}
	}
	if free < 10000 {
		t.Fatalf("no Node has 10 cpus free (best %q with %dm)", best, free)
	}
	return best, free
}

// testGangShrinks: a queued gang Job (in the worker's LocalQueue e2e of
// testKueue, made a gang by strata-job-gang) loses a pod to an eviction
// while its replacement has nowhere to go (its Node cordoned), and its other
// pods finish. The scheduler counts no pod that ended, so it would wait for
// ever for the gang's other 3; Strata's gang controller lowers the gang's
// minCount to the one pod left, and the replacement binds once the Node
// takes pods again.
func testGangShrinks(t *testing.T, bin, wl string) {
	c := appsClient(t, wl)
	ensureJobsNamespace(t, c)
	runKubectlApply(t, bin, wl, `
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: e2e, namespace: `+jobsNamespace+`}
spec: {clusterQueue: e2e}
`)
	node, _ := emptiestNode(t, c)
	job := plainJob("shrinks", 4, map[string]string{runTimeAnnotation: "8s"})
	job.Labels = map[string]string{kueue.QueueNameLabel: "e2e"}
	job.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
		Action:          batchv1.PodFailurePolicyActionIgnore,
		OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}},
	}}}
	job.Spec.Template.Spec.Containers[0].Resources = cpuRequest(1000)
	job.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
			MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{node}}},
		}}},
	}}
	if err := c.Create(t.Context(), job); err != nil {
		t.Fatal(err)
	}
	if s := job.Spec.Scheduling; s == nil || s.SchedulingPolicy == nil || s.SchedulingPolicy.Gang == nil {
		t.Fatalf("the queued Job of 4 pods is not a gang: spec.scheduling %+v", s)
	}
	var evicted corev1.Pod
	poll(t, 2*time.Minute, "the gang's 4 pods Running", func(context.Context) (bool, string) {
		pods := jobPods(t, c, job.Name)
		running := 0
		for _, p := range pods {
			if p.Status.Phase == corev1.PodRunning {
				running++
				evicted = p
			}
		}
		return running == 4, fmt.Sprintf("%d pods, %d running", len(pods), running)
	})
	cordon := func(unschedulable bool) {
		t.Helper()
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}
		patch := fmt.Sprintf(`{"spec":{"unschedulable":%t}}`, unschedulable)
		// Also from t.Cleanup, when t.Context() is done.
		if err := c.Patch(context.WithoutCancel(t.Context()), n, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
			t.Fatal(err)
		}
	}
	cordon(true)
	t.Cleanup(func() { cordon(false) })
	if err := c.SubResource("eviction").Create(t.Context(), &evicted, &policyv1.Eviction{}); err != nil {
		t.Fatalf("evicting %s: %v", evicted.Name, err)
	}
	poll(t, time.Minute, "3 pods succeeded, the replacement pending, the gang lowered to 1", func(ctx context.Context) (bool, string) {
		j := &batchv1.Job{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(job), j); err != nil {
			return false, err.Error()
		}
		minCount := ptr.Deref(j.Spec.Scheduling.SchedulingPolicy.Gang.MinCount, -1)
		var pending []string
		for _, p := range jobPods(t, c, job.Name) {
			if p.Spec.NodeName == "" {
				pending = append(pending, p.Name+": "+podScheduled(p))
			}
		}
		return j.Status.Succeeded == 3 && minCount == 1 && len(pending) == 1,
			fmt.Sprintf("succeeded %d, minCount %d, pending %v", j.Status.Succeeded, minCount, pending)
	})
	cordon(false)
	waitJobCondition(t, c, job.Name, batchv1.JobComplete)
	events := &eventsv1.EventList{}
	if err := c.List(t.Context(), events, client.InNamespace(jobsNamespace)); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(events.Items, func(e eventsv1.Event) bool {
		return e.Regarding.Name == job.Name && e.Reason == jobgang.ShrunkReason
	}) {
		t.Errorf("no %s event on Job %s", jobgang.ShrunkReason, job.Name)
	}
}
