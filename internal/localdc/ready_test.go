package localdc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var saNotFound = apierrors.NewNotFound(schema.GroupResource{Resource: "serviceaccounts"}, "default")

// fakeProbes answers for each cluster from a list of answers, the last one
// repeated; a cluster without answers is ready.
type fakeProbes struct {
	mu      sync.Mutex
	answers map[string][]string
}

func (f *fakeProbes) probe(_ context.Context, cluster string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	answers := f.answers[cluster]
	if len(answers) == 0 {
		return "", nil
	}
	what := answers[0]
	if len(answers) > 1 {
		f.answers[cluster] = answers[1:]
	}
	switch what {
	case waitServiceAccount:
		return what, saNotFound
	case waitAPIServer:
		return what, errors.New("connect: connection refused")
	}
	return what, nil
}

func TestReadyWait(t *testing.T) {
	cases := map[string]struct {
		answers map[string][]string
		wantErr string
	}{
		"every cluster ready at once": {},
		"ready after its API server and ServiceAccount": {
			answers: map[string][]string{"workload-1": {waitAPIServer, waitServiceAccount, waitServiceAccount, ""}},
		},
		// Each answer is given at the first probe, which a wait always makes.
		"the timeout names each cluster not ready, what it waits for and why": {
			answers: map[string][]string{
				"workload-1": {waitServiceAccount},
				"workload-2": {waitAPIServer},
			},
			wantErr: `the clusters are not ready after 50ms: ` +
				`cluster workload-1 waits for the "default" ServiceAccount, which its kube-controller-manager creates ` +
				`(last error: serviceaccounts "default" not found; its logs are in /home/workload-1/logs); ` +
				`cluster workload-2 waits for its API server to be ready (/readyz) ` +
				`(last error: connect: connection refused; its logs are in /home/workload-2/logs). ` +
				"A busy machine may need longer: `strata up --timeout 100ms`",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var lines []string
			w := readyWait{
				timeout: 50 * time.Millisecond, poll: time.Millisecond,
				progress: func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) },
				logsOf:   func(c string) string { return "/home/" + c + "/logs" },
			}
			if tc.wantErr == "" {
				w.timeout = time.Minute // a guard: these clusters become ready
			}
			probes := &fakeProbes{answers: tc.answers}
			err := w.run(t.Context(), []string{"hub", "workload-1", "workload-2"}, probes.probe)
			if diff := cmp.Diff(tc.wantErr, errString(err)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if len(lines) > 0 {
				t.Errorf("progress without a reminder: %q", lines)
			}
		})
	}
}

// At each reminder a line says what the clusters that are not ready wait for.
func TestReadyWaitReminds(t *testing.T) {
	var calls atomic.Int32
	secondCall := make(chan struct{})
	probe := func(_ context.Context, cluster string) (string, error) {
		if cluster == "hub" {
			return "", nil
		}
		// The answer of the first call is recorded before the second.
		if calls.Add(1) == 2 {
			close(secondCall)
		}
		return waitServiceAccount, saNotFound
	}
	reminders := make(chan time.Time)
	lines := make(chan string, 1)
	w := readyWait{
		timeout: time.Minute, poll: time.Millisecond, reminders: reminders,
		progress: func(format string, args ...any) { lines <- fmt.Sprintf(format, args...) },
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.run(ctx, []string{"hub", "workload-1"}, probe) }()
	<-secondCall
	reminders <- time.Now()
	line := <-lines
	_, got, _ := strings.Cut(line, "--timeout raises it): ")
	want := `cluster workload-1 waits for the "default" ServiceAccount, which its kube-controller-manager creates (last error: serviceaccounts "default" not found)`
	if !strings.HasPrefix(line, "Still waiting after ") || got != want {
		t.Errorf("reminder = %q, want one that ends %q", line, want)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("run after the cancellation = %v, want context.Canceled", err)
	}
}

func TestFailedChecks(t *testing.T) {
	cases := map[string]struct {
		body string
		want []string
	}{
		"ready":   {body: "ok"},
		"no body": {},
		"one failing": {
			body: "[+]ping ok\n[+]etcd ok\n[-]poststarthook/rbac/bootstrap-roles failed: reason withheld\n[+]shutdown ok\nreadyz check failed",
			want: []string{"poststarthook/rbac/bootstrap-roles"},
		},
		"two failing, one with its reason": {
			body: "[-]etcd failed: etcd client connection not yet established\n[-]informer-sync failed: reason withheld\n",
			want: []string{"etcd failed: etcd client connection not yet established", "informer-sync"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, failedChecks([]byte(tc.body))); diff != "" {
				t.Errorf("failedChecks (-want +got):\n%s", diff)
			}
		})
	}
}
