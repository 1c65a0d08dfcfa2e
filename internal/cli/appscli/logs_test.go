package appscli

import (
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSortPods(t *testing.T) {
	pod := func(name string, ready bool, restarts int32) podRef {
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		return podRef{pod: corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Status: corev1.PodStatus{
				Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: status}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "app", RestartCount: restarts}},
			},
		}}
	}
	pods := []podRef{pod("a", true, 0), pod("b", false, 0), pod("c", true, 9), pod("d", false, 5), pod("e", false, 5)}
	sortPods(pods)
	var got []string
	for _, p := range pods {
		got = append(got, p.pod.Name)
	}
	if diff := cmp.Diff([]string{"d", "e", "b", "c", "a"}, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestLineWriter(t *testing.T) {
	var out strings.Builder
	l := &lineWriter{out: &out}
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for i, prefix := range []string{"[a/app] ", "[b/app] "} {
		wg.Go(func() {
			n, err := l.copy(strings.NewReader(strings.Repeat("a line of the log\n", 500)+"no newline at the end"), prefix)
			if err != nil {
				t.Error(err)
			}
			counts[i] = n
		})
	}
	wg.Wait()
	if counts[0] != 501 || counts[1] != 501 {
		t.Errorf("lines copied = %v, want 501 each", counts)
	}
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if line != "[a/app] a line of the log" && line != "[b/app] a line of the log" &&
			line != "[a/app] no newline at the end" && line != "[b/app] no newline at the end" {
			t.Fatalf("mixed or unprefixed line %q", line)
		}
	}
}
