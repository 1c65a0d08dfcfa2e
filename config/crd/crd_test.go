package crd

import (
	"io/fs"
	"slices"
	"testing"
)

// Every generated CRD is installed somewhere, and in one place only.
func TestEveryCRDHasOneHome(t *testing.T) {
	files, err := fs.Glob(FS, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		hub, workload := slices.Contains(Hub, f), slices.Contains(Workload, f)
		if hub == workload {
			t.Errorf("%s: in the hub list %v, in the workload list %v; it must be in exactly one", f, hub, workload)
		}
	}
	for _, f := range slices.Concat(Hub, Workload) {
		if !slices.Contains(files, f) {
			t.Errorf("%s is listed but not generated", f)
		}
	}
}
