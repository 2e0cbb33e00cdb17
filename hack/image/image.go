package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sync/errgroup"
)

// What the process runs as and runs. The chart's pods set runAsNonRoot
// without a runAsUser, so the kubelet needs a numeric non-root USER here; the
// Dockerfile's distroless nonroot user is the same 65532 (test/image checks
// that the two agree).
const (
	user       = "65532:65532"
	entrypoint = "/certbridge"
	workingDir = "/"
)

// The artifact type of the SBOMs, and the OCI empty config their manifests
// carry (image-spec 1.1, "Guidelines for Artifact Usage").
const (
	spdxMediaType        = "application/spdx+json"
	emptyConfigMediaType = "application/vnd.oci.empty.v1+json"
)

// Files beside the binary: the passwd and group entries, home and /tmp that
// distroless's nonroot variant has, so the process sees the same user name
// and HOME whichever of the two images runs it. Nothing here is executable.
var baseFiles = []tarFile{
	{name: "etc/", mode: 0o755, dir: true},
	{name: "etc/group", mode: 0o644, body: "root:x:0:\nnonroot:x:65532:\n"},
	{name: "etc/passwd", mode: 0o644, body: "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"},
	{name: "home/", mode: 0o755, dir: true},
	{name: "home/nonroot/", mode: 0o700, dir: true, uid: 65532, gid: 65532},
	{name: "tmp/", mode: 0o1777, dir: true},
}

type binary struct{ os, arch, path string }

type buildOptions struct {
	dir, name, version, revision, source string
	sourceDateEpoch                      int64
	binaries                             []binary
}

// platformImage is one platform's image and the SBOM that refers to it.
type platformImage struct {
	binary
	img     v1.Image
	digest  v1.Hash
	sbom    v1.Image
	tarball string
}

type result struct {
	name, layout string
	index        v1.Hash
	platforms    []platformImage
}

func (r result) print(w io.Writer) {
	fmt.Fprintf(w, "%s in %s\n", r.name, r.layout)
	fmt.Fprintf(w, "  index        %s\n", r.index)
	for _, p := range r.platforms {
		fmt.Fprintf(w, "  %-12s %s  %s\n", p.os+"/"+p.arch, p.digest, p.tarball)
	}
}

func build(o buildOptions) (result, error) {
	tag, err := name.NewTag(o.name, name.StrictValidation)
	if err != nil {
		return result{}, fmt.Errorf("--name %q: %w (want repository:tag)", o.name, err)
	}
	created := time.Unix(o.sourceDateEpoch, 0).UTC()
	labels := map[string]string{
		"org.opencontainers.image.source":   o.source,
		"org.opencontainers.image.version":  o.version,
		"org.opencontainers.image.revision": o.revision,
	}
	annotations := maps.Clone(labels)
	annotations["org.opencontainers.image.created"] = created.Format(time.RFC3339)

	// Compressing a binary takes seconds: one platform per core.
	platforms := make([]platformImage, len(o.binaries))
	var g errgroup.Group
	for i, b := range o.binaries {
		g.Go(func() error {
			p, err := buildPlatform(b, labels, created, o)
			if err != nil {
				return fmt.Errorf("%s/%s: %w", b.os, b.arch, err)
			}
			platforms[i] = p
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return result{}, err
	}

	adds := make([]mutate.IndexAddendum, 0, 2*len(platforms))
	for _, p := range platforms {
		adds = append(adds, mutate.IndexAddendum{Add: plainDescriptor{p.img}, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: p.os, Architecture: p.arch},
		}})
	}
	// The SBOMs travel in the index, so that anything that copies the index
	// (crane push, make image-push, a registry mirror) copies them too. The
	// unknown/unknown platform is what BuildKit gives its attestations: no
	// runtime selects it. Each SBOM's manifest names its image as subject, so
	// registries with the OCI referrers API list it as that image's referrer.
	for _, p := range platforms {
		adds = append(adds, mutate.IndexAddendum{Add: p.sbom, Descriptor: v1.Descriptor{
			Platform:     &v1.Platform{OS: "unknown", Architecture: "unknown"},
			ArtifactType: spdxMediaType,
		}})
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx, adds...)
	idx = mutate.Annotations(idx, annotations).(v1.ImageIndex)
	digest, err := idx.Digest()
	if err != nil {
		return result{}, err
	}

	res := result{name: tag.String(), layout: filepath.Join(o.dir, "oci"), index: digest, platforms: platforms}
	if err := writeLayout(res.layout, idx, tag); err != nil {
		return result{}, err
	}
	for i := range res.platforms {
		p := &res.platforms[i]
		p.tarball = filepath.Join(o.dir, fmt.Sprintf("certbridge-%s-%s.tar", p.os, p.arch))
		if err := tarball.WriteToFile(p.tarball, tag, p.img); err != nil {
			return result{}, fmt.Errorf("writing %s: %w", p.tarball, err)
		}
	}
	if err := os.WriteFile(filepath.Join(o.dir, "digest"), []byte(digest.String()+"\n"), 0o644); err != nil {
		return result{}, err
	}
	return res, nil
}

// writeLayout replaces dir with a layout holding only idx: crane push takes a
// layout with one entry as that entry, and an older build left in place
// would make it two.
func writeLayout(dir string, idx v1.ImageIndex, tag name.Tag) error {
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	l, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return err
	}
	// containerd's and Docker's importers name the image after
	// io.containerd.image.name; OCI tools take the tag from ref.name.
	if err := l.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"io.containerd.image.name":          tag.String(),
		"org.opencontainers.image.ref.name": tag.TagStr(),
	})); err != nil {
		return fmt.Errorf("writing the layout: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

func buildPlatform(b binary, labels map[string]string, created time.Time, o buildOptions) (platformImage, error) {
	bin, err := os.ReadFile(b.path)
	if err != nil {
		return platformImage{}, err
	}
	files := append(append([]tarFile{}, baseFiles...), tarFile{name: entrypoint[1:], mode: 0o755, data: bin})
	layerBlob, err := gzipTar(files, created)
	if err != nil {
		return platformImage{}, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBlob)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return platformImage{}, err
	}

	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: b.arch,
		OS:           b.os,
		Created:      v1.Time{Time: created},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			User:       user,
			Entrypoint: []string{entrypoint},
			WorkingDir: workingDir,
			Labels:     labels,
		},
	})
	if err != nil {
		return platformImage{}, err
	}
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created:   v1.Time{Time: created},
		CreatedBy: "make image: " + entrypoint + " (make build's binary for " + b.os + "/" + b.arch + ") on an empty base",
	}})
	if err != nil {
		return platformImage{}, err
	}
	desc, err := partial.Descriptor(img)
	if err != nil {
		return platformImage{}, err
	}

	sum := sha256.Sum256(bin)
	doc, err := spdxDocument(b.path, hex.EncodeToString(sum[:]), b.os+"/"+b.arch, created, o)
	if err != nil {
		return platformImage{}, fmt.Errorf("SBOM: %w", err)
	}
	sbom, err := newArtifact(spdxMediaType, doc, fmt.Sprintf("certbridge-%s-%s.spdx.json", b.os, b.arch), *desc, created)
	if err != nil {
		return platformImage{}, err
	}
	return platformImage{binary: b, img: img, digest: desc.Digest, sbom: sbom}, nil
}

// plainDescriptor describes an image without the artifactType that
// go-containerregistry derives from the config's media type: image-spec sets
// artifactType on artifacts only, such as the SBOMs beside the images.
type plainDescriptor struct{ v1.Image }

func (i plainDescriptor) Descriptor() (*v1.Descriptor, error) {
	d, err := partial.Descriptor(i.Image)
	if err != nil {
		return nil, err
	}
	d.ArtifactType = ""
	return d, nil
}

type tarFile struct {
	name     string
	mode     int64
	dir      bool
	uid, gid int
	body     string
	data     []byte
}

// gzipTar writes files in the given order with the one modification time: the
// same files give the same bytes, so the same commit gives the same digest.
func gzipTar(files []tarFile, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, f := range files {
		data := f.data
		if data == nil {
			data = []byte(f.body)
		}
		h := &tar.Header{
			Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.gid,
			ModTime: mtime, Format: tar.FormatUSTAR, Typeflag: tar.TypeReg, Size: int64(len(data)),
		}
		if f.dir {
			h.Typeflag, h.Size, data = tar.TypeDir, 0, nil
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// artifact is an OCI artifact manifest: the empty config, one blob, and the
// image it describes as subject. go-containerregistry's mutate cannot set a
// manifest's artifactType, so the manifest is written here.
type artifact struct {
	manifest []byte
	blob     v1.Layer
}

func newArtifact(mediaType string, body []byte, title string, subject v1.Descriptor, created time.Time) (v1.Image, error) {
	blob := static.NewLayer(body, types.MediaType(mediaType))
	blobDesc, err := partial.Descriptor(blob)
	if err != nil {
		return nil, err
	}
	blobDesc.Annotations = map[string]string{"org.opencontainers.image.title": title}
	configDigest, configSize, err := v1.SHA256(bytes.NewReader(emptyConfig))
	if err != nil {
		return nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  mediaType,
		Config:        v1.Descriptor{MediaType: emptyConfigMediaType, Digest: configDigest, Size: configSize, Data: emptyConfig},
		Layers:        []v1.Descriptor{*blobDesc},
		Subject:       &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations:   map[string]string{"org.opencontainers.image.created": created.Format(time.RFC3339)},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(artifact{manifest: raw, blob: blob})
}

var emptyConfig = []byte("{}")

func (a artifact) RawConfigFile() ([]byte, error)      { return emptyConfig, nil }
func (a artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }

func (a artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if d, err := a.blob.Digest(); err == nil && d == h {
		return a.blob, nil
	}
	return nil, fmt.Errorf("artifact has no blob %s", h)
}
