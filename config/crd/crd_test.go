package crd

import (
	"io/fs"
	"slices"
	"testing"
)

// bothHomes are the CRDs the hub and the workload clusters both serve:
// StatelessApps are declared on the hub and written into the clusters.
var bothHomes = []string{"apps.strata.dev_statelessapps.yaml"}

// Every generated CRD is installed somewhere, and in one place only, but
// those of bothHomes, in both.
func TestEveryCRDHasOneHome(t *testing.T) {
	files, err := fs.Glob(FS, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		hub, workload := slices.Contains(Hub, f), slices.Contains(Workload, f)
		switch {
		case slices.Contains(bothHomes, f) && (!hub || !workload):
			t.Errorf("%s: in the hub list %v, in the workload list %v; it must be in both", f, hub, workload)
		case !slices.Contains(bothHomes, f) && hub == workload:
			t.Errorf("%s: in the hub list %v, in the workload list %v; it must be in exactly one", f, hub, workload)
		}
	}
	for _, f := range slices.Concat(Hub, Workload) {
		if !slices.Contains(files, f) {
			t.Errorf("%s is listed but not generated", f)
		}
	}
}
