package aggregator

import (
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// EventsReceived is the count of a source's events of a type, for the
// tests to tell a resumed watch from a relist.
func EventsReceived(t *testing.T, cluster, kind, typ string) float64 {
	t.Helper()
	var m dto.Metric
	if err := eventsReceived.WithLabelValues(cluster, kind, typ).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
