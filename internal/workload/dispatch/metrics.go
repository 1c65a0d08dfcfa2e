package dispatch

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	// decisions counts the dispatcher's decisions by their event's reason.
	decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_dispatch_decisions_total",
		Help: "Decisions of the job dispatcher, by reason: Dispatched, NoClusterFits (tried again later), NeverFits (deactivated).",
	}, []string{"reason"})
	// latency is from the hub's Kueue reserving quota to the nomination.
	latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "strata_dispatch_latency_seconds",
		Help:    "Time from the hub's Kueue reserving a workload's quota to the dispatcher nominating its cluster.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 16),
	})
	// decisionSeconds is the time to compute one decision.
	decisionSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "strata_dispatch_decision_seconds",
		Help:    "Time the job dispatcher takes to read the fleet and choose a cluster for one workload.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
)

func init() {
	metrics.Registry.MustRegister(decisions, latency, decisionSeconds)
}
