package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// podPhases watches the pods of a namespace and records when the n-th pod
// was created, scheduled (bound to a Node), Running and Ready: where a
// workload's time to Ready goes, phase by phase.
type podPhases struct {
	n     int
	began time.Time
	stop  chan struct{}

	mu                                     sync.Mutex
	created, scheduled, running, ready     map[string]bool
	tCreated, tScheduled, tRunning, tReady time.Duration
}

func watchPodPhases(b testing.TB, cs kubernetes.Interface, namespace string, n int) *podPhases {
	b.Helper()
	p := &podPhases{n: n, began: time.Now(), stop: make(chan struct{}),
		created: map[string]bool{}, scheduled: map[string]bool{}, running: map[string]bool{}, ready: map[string]bool{}}
	lw := cache.NewListWatchFromClient(cs.CoreV1().RESTClient(), "pods", namespace, fields.Everything())
	_, ctrl := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw, ObjectType: &corev1.Pod{},
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { p.see(o.(*corev1.Pod)) },
			UpdateFunc: func(_, o any) { p.see(o.(*corev1.Pod)) },
		},
	})
	go ctrl.Run(p.stop)
	b.Cleanup(p.close)
	return p
}

func (p *podPhases) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
}

func (p *podPhases) see(pod *corev1.Pod) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at := time.Since(p.began)
	mark := func(set map[string]bool, t *time.Duration, ok bool) {
		if ok && !set[pod.Name] {
			set[pod.Name] = true
			if len(set) == p.n {
				*t = at
			}
		}
	}
	mark(p.created, &p.tCreated, true)
	mark(p.scheduled, &p.tScheduled, pod.Spec.NodeName != "")
	mark(p.running, &p.tRunning, pod.Status.Phase == corev1.PodRunning)
	ready := false
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	mark(p.ready, &p.tReady, ready)
}

// report adds the phases as metrics named prefix-created-s and so on.
func (p *podPhases) report(b *testing.B, prefix string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b.ReportMetric(p.tCreated.Seconds(), prefix+"-created-s")
	b.ReportMetric(p.tScheduled.Seconds(), prefix+"-scheduled-s")
	b.ReportMetric(p.tRunning.Seconds(), prefix+"-running-s")
	b.ReportMetric(p.tReady.Seconds(), prefix+"-ready-s")
}

// cpuByComponent is the CPU time (user+system) each process of the local
// datacenter under home has used so far, summed by its executable's name
// (strata, kube-apiserver, etcd, kube-scheduler, kwok, ...) and, for the
// components of a kwok cluster, its name (kube-apiserver@workload-1).
func cpuByComponent(home string) map[string]time.Duration {
	out := map[string]time.Duration{}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmdline), home) {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		name := filepath.Base(args[0])
		if _, rest, ok := strings.Cut(string(cmdline), "/clusters/"); ok { // a component of a kwok cluster
			name += "@" + strings.SplitN(rest, "/", 2)[0]
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(stat)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		out[name] += time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
	}
	return out
}

// reportCPU adds the CPU seconds each component used between two readings.
func reportCPU(b *testing.B, prefix string, before, after map[string]time.Duration) {
	for name, t := range after {
		if d := t - before[name]; d > 0 {
			b.ReportMetric(d.Seconds(), prefix+"-cpu-"+name+"-s")
		}
	}
}
