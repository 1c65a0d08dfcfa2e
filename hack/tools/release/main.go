// Command ocibuild builds Strata's container image as an OCI image layout,
// reproducibly: one layer holding the static strata binary (and the few
// files a non-root, empty-based image needs), every file's time and owner
// fixed, its entries sorted, and the image's creation time fixed, so that
// two builds of the same binary give the same digest. No Docker, no base
// image, nothing downloaded. It prints the image's digest.
//
//	ocibuild --binary dist/linux/strata --out dist/image
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// nonRoot is the user and group the image runs as (distroless's nonroot).
const nonRoot = 65532

func main() {
	binary := flag.String("binary", "", "the static strata binary (linux)")
	out := flag.String("out", "", "directory of the OCI image layout to write (replaced)")
	arch := flag.String("arch", runtime.GOARCH, "the binary's architecture")
	ref := flag.String("ref", "", "org.opencontainers.image.ref.name of the image in the layout (e.g. the version)")
	flag.Parse()
	if *binary == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "ocibuild: --binary and --out are required")
		os.Exit(2)
	}
	digest, err := build(*binary, *out, *arch, *ref, created())
	if err != nil {
		fmt.Fprintln(os.Stderr, "ocibuild:", err)
		os.Exit(1)
	}
	fmt.Println(digest)
}

// created is SOURCE_DATE_EPOCH (reproducible-builds.org) when set, else the
// Unix epoch: a build's time must not change its digest.
func created() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(sec, 0).UTC()
		}
	}
	return time.Unix(0, 0).UTC()
}

func build(binary, out, arch, ref string, at time.Time) (v1.Hash, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading the binary: %w", err)
	}
	files, err := layerTar(bin, at)
	if err != nil {
		return v1.Hash{}, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(files)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("making the layer: %w", err)
	}
	img := mutate.MediaType(mutate.ConfigMediaType(empty.Image, types.OCIConfigJSON), types.OCIManifestSchema1)
	if img, err = mutate.AppendLayers(img, layer); err != nil {
		return v1.Hash{}, fmt.Errorf("adding the layer: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return v1.Hash{}, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Created = v1.Time{Time: at}
	cf.Author = "strata"
	cf.History = []v1.History{{Created: v1.Time{Time: at}, CreatedBy: "ocibuild: the static strata binary", Comment: "hack/tools/release"}}
	cf.Config = v1.Config{
		Entrypoint: []string{"/strata"},
		User:       fmt.Sprintf("%d:%d", nonRoot, nonRoot),
		WorkingDir: "/",
		Env:        []string{"HOME=/home/nonroot", "TMPDIR=/tmp"},
		Labels:     map[string]string{"org.opencontainers.image.source": "https://github.com/strata-dev/strata"},
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return v1.Hash{}, fmt.Errorf("writing the image config: %w", err)
	}
	if err := os.RemoveAll(out); err != nil {
		return v1.Hash{}, fmt.Errorf("removing the previous layout: %w", err)
	}
	path, err := layout.Write(out, empty.Index)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("creating the layout: %w", err)
	}
	var opts []layout.Option
	if ref != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref}))
	}
	if err := path.AppendImage(img, opts...); err != nil {
		return v1.Hash{}, fmt.Errorf("writing the image: %w", err)
	}
	return img.Digest()
}

// layerTar is the image's one layer: the binary at /strata, owned by root
// and not writable by the user it runs as, /etc/passwd and /etc/group
// naming that user, its home and /tmp. Entries are sorted and every time
// is at.
func layerTar(bin []byte, at time.Time) ([]byte, error) {
	type entry struct {
		hdr  tar.Header
		data []byte
	}
	dir := func(name string, mode int64, owner int) entry {
		return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: owner, Gid: owner}}
	}
	file := func(name string, mode int64, data []byte) entry {
		return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data))}, data: data}
	}
	entries := []entry{
		dir("etc/", 0o755, 0),
		file("etc/group", 0o644, fmt.Appendf(nil, "root:x:0:\nnonroot:x:%d:\n", nonRoot)),
		file("etc/passwd", 0o644, fmt.Appendf(nil, "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonRoot, nonRoot)),
		dir("home/", 0o755, 0),
		dir("home/nonroot/", 0o700, nonRoot),
		file("strata", 0o755, bin),
		dir("tmp/", 0o1777, 0),
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].hdr.Name < entries[j].hdr.Name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		e.hdr.ModTime, e.hdr.AccessTime, e.hdr.ChangeTime = at, time.Time{}, time.Time{}
		e.hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, fmt.Errorf("writing %s to the layer: %w", e.hdr.Name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, fmt.Errorf("writing %s to the layer: %w", e.hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, errors.Join(errors.New("closing the layer"), err)
	}
	return buf.Bytes(), nil
}
