// Package globals holds the flags that every strata command shares.
package globals

import (
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
)

// DefaultHome is the strata home when neither --home nor STRATA_HOME is set.
const DefaultHome = ".strata"

// Flags are the persistent flags of the root command.
type Flags struct {
	// Home is the directory of the local datacenter's state.
	Home string
	// BinDir holds the Kubernetes binaries.
	BinDir string
}

// AddTo registers the flags.
func (f *Flags) AddTo(fs *pflag.FlagSet) {
	home := os.Getenv("STRATA_HOME")
	if home == "" {
		home = DefaultHome
	}
	fs.StringVar(&f.Home, "home", home, "directory of the local datacenter's state (env STRATA_HOME)")
	// No back quotes in a usage: pflag shows a back-quoted word as the
	// flag's type ("--bin-dir make tools").
	fs.StringVar(&f.BinDir, "bin-dir", defaultBinDir(), "directory of the Kubernetes binaries (make tools builds them)")
}

// defaultBinDir is the directory of the strata executable: `make` builds
// strata and the Kubernetes binaries into the same bin/.
func defaultBinDir() string {
	exe, err := os.Executable()
	if err != nil {
		return "bin"
	}
	return filepath.Dir(exe)
}
