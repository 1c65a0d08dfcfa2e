package batchqueue

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	appsv1alpha1 "github.com/strata-dev/strata/api/apps/v1alpha1"
)

// queueWrapper builds a BatchQueue.
type queueWrapper struct{ appsv1alpha1.BatchQueue }

// makeQueue starts a BatchQueue of the organisation, of no region and
// without quotas.
func makeQueue(name, org string) *queueWrapper {
	return &queueWrapper{appsv1alpha1.BatchQueue{
		ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1},
		Spec:       appsv1alpha1.BatchQueueSpec{Organization: org},
	}}
}

func (w *queueWrapper) Parent(p string) *queueWrapper {
	w.Spec.Parent = p
	return w
}

func (w *queueWrapper) Region(r string) *queueWrapper {
	w.Spec.Region = r
	return w
}

// Quota adds a quota on a profile; "" leaves an amount out.
func (w *queueWrapper) Quota(profile, cpu, memory, gpus string) *queueWrapper {
	w.Spec.Quotas = append(w.Spec.Quotas, appsv1alpha1.ProfileQuota{NodeProfile: profile, BatchResources: amountsOf(cpu, memory, gpus)})
	return w
}

// BorrowingLimit limits the borrowing of the last quota added.
func (w *queueWrapper) BorrowingLimit(cpu, memory, gpus string) *queueWrapper {
	limit := amountsOf(cpu, memory, gpus)
	w.Spec.Quotas[len(w.Spec.Quotas)-1].BorrowingLimit = &limit
	return w
}

func (w *queueWrapper) Obj() *appsv1alpha1.BatchQueue { return &w.BatchQueue }

func amountsOf(cpu, memory, gpus string) appsv1alpha1.BatchResources {
	q := func(s string) *resource.Quantity {
		if s == "" {
			return nil
		}
		v := resource.MustParse(s)
		return &v
	}
	return appsv1alpha1.BatchResources{CPU: q(cpu), Memory: q(memory), GPUs: q(gpus)}
}

func queues(ws ...*queueWrapper) []appsv1alpha1.BatchQueue {
	out := make([]appsv1alpha1.BatchQueue, 0, len(ws))
	for _, w := range ws {
		out = append(out, *w.Obj())
	}
	return out
}
