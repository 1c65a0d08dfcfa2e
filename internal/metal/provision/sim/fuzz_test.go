package sim

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzLoadFaults feeds the sim's faults file arbitrary bytes. Properties: a
// file that loads holds only faults of a named machine with a known fix, and
// the provisioner saves them to a file that loads to the same.
func FuzzLoadFaults(f *testing.F) {
	f.Add([]byte(`{"faults":[{"machine":"dc1-r001-u01","fixedBy":"reboot","since":"2026-12-07T01:02:03Z"}]}`))
	f.Add([]byte(`{"faults":[{"machine":"a","fixedBy":"never","since":"0001-01-01T00:00:00Z"},{"machine":"a","fixedBy":"reimage","since":"2026-01-01T00:00:00+05:30"}]}`))
	f.Add([]byte(`{"faults":[{"machine":"","fixedBy":"reboot"}]}`))
	f.Add([]byte(`{"faults":[{"machine":"m","fixedBy":"unplug"}]}`))
	f.Add([]byte(`{"faults":null}`))
	f.Add([]byte(`[`))
	// One directory per fuzzing process, written over at each input: a
	// temporary directory per input would take most of the time.
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte) {
		path := filepath.Join(dir, "faults.json")
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		faults, err := loadFaults(path)
		if err != nil {
			return
		}
		for id, fault := range faults {
			if id == "" || fault.Machine != id || !slices.Contains(Fixes, fault.FixedBy) {
				t.Fatalf("loaded fault %q: %+v", id, fault)
			}
		}
		p := &Provisioner{faultsFile: filepath.Join(dir, "saved.json"), faults: faults}
		if err := p.saveFaults(); err != nil {
			t.Fatalf("saving faults that loaded: %v", err)
		}
		back, err := loadFaults(p.faultsFile)
		if err != nil {
			t.Fatalf("saved faults do not load: %v", err)
		}
		if diff := cmp.Diff(faults, back); diff != "" {
			t.Fatalf("saved and loaded again differs (-loaded +again):\n%s", diff)
		}
	})
}

// FuzzParseFix: a fix parses exactly when it is one of Fixes, and then is
// itself.
func FuzzParseFix(f *testing.F) {
	for _, fix := range Fixes {
		f.Add(string(fix))
	}
	f.Add("Reboot")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		fix, err := ParseFix(s)
		if known := slices.Contains(Fixes, Fix(s)); known != (err == nil) || (known && string(fix) != s) {
			t.Fatalf("ParseFix(%q) = %q, %v", s, fix, err)
		}
	})
}
