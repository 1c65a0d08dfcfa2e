package aggregator

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// The aggregator's metrics, on controller-runtime's registry (served by the
// manager's metrics endpoint).
var (
	eventsReceived = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strata_aggregator_events_received_total",
		Help: "Objects received per source: listed, watch events (ADDED, MODIFIED, DELETED) and bookmarks.",
	}, []string{"cluster", "kind", "type"})
	flushDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "strata_aggregator_flush_duration_seconds",
		Help:    "How long writing one batch to the fleet store took.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	})
	rowsWritten = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "strata_aggregator_rows_written_total",
		Help: "Rows written or deleted in the fleet store.",
	})
	flushErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "strata_aggregator_flush_errors_total",
		Help: "Batches that failed to be written (kept and written again).",
	})
	sinceSeen = prometheus.NewDesc("strata_aggregator_source_seconds_since_last_seen",
		"Seconds since the source's last list page, event or bookmark: how stale its copy is.",
		[]string{"cluster", "kind"}, nil)
)

var (
	registerOnce sync.Once
	// writers are the running aggregators' writers, whose sources' freshness
	// is collected on scrape (one in a process, more in tests).
	writersMu sync.Mutex
	writers   = map[*writer]bool{}
)

// freshness collects seconds since last seen of every source on scrape.
type freshness struct{}

func (freshness) Describe(ch chan<- *prometheus.Desc) { ch <- sinceSeen }

func (freshness) Collect(ch chan<- prometheus.Metric) {
	writersMu.Lock()
	defer writersMu.Unlock()
	for w := range writers {
		now := w.clock.Now()
		for _, src := range w.snapshot() {
			if src.LastSeen.IsZero() {
				continue
			}
			ch <- prometheus.MustNewConstMetric(sinceSeen, prometheus.GaugeValue, now.Sub(src.LastSeen).Seconds(), src.Cluster, src.Kind)
		}
	}
}

func registerMetrics() {
	registerOnce.Do(func() {
		metrics.Registry.MustRegister(eventsReceived, flushDuration, rowsWritten, flushErrors, freshness{})
	})
}
