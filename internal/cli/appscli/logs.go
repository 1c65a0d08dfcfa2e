package appscli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

type logsOptions struct {
	hub       hub
	workload  string
	container string
	follow    bool
	previous  bool
	tail      int64
	since     time.Duration
	maxPods   int
}

func newLogs(h hub) *cobra.Command {
	o := &logsOptions{hub: h}
	cmd := &cobra.Command{
		Use:   "logs APP[/STATELESSAPP]",
		Short: "Print the logs of the app's pods, each line prefixed with [pod/container]",
		Long: `Finds the app's namespaces through the hub and prints the logs of the pods of
its StatelessApps (through the pods/log API of their cluster), the failing
pods first. Each line is prefixed with [pod/container]. A pod whose log
cannot be read (not started yet, or a pod of the local datacenter, whose
kwok Nodes run no containers) is reported on stderr and skipped.`,
		Example: `  kubectl strata logs checkout
  kubectl strata logs checkout/api --tail 100 -f
  kubectl strata logs checkout --previous      # the last crash of crash-looping pods`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args[0])
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.workload, "workload", "", "only the pods of this StatelessApp (also APP/STATELESSAPP)")
	fs.StringVarP(&o.container, "container", "c", "app", "container whose log to print")
	fs.BoolVarP(&o.follow, "follow", "f", false, "keep streaming the logs")
	fs.BoolVarP(&o.previous, "previous", "p", false, "the log of the container's previous run (after a crash)")
	fs.Int64Var(&o.tail, "tail", 10, "lines from the end of each pod's log; -1 for all")
	fs.DurationVar(&o.since, "since", 0, "only lines newer than this (e.g. 5m)")
	fs.IntVar(&o.maxPods, "max-pods", 10, "read at most this many pods")
	return cmd
}

func (o *logsOptions) validate() error {
	switch {
	case o.maxPods < 1:
		return fmt.Errorf("--max-pods %d: it must be at least 1", o.maxPods)
	case o.tail < -1:
		return fmt.Errorf("--tail %d: give a number of lines, or -1 for all", o.tail)
	case o.since < 0:
		return fmt.Errorf("--since %s: it must be positive", o.since)
	case o.container == "":
		return errors.New("--container is empty: name a container (app is the app's own)")
	}
	return nil
}

// podRef is a pod to read the log of, in its cluster.
type podRef struct {
	w   *workload
	pod corev1.Pod
}

func (o *logsOptions) run(ctx context.Context, out, errOut io.Writer, arg string) error {
	if err := o.validate(); err != nil {
		return err
	}
	app, workload, err := splitApp(arg, o.workload)
	if err != nil {
		return err
	}
	all, err := appNamespaces(ctx, o.hub)
	if err != nil {
		return err
	}
	found, err := findApp(all, app)
	if err != nil {
		return err
	}
	pods, err := o.pods(ctx, found, workload, errOut)
	if err != nil {
		return err
	}
	if len(pods) == 0 {
		what := "its StatelessApps"
		if workload != "" {
			what = "StatelessApp " + workload
		}
		return fmt.Errorf("app %s has no pods of %s (`kubectl strata status %s` shows why)", found[0].Spec.App, what, found[0].Spec.App)
	}
	sortPods(pods)
	if len(pods) > o.maxPods {
		fmt.Fprintf(errOut, "Reading %d of %d pods, failing ones first (--max-pods to read more).\n", o.maxPods, len(pods))
		pods = pods[:o.maxPods]
	}
	lines := &lineWriter{out: out}
	failed := make([]bool, len(pods))
	read := func(i int) { failed[i] = !o.stream(ctx, pods[i], lines, errOut) }
	if o.follow {
		var wg sync.WaitGroup
		for i := range pods {
			wg.Go(func() { read(i) })
		}
		wg.Wait()
	} else {
		for i := range pods {
			read(i)
		}
	}
	if n := countTrue(failed); n == len(pods) {
		return fmt.Errorf("no log could be read from any of the %d pods (see above)", n)
	}
	return nil
}

// pods lists the pods of the app's StatelessApps (of one when workload is
// set) in each routed AppNamespace, in each of its clusters. Unrouted or unreadable namespaces are
// reported on errOut; when none can be read, that is the error.
func (o *logsOptions) pods(ctx context.Context, ans []appsv1alpha1.AppNamespace, only string, errOut io.Writer) ([]podRef, error) {
	selector := labels.NewSelector()
	req, err := labels.NewRequirement(appsv1alpha1.StatelessAppLabel, selection.Exists, nil)
	if only != "" {
		req, err = labels.NewRequirement(appsv1alpha1.StatelessAppLabel, selection.Equals, []string{only})
	}
	if err != nil {
		return nil, fmt.Errorf("--workload %q: %w", only, err)
	}
	selector = selector.Add(*req)
	conns := map[string]*workload{}
	var pods []podRef
	var problems, unrouted []string // unrouted namespaces have no pods: said only when no namespace is
	listed := 0
	for _, p := range placements(ans) {
		an := p.an
		if p.cluster == "" {
			unrouted = append(unrouted, fmt.Sprintf("AppNamespace %s is not routed: %s", an.Name, conditionText(readyCondition(an))))
			continue
		}
		w := conns[p.cluster]
		if w == nil {
			if w, err = connect(o.hub, p.cluster); err != nil {
				problems = append(problems, err.Error())
				continue
			}
			conns[p.cluster] = w
		}
		list := &corev1.PodList{}
		listCtx, cancel := context.WithTimeout(ctx, clusterTimeout)
		err := w.client.List(listCtx, list, client.InNamespace(namespaceOf(an)), client.MatchingLabelsSelector{Selector: selector})
		cancel()
		if err != nil {
			problems = append(problems, w.readError(ctx, err, "list", "pods", namespaceOf(an)).Error())
			continue
		}
		listed++
		for _, p := range list.Items {
			pods = append(pods, podRef{w: w, pod: p})
		}
	}
	if listed == 0 {
		return nil, errors.New(strings.Join(slices.Concat(problems, unrouted), "; "))
	}
	for _, p := range problems {
		fmt.Fprintln(errOut, "Skipped:", p)
	}
	return pods, nil
}

// stream copies a pod's log to lines, prefixed; false when none could be read.
func (o *logsOptions) stream(ctx context.Context, p podRef, lines *lineWriter, errOut io.Writer) bool {
	prefix := fmt.Sprintf("[%s/%s] ", p.pod.Name, o.container)
	if !hasContainer(&p.pod, o.container) {
		fmt.Fprintf(errOut, "%sno such container; the pod has %s (--container to pick one)\n", prefix, strings.Join(containerNames(&p.pod), ", "))
		return false
	}
	opts := &corev1.PodLogOptions{Container: o.container, Follow: o.follow, Previous: o.previous}
	if o.tail >= 0 {
		opts.TailLines = &o.tail
	}
	if o.since > 0 {
		secs := int64(o.since.Seconds())
		opts.SinceSeconds = &secs
	}
	rc, err := p.w.kube.CoreV1().Pods(p.pod.Namespace).GetLogs(p.pod.Name, opts).Stream(ctx)
	if err != nil {
		fmt.Fprintf(errOut, "%sno log: %s%s\n", prefix, err.Error(), noLogHint(&p.pod, o.container))
		return false
	}
	defer func() { _ = rc.Close() }()
	n, err := lines.copy(rc, prefix)
	switch {
	case err != nil && ctx.Err() == nil:
		fmt.Fprintf(errOut, "%slog interrupted after %d lines: %v\n", prefix, n, err)
	case n == 0 && !o.follow:
		fmt.Fprintf(errOut, "%sthe log is empty%s\n", prefix, noLogHint(&p.pod, o.container))
	}
	return true
}

// noLogHint explains a missing log where the pod says why: not scheduled
// yet, the container not started, or a container that ran and yet has no
// log, as on the local datacenter's simulated Nodes.
func noLogHint(pod *corev1.Pod, container string) string {
	if pod.Spec.NodeName == "" {
		return " (the pod is not scheduled to a Node yet)"
	}
	for _, cs := range slices.Concat(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses) {
		if cs.Name != container {
			continue
		}
		if w := cs.State.Waiting; w != nil && cs.LastTerminationState.Terminated == nil {
			return fmt.Sprintf(" (container %s has not started: %s)", container, w.Reason)
		}
		if cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil {
			return fmt.Sprintf(" (container %s has run on Node %s; in the local datacenter Nodes are simulated by kwok, run no containers and keep no logs)",
				container, pod.Spec.NodeName)
		}
	}
	return ""
}

// sortPods puts failing pods first (not Ready, then most restarts), then
// by name.
func sortPods(pods []podRef) {
	slices.SortStableFunc(pods, func(a, b podRef) int {
		if ra, rb := podReady(&a.pod), podReady(&b.pod); ra != rb {
			if rb {
				return -1
			}
			return 1
		}
		if ra, rb := restarts(&a.pod), restarts(&b.pod); ra != rb {
			return int(rb - ra)
		}
		return strings.Compare(a.pod.Name, b.pod.Name)
	})
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func restarts(pod *corev1.Pod) int32 {
	var n int32
	for _, cs := range pod.Status.ContainerStatuses {
		n += cs.RestartCount
	}
	return n
}

func hasContainer(pod *corev1.Pod, name string) bool {
	return slices.Contains(containerNames(pod), name)
}

func containerNames(pod *corev1.Pod) []string {
	var names []string
	for _, c := range slices.Concat(pod.Spec.InitContainers, pod.Spec.Containers) {
		names = append(names, c.Name)
	}
	return names
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// lineWriter writes whole lines from several streams without mixing them.
type lineWriter struct {
	mu  sync.Mutex
	out io.Writer
}

// copy writes each line of r to the output, prefixed; it returns the number
// of lines.
func (l *lineWriter) copy(r io.Reader, prefix string) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		l.mu.Lock()
		_, err := fmt.Fprintf(l.out, "%s%s\n", prefix, sc.Bytes())
		l.mu.Unlock()
		if err != nil {
			return n, err
		}
		n++
	}
	return n, sc.Err()
}
