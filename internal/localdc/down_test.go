package localdc

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
)

// Down looks at the home before it needs any binary: only clusters to
// delete need kwokctl (`make tools`).
func TestDownChecksTheHomeFirst(t *testing.T) {
	cases := map[string]struct {
		setup       func(t *testing.T, home string)
		wantRemoved bool
		wantErr     func(home, bin string) string
	}{
		"no home: nothing to remove": {},
		"a directory that is no datacenter": {
			setup: func(t *testing.T, home string) { mkdir(t, home) },
			wantErr: func(home, _ string) string {
				return home + " holds no strata datacenter (no datacenter.yaml): refusing to remove it"
			},
		},
		"a datacenter without clusters is removed without kwokctl": {
			setup: func(t *testing.T, home string) {
				dc, err := newDatacenter("v1.37.1", 1)
				if err != nil {
					t.Fatal(err)
				}
				mkdir(t, home)
				if err := dc.save(home); err != nil {
					t.Fatal(err)
				}
			},
			wantRemoved: true,
		},
		"clusters to delete need kwokctl": {
			setup: func(t *testing.T, home string) { mkdir(t, ClusterDir(home, HubName)) },
			wantErr: func(_, bin string) string {
				return bin + " is missing kwokctl: run `make tools` to build them (several minutes the first time)"
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			home := filepath.Join(t.TempDir(), "home")
			bin := t.TempDir() // no binaries: `make tools` never ran
			if tc.setup != nil {
				tc.setup(t, home)
			}
			var wantErr string
			if tc.wantErr != nil {
				wantErr = tc.wantErr(home, bin)
			}
			removed, err := Down(t.Context(), Options{Home: home, BinDir: bin, Logger: logr.Discard()})
			if diff := cmp.Diff(wantErr, errString(err)); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			if removed != tc.wantRemoved {
				t.Errorf("removed = %t, want %t", removed, tc.wantRemoved)
			}
			if _, err := os.Stat(home); tc.wantRemoved && !os.IsNotExist(err) {
				t.Errorf("home still there after Down (stat: %v)", err)
			}
		})
	}
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
