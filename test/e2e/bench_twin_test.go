package e2e

import (
	"strconv"
	"testing"
	"time"
)

// twinProfile are strata up's flags of the twin (docs/local-datacenter.md,
// "Sizing: the twin"): one workload cluster, machines enough for a Pool of
// 5,000 general Nodes, no default Pool, machines that join at once, no
// Kueue, and time for the clusters to come up on a busy machine.
func twinProfile(nodes int) []string {
	return []string{
		"--workload-clusters", "1", "--machines", strconv.Itoa(max(2000, 2*nodes)), "--pool-capacity", "0",
		"--join-duration", "1ms", "--jobs=false", "--timeout", "10m",
	}
}

// BenchmarkTwin loads one workload cluster as the thresholds Kubernetes
// publishes for one cluster: a Pool of 5,000 kwok Nodes
// (STRATA_BENCH_TWIN_NODES) running 150,000 pods of StatelessApps
// (STRATA_BENCH_TWIN_PODS, 30 apps of 5,000), with strata up's twin
// profile. It reports the time to each step, and each component's memory at
// rest, with the Nodes and with the pods (per Node and per pod, as
// BenchmarkCacheMemory), and the control plane's. The Nodes get
// STRATA_BENCH_TWIN_NODE_MINUTES (30) and the pods
// STRATA_BENCH_TWIN_MINUTES (90) to be Ready; the figures are taken where
// they got. Not part of make test: it needs the machine to itself.
//
//	STRATA_BIN_DIR=$PWD/bin go test ./test/e2e -run '^$' -bench BenchmarkTwin -benchtime 1x -timeout 3h -v
func BenchmarkTwin(b *testing.B) {
	l := fleetLoad{
		nodes:        benchEnvInt(b, "STRATA_BENCH_TWIN_NODES", 5000),
		pods:         benchEnvInt(b, "STRATA_BENCH_TWIN_PODS", 150000),
		nodesTimeout: time.Duration(benchEnvInt(b, "STRATA_BENCH_TWIN_NODE_MINUTES", 30)) * time.Minute,
		appsTimeout:  time.Duration(benchEnvInt(b, "STRATA_BENCH_TWIN_MINUTES", 90)) * time.Minute,
	}
	l.upArgs = twinProfile(l.nodes)
	bin := binDir(b)
	for b.Loop() {
		l.run(b, bin).report(b, l)
	}
}
