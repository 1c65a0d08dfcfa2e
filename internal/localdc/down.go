package localdc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Down deletes the home's datacenter, every cluster and its data, and then
// the home itself. It refuses while `strata up` runs on the home, and never
// removes a directory that holds no strata datacenter. It returns once the
// clusters' components have exited. Only clusters to delete need kwokctl.
func Down(ctx context.Context, opts Options) (removed bool, err error) {
	if err := opts.resolvePaths(); err != nil {
		return false, err
	}
	if !dirExists(opts.Home) {
		return false, nil
	}
	_, loadErr := loadDatacenter(opts.Home)
	clusterDirs, _ := filepath.Glob(filepath.Join(opts.Home, kwokWorkdir, "clusters", "*"))
	if errors.Is(loadErr, ErrNoDatacenter) && len(clusterDirs) == 0 {
		return false, fmt.Errorf("%s holds no strata datacenter (no %s): refusing to remove it", opts.Home, stateFile)
	}
	unlock, err := lockHome(opts.Home)
	if err != nil {
		return false, err
	}
	defer unlock()
	if len(clusterDirs) > 0 {
		if err := opts.checkBinaries("kwokctl"); err != nil {
			return false, err
		}
	}
	k := kwokctl{binDir: opts.BinDir, home: opts.Home}
	for _, d := range clusterDirs {
		name := filepath.Base(d)
		opts.Logger.Info("Deleting cluster", "cluster", name)
		if err := k.delete(ctx, name); err != nil {
			return false, fmt.Errorf("deleting cluster %s: %w", name, err)
		}
	}
	if err := os.RemoveAll(opts.Home); err != nil {
		return false, fmt.Errorf("removing %s: %w", opts.Home, err)
	}
	return true, nil
}
