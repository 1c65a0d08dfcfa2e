package main

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

// Two builds of the same binary give the same image, whatever the time of
// the build, and the image runs /strata as 65532 with sorted entries.
func TestBuildIsReproducible(t *testing.T) {
	dir := t.TempDir()
	binary := filepath.Join(dir, "strata")
	if err := os.WriteFile(binary, []byte("\x7fELF not really"), 0o755); err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1700000000, 0).UTC()
	first, err := build(binary, filepath.Join(dir, "a"), "amd64", "v1", at)
	if err != nil {
		t.Fatal(err)
	}
	// Files written later have later times; the image must not see them.
	if err := os.Chtimes(binary, time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	second, err := build(binary, filepath.Join(dir, "b"), "amd64", "v2", at)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Errorf("two builds gave %s and %s", first, second)
	}
	other, err := build(binary, filepath.Join(dir, "c"), "amd64", "v1", at.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if other == first {
		t.Error("another creation time gave the same digest: the time is not in the image")
	}

	path, err := layout.FromPath(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := path.Image(first)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.Config.User != "65532:65532" || !slices.Equal(cf.Config.Entrypoint, []string{"/strata"}) || !cf.Created.Equal(at) {
		t.Errorf("config: user %q, entrypoint %q, created %s", cf.Config.User, cf.Config.Entrypoint, cf.Created)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if !hdr.ModTime.Equal(at) {
			t.Errorf("%s: time %s, want %s", hdr.Name, hdr.ModTime, at)
		}
		if hdr.Name == "strata" && (hdr.Uid != 0 || hdr.Mode != 0o755) {
			t.Errorf("/strata: uid %d, mode %o; want root's, not writable by its user", hdr.Uid, hdr.Mode)
		}
	}
	want := []string{"etc/", "etc/group", "etc/passwd", "home/", "home/nonroot/", "strata", "tmp/"}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}
}
