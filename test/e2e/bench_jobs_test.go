package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/strata-dev/strata/internal/localdc"
)

// BenchmarkJobs is the jobs platform's acceptance run and its figures: two
// workload clusters, two organisations of two teams, STRATA_BENCH_JOBS
// jobs (500 by default) of 8 pods with simulated run times submitted at
// once, with quotas larger than the clusters, a MaintenanceRollout beside
// them; first through Strata's
// dispatcher, then, in the same datacenter, through Kueue's own
// MultiKueue dispatcher (all at once). Each run fails the benchmark if a
// quota was exceeded, a gang placed in part, or a pod placed in a zone
// under maintenance, and Strata's if a job did not finish in 30 minutes;
// it reports admitted workloads per second, queue-to-running p50 and p99,
// and the jobs left unfinished.
//
//	STRATA_BIN_DIR=$PWD/bin go test ./test/e2e -run '^$' -bench BenchmarkJobs -benchtime 1x -timeout 90m -v
func BenchmarkJobs(b *testing.B) {
	bin := binDir(b)
	jobs := 500
	if s := os.Getenv("STRATA_BENCH_JOBS"); s != "" {
		var err error
		if jobs, err = strconv.Atoi(s); err != nil || jobs < 1 {
			b.Fatalf("STRATA_BENCH_JOBS=%q: want a positive number of jobs", s)
		}
	}
	for b.Loop() {
		home := filepath.Join(b.TempDir(), "home")
		upArgs := []string{"--jobs", "--pool-capacity", "0", "--maintenance-duration", "1s"}
		tr := &jobsTrial{
			bin: bin, home: home, hub: localdc.KubeconfigPath(home, localdc.HubName),
			clusters: []string{localdc.WorkloadClusterName(1), localdc.WorkloadClusterName(2)},
			// Quotas above what the Pools hold (2 x 10 highmem Nodes, about
			// 1,260 cores; an organisation may use 1,024): the clusters'
			// room, not the quota, is what dispatch has to get right.
			poolCapacity: 10, teamCPU: 256, orgCPU: 512,
			jobs: jobs, pods: 8, podCPU: 2, runTime: 10 * time.Second,
		}
		for _, d := range []struct{ name, flag string }{{"strata", "Strata"}, {"kueue", "KueueAllAtOnce"}} {
			up := startUp(b, bin, home, append(upArgs, "--jobs-dispatcher", d.flag)...)
			if d.name == "strata" {
				tr.setUp(b)
			}
			tr.prefix, tr.rollout = d.name, "batch-"+d.name
			res := tr.run(b, 30*time.Minute)
			b.ReportMetric(float64(len(res.unfinished)), d.name+"-unfinished-jobs")
			if d.name != "strata" {
				// The peer is measured, not judged, on what it finishes in
				// the time; the rest (quota, gangs, maintenance) still holds.
				b.Logf("%s dispatcher: %d of %d jobs unfinished after %s", d.name, len(res.unfinished), tr.jobs, 30*time.Minute)
				res.unfinished = nil
			}
			res.check(b)
			b.ReportMetric(res.admittedPerSecond, d.name+"-admitted/s")
			b.ReportMetric(res.p50.Seconds(), d.name+"-queue-to-running-p50-s")
			b.ReportMetric(res.p99.Seconds(), d.name+"-queue-to-running-p99-s")
			b.Logf("%s dispatcher: %s", d.name, fmt.Sprint(res.perCluster))
			waitRolloutComplete(b, tr)
			up.interrupt(b)
		}
		run(b, bin, "strata", "down", "--home", home)
	}
}
