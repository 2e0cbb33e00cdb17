// Package image checks the images `make image` builds as their users get
// them: an OCI layout that crane push takes, docker-archive tarballs for
// docker load and kind load, make image-push, and the chart that names them.
// The images are built with `make image` itself, twice, to see the digest
// come out the same.
package image

import (
	"archive/tar"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"sigs.k8s.io/yaml"
)

const (
	repoRoot = "../.."
	spdxType = "application/spdx+json"
	// helm built from its module assumes Kubernetes 1.20 when it asks no
	// cluster, below the chart's kubeVersion (as in charts/chart_test.go).
	kubeVersion = "v1.36.2"
)

var platforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}

var scratch string // removed after the tests; t.TempDir would go with the first test

func TestMain(m *testing.M) {
	var err error
	if scratch, err = os.MkdirTemp("", "certbridge-image-test-"); err != nil {
		log.Fatal(err)
	}
	code := m.Run()
	os.RemoveAll(scratch)
	os.Exit(code)
}

// build is one run of make image (or make image-push) into dir.
type build struct {
	dir     string
	output  string
	index   v1.ImageIndex
	digest  v1.Hash           // the index's
	name    string            // io.containerd.image.name in the layout
	printed map[string]string // what make printed: "index" or os/arch → digest
}

var (
	firstOnce sync.Once
	first     build
	firstErr  error
)

// built is the image every test reads, from one `make image`.
func built(t *testing.T) build {
	t.Helper()
	firstOnce.Do(func() {
		first, firstErr = makeImage(filepath.Join(scratch, "first"), "image")
	})
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	return first
}

func makeImage(dir string, target string, vars ...string) (build, error) {
	b := build{dir: dir, printed: map[string]string{}}
	cmd := exec.Command("make", append([]string{"--no-print-directory", "-C", repoRoot, target, "IMAGE_DIR=" + dir}, vars...)...)
	// make runs as a user's `make image` does: with the Makefile's defaults,
	// not with overrides the environment or an outer make (make test) passes.
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.Contains([]string{"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "BIN_DIR", "VERSION", "REVISION", "SOURCE_DATE_EPOCH", "IMAGE", "IMAGE_REPO", "IMAGE_TAG", "DOCKER_CONFIG"}, k) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// Credentials for make image-push come from here, not from this user's.
	cmd.Env = append(cmd.Env, "DOCKER_CONFIG="+filepath.Join(scratch, "docker-config"))
	out, err := cmd.CombinedOutput()
	b.output = string(out)
	if err != nil {
		return b, fmt.Errorf("make %s: %v\n%s", target, err, out)
	}
	for _, m := range regexp.MustCompile(`(?m)^  (index|linux/[a-z0-9]+) +(sha256:[0-9a-f]{64})`).FindAllStringSubmatch(b.output, -1) {
		b.printed[m[1]] = m[2]
	}
	l, err := layout.ImageIndexFromPath(filepath.Join(dir, "oci"))
	if err != nil {
		return b, fmt.Errorf("make %s wrote no OCI layout in %s/oci: %v", target, dir, err)
	}
	m, err := l.IndexManifest()
	if err != nil {
		return b, err
	}
	// crane push takes a layout with a single entry as that entry.
	if len(m.Manifests) != 1 || !m.Manifests[0].MediaType.IsIndex() {
		return b, fmt.Errorf("the layout's index.json must hold one image index (for crane push), holds %+v", m.Manifests)
	}
	b.digest, b.name = m.Manifests[0].Digest, m.Manifests[0].Annotations["io.containerd.image.name"]
	b.index, err = l.ImageIndex(b.digest)
	return b, err
}

func git(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git %s: %v (make image stamps the image from git)", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out))
}

// platformImage is the image the index names for p.
func platformImage(t *testing.T, b build, p v1.Platform) (v1.Image, v1.Descriptor) {
	t.Helper()
	m, err := b.index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.OS == p.OS && d.Platform.Architecture == p.Architecture {
			img, err := b.index.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			return img, d
		}
	}
	t.Fatalf("the index has no %s image", p)
	return nil, v1.Descriptor{}
}

func configOf(t *testing.T, img v1.Image) *v1.ConfigFile {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestIndexNamesBothPlatforms(t *testing.T) {
	b := built(t)
	if b.printed["index"] != b.digest.String() {
		t.Errorf("make image printed index %q; the layout's index is %s\n%s", b.printed["index"], b.digest, b.output)
	}
	m, err := b.index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var images []string
	for _, d := range m.Manifests {
		if d.ArtifactType == spdxType {
			if d.Platform == nil || d.Platform.OS != "unknown" {
				t.Errorf("SBOM %s has platform %v: runtimes must never select it, so unknown/unknown", d.Digest, d.Platform)
			}
			continue
		}
		if d.Platform == nil {
			t.Errorf("index entry %s has no platform", d.Digest)
			continue
		}
		images = append(images, d.Platform.String())
	}
	if want := []string{"linux/amd64", "linux/arm64"}; !slices.Equal(images, want) {
		t.Fatalf("index images: %q, want %q", images, want)
	}
	for _, p := range platforms {
		img, d := platformImage(t, b, p)
		if got := b.printed[p.String()]; got != d.Digest.String() {
			t.Errorf("make image printed %s %q; the index has %s", p, got, d.Digest)
		}
		if cfg := configOf(t, img); cfg.OS != p.OS || cfg.Architecture != p.Architecture {
			t.Errorf("the %s entry's config says %s/%s", p, cfg.OS, cfg.Architecture)
		}
	}
}

// The chart's pods set runAsNonRoot without runAsUser, so the kubelet starts
// them only if the image's user is numeric and not root.
func TestRuntimeConfig(t *testing.T) {
	b := built(t)
	epoch, err := strconv.ParseInt(git(t, "log", "-1", "--format=%ct"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	chart := readYAML(t, filepath.Join(repoRoot, "charts", "certbridge", "Chart.yaml"))
	wantLabels := map[string]string{
		"org.opencontainers.image.source":   chart["home"].(string),
		"org.opencontainers.image.version":  git(t, "describe", "--tags", "--always", "--dirty"),
		"org.opencontainers.image.revision": git(t, "rev-parse", "HEAD"),
	}
	for _, p := range platforms {
		t.Run(p.String(), func(t *testing.T) {
			img, _ := platformImage(t, b, p)
			cfg := configOf(t, img)
			if cfg.Config.User != "65532:65532" {
				t.Errorf("user %q, want 65532:65532", cfg.Config.User)
			}
			if !slices.Equal(cfg.Config.Entrypoint, []string{"/certbridge"}) || len(cfg.Config.Cmd) != 0 {
				t.Errorf("entrypoint %q cmd %q, want [/certbridge] and no cmd (the chart passes the subcommand as args)", cfg.Config.Entrypoint, cfg.Config.Cmd)
			}
			for k, v := range wantLabels {
				if cfg.Config.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, cfg.Config.Labels[k], v)
				}
			}
			if !cfg.Created.Time.Equal(time.Unix(epoch, 0)) {
				t.Errorf("created %s, want the commit's time %s", cfg.Created.Time, time.Unix(epoch, 0).UTC())
			}
		})
	}
}

type entry struct {
	hdr  *tar.Header
	body []byte // of the entrypoint only
}

type contents struct {
	once  sync.Once
	files map[string]entry
	err   error
}

var read sync.Map // image digest → *contents

// files lists every layer's entries, with the entrypoint's bytes, reading
// each image once.
func files(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	c, _ := read.LoadOrStore(d, &contents{})
	cs := c.(*contents)
	cs.once.Do(func() { cs.files, cs.err = readLayers(img) })
	if cs.err != nil {
		t.Fatal(cs.err)
	}
	return cs.files
}

// readLayers unpacks the layers as a runtime does, which checks each one
// against the config's diff ID. gzip -d does the decompressing: under the
// race detector (make test), compress/gzip takes thirty times as long.
func readLayers(img v1.Image) (map[string]entry, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != len(layers) {
		return nil, fmt.Errorf("%d layers, %d diff IDs in the config", len(layers), len(cfg.RootFS.DiffIDs))
	}
	all := map[string]entry{}
	for i, l := range layers {
		if mt, err := l.MediaType(); err != nil || mt != types.OCILayer {
			return nil, fmt.Errorf("layer media type %q (%v), want %s", mt, err, types.OCILayer)
		}
		diffID := cfg.RootFS.DiffIDs[i]
		blob, err := l.Compressed()
		if err != nil {
			return nil, err
		}
		gunzip := exec.Command("gzip", "-dc")
		gunzip.Stdin = blob
		out, err := gunzip.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := gunzip.Start(); err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		h := sha256.New()
		tr := tar.NewReader(io.TeeReader(out, h))
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("layer %s: %w", diffID, err)
			}
			e := entry{hdr: hdr}
			if path.Clean("/"+hdr.Name) == "/certbridge" {
				if e.body, err = io.ReadAll(tr); err != nil {
					return nil, err
				}
			}
			all[path.Clean("/"+hdr.Name)] = e
		}
		// The tar's end-of-archive padding counts in the diff ID too.
		if _, err := io.Copy(h, out); err != nil {
			return nil, err
		}
		if err := gunzip.Wait(); err != nil {
			return nil, fmt.Errorf("gzip -d of layer %s: %w", diffID, err)
		}
		blob.Close()
		if got := hex.EncodeToString(h.Sum(nil)); got != diffID.Hex {
			return nil, fmt.Errorf("a layer unpacks to sha256:%s, but the config's diff ID is %s: runtimes refuse it", got, diffID)
		}
	}
	return all, nil
}

var shells = []string{"sh", "bash", "dash", "ash", "ksh", "mksh", "zsh", "csh", "tcsh", "fish", "busybox", "toybox"}

// Nothing in the image but certbridge can run: no shell to exec into, nor
// any other program.
func TestNoShell(t *testing.T) {
	b := built(t)
	for _, p := range platforms {
		t.Run(p.String(), func(t *testing.T) {
			img, _ := platformImage(t, b, p)
			fs := files(t, img)
			for name, e := range fs {
				if slices.Contains(shells, path.Base(name)) || name == "/bin/sh" {
					t.Errorf("the image has %s", name)
				}
				if e.hdr.Typeflag == tar.TypeSymlink || e.hdr.Typeflag == tar.TypeLink {
					t.Errorf("the image has a link %s -> %s", name, e.hdr.Linkname)
				}
				if e.hdr.Typeflag == tar.TypeReg && e.hdr.Mode&0o111 != 0 && name != "/certbridge" {
					t.Errorf("%s is executable; only /certbridge may be", name)
				}
			}
			bin, ok := fs["/certbridge"]
			if !ok {
				t.Fatal("no /certbridge in the image")
			}
			// Owned by root and not writable by the user it runs as.
			if bin.hdr.Uid != 0 || bin.hdr.Mode&0o777 != 0o755 {
				t.Errorf("/certbridge uid %d mode %o, want root's and 0755", bin.hdr.Uid, bin.hdr.Mode)
			}
		})
	}
}

// extract writes the amd64 image's binary (this machine's platform) out.
func extract(t *testing.T, b build) string {
	t.Helper()
	img, _ := platformImage(t, b, v1.Platform{OS: "linux", Architecture: "amd64"})
	bin := files(t, img)["/certbridge"].body
	if len(bin) == 0 {
		t.Fatal("no /certbridge in the linux/amd64 image")
	}
	p := filepath.Join(t.TempDir(), "certbridge")
	if err := os.WriteFile(p, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBinaryFromTheImageRuns(t *testing.T) {
	bin := extract(t, built(t))
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	if want := "certbridge " + git(t, "describe", "--tags", "--always", "--dirty") + " "; !strings.HasPrefix(string(out), want) || !strings.Contains(string(out), "linux/amd64") {
		t.Errorf("version printed %q, want it to start with %q and name linux/amd64", out, want)
	}
	cmd := exec.Command(bin, "webhook", "--help")
	cmd.Env = append(os.Environ(), "GROUP_NAME=acme.example.com")
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("webhook --help: %v\n%s", err, out)
	}
	for _, want := range []string{"--group-name", `(default "acme.example.com")`, "--secure-port"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("webhook --help lacks %q:\n%s", want, out)
		}
	}
	// The base is empty: no /etc/ssl. TLS to Cloudflare and Alibaba Cloud works
	// only if the roots are compiled in.
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(bi.Deps, func(m *debug.Module) bool { return m.Path == "golang.org/x/crypto/x509roots/fallback" }) {
		t.Error("the binary does not link golang.org/x/crypto/x509roots/fallback: on the image's empty base it would trust no CA")
	}
	if bi.Main.Path != goModulePath(t) {
		t.Errorf("the binary's main module is %q", bi.Main.Path)
	}
}

func goModulePath(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-m")
	cmd.Dir = repoRoot
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

type spdx struct {
	SPDXVersion string `json:"spdxVersion"`
	Packages    []struct {
		SPDXID      string `json:"SPDXID"`
		Name        string `json:"name"`
		VersionInfo string `json:"versionInfo"`
		Checksums   []struct {
			Algorithm     string `json:"algorithm"`
			ChecksumValue string `json:"checksumValue"`
		} `json:"checksums"`
	} `json:"packages"`
	Relationships []struct {
		SPDXElementID      string `json:"spdxElementId"`
		RelationshipType   string `json:"relationshipType"`
		RelatedSPDXElement string `json:"relatedSpdxElement"`
	} `json:"relationships"`
}

// sbomDigest finds the SBOM whose subject is the image d.
func sbomDigest(t *testing.T, b build, d v1.Descriptor) v1.Hash {
	t.Helper()
	m, err := b.index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range m.Manifests {
		if e.ArtifactType != spdxType {
			continue
		}
		art, err := b.index.Image(e.Digest)
		if err != nil {
			t.Fatal(err)
		}
		am, err := art.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if am.Subject != nil && am.Subject.Digest == d.Digest {
			return e.Digest
		}
	}
	t.Fatalf("no SBOM in the index has %s as subject", d.Digest)
	return v1.Hash{}
}

// sbomFor reads the SBOM whose subject is the image d.
func sbomFor(t *testing.T, b build, d v1.Descriptor) spdx {
	t.Helper()
	digest := sbomDigest(t, b, d)
	art, err := b.index.Image(digest)
	if err != nil {
		t.Fatal(err)
	}
	am, err := art.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if am.ArtifactType != spdxType || len(am.Layers) != 1 || am.Layers[0].MediaType != spdxType {
		t.Fatalf("SBOM manifest %s: artifactType %q, layers %+v", digest, am.ArtifactType, am.Layers)
	}
	blob, err := art.LayerByDigest(am.Layers[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := blob.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var doc spdx
	if err := json.NewDecoder(rc).Decode(&doc); err != nil {
		t.Fatalf("SBOM %s is not JSON: %v", digest, err)
	}
	return doc
}

// Each image has an SBOM naming the Go module, its version and every module
// linked into the binary, which go list finds independently.
func TestSBOM(t *testing.T) {
	b := built(t)
	module := goModulePath(t)
	version := git(t, "describe", "--tags", "--always", "--dirty")
	for _, p := range platforms {
		t.Run(p.String(), func(t *testing.T) {
			img, d := platformImage(t, b, p)
			doc := sbomFor(t, b, d)
			if doc.SPDXVersion != "SPDX-2.3" {
				t.Errorf("spdxVersion %q", doc.SPDXVersion)
			}
			var described string
			for _, r := range doc.Relationships {
				if r.SPDXElementID == "SPDXRef-DOCUMENT" && r.RelationshipType == "DESCRIBES" {
					described = r.RelatedSPDXElement
				}
			}
			got := map[string]string{}
			for _, pkg := range doc.Packages {
				if pkg.SPDXID != described {
					got[pkg.Name] = pkg.VersionInfo
					continue
				}
				if pkg.Name != module || pkg.VersionInfo != version {
					t.Errorf("the SBOM describes %s %s, want %s %s", pkg.Name, pkg.VersionInfo, module, version)
				}
				sum := sha256.Sum256(files(t, img)["/certbridge"].body)
				if len(pkg.Checksums) != 1 || pkg.Checksums[0].ChecksumValue != hex.EncodeToString(sum[:]) {
					t.Errorf("the SBOM's checksum %+v is not that of the image's /certbridge (%x)", pkg.Checksums, sum)
				}
			}
			if described == "" {
				t.Fatal("the SBOM describes no package")
			}
			want := linkedModules(t, p)
			want["stdlib"] = goVersion(t)
			for path, v := range want {
				if got[path] != v {
					t.Errorf("the SBOM has %s at %q; the build links %s", path, got[path], v)
				}
			}
			for path := range got {
				if _, ok := want[path]; !ok {
					t.Errorf("the SBOM lists %s, which the build does not link", path)
				}
			}
		})
	}
}

// linkedModules asks go list which modules provide the packages the binary
// links for p, with make build's settings.
func linkedModules(t *testing.T, p v1.Platform) map[string]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", `{{with .Module}}{{if not .Main}}{{.Path}} {{with .Replace}}{{.Version}}{{else}}{{.Version}}{{end}}{{end}}{{end}}`, ".")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	mods := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if path, v, ok := strings.Cut(line, " "); ok {
			mods[path] = v
		}
	}
	return mods
}

func goVersion(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// docker load and kind load read manifest.json's RepoTags; crane push and
// crane load read the tarball through go-containerregistry's tarball package.
func TestTarballs(t *testing.T) {
	b := built(t)
	for _, p := range platforms {
		t.Run(p.String(), func(t *testing.T) {
			file := filepath.Join(b.dir, fmt.Sprintf("certbridge-%s-%s.tar", p.OS, p.Architecture))
			opener := func() (io.ReadCloser, error) { return os.Open(file) }
			m, err := tarball.LoadManifest(opener)
			if err != nil {
				t.Fatalf("%s is no docker-archive: %v", file, err)
			}
			if len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{b.name}) {
				t.Errorf("manifest.json %+v, want one image tagged %s", m, b.name)
			}
			img, err := tarball.Image(opener, nil)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := platformImage(t, b, p)
			// The config digest is the image ID docker load and kind report.
			gotID, err := img.ConfigName()
			if err != nil {
				t.Fatal(err)
			}
			wantID, err := want.ConfigName()
			if err != nil {
				t.Fatal(err)
			}
			if gotID != wantID {
				t.Errorf("the tarball's image ID %s is not the layout's %s", gotID, wantID)
			}
		})
	}
}

func readYAML(t *testing.T, file string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return v
}

// renderedImages is every container image of the chart rendered with set.
func renderedImages(t *testing.T, set ...string) []string {
	t.Helper()
	helm := os.Getenv("TEST_ASSET_HELM")
	if helm == "" {
		t.Fatal("TEST_ASSET_HELM is not set: run these tests with `make test`, or after `eval \"$(make -s env)\"`")
	}
	args := []string{"template", "certbridge", filepath.Join(repoRoot, "charts", "certbridge"), "--kube-version", kubeVersion}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := exec.Command(helm, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	var images []string
	for _, m := range regexp.MustCompile(`(?m)^\s+image: (\S+)$`).FindAllStringSubmatch(string(out), -1) {
		images = append(images, strings.Trim(m[1], `"`))
	}
	if len(images) != 2 {
		t.Fatalf("want the webhook's and the issuer's containers, found images %q", images)
	}
	return images
}

// With the chart's defaults, helm install pulls the image make image names
// (so a kind load of the tarball is all a local cluster needs); with
// image.digest, the index make image printed.
func TestChartNamesTheImage(t *testing.T) {
	b := built(t)
	for _, img := range renderedImages(t) {
		if img != b.name {
			t.Errorf("the chart's default image is %s; make image names its image %s", img, b.name)
		}
	}
	repo, _, _ := strings.Cut(b.name, ":")
	if ref, err := name.NewTag(b.name); err != nil || ref.Context().Name() != repo {
		t.Fatalf("make image's name %s is not repository:tag (%v)", b.name, err)
	}
	for _, img := range renderedImages(t, "image.digest="+b.digest.String()) {
		if want := repo + "@" + b.digest.String(); img != want {
			t.Errorf("with image.digest the chart renders %s, want %s", img, want)
		}
	}
}

// dockerfileFinal reads the last stage's instructions (keyword → arguments).
func dockerfileFinal(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stage := map[string][]string{}
	text := strings.ReplaceAll(string(b), "\\\n", " ")
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kw, args, _ := strings.Cut(line, " ")
		kw = strings.ToUpper(kw)
		if kw == "FROM" {
			stage = map[string][]string{}
		}
		stage[kw] = append(stage[kw], strings.TrimSpace(args))
	}
	return stage
}

// Users with Docker build the Dockerfile; the chart must run either image the
// same way.
func TestDockerfileDescribesTheSameImage(t *testing.T) {
	b := built(t)
	img, _ := platformImage(t, b, platforms[0])
	cfg := configOf(t, img).Config
	df := dockerfileFinal(t)
	if got := df["USER"]; !slices.Equal(got, []string{cfg.User}) {
		t.Errorf("the Dockerfile's USER %q, make image's %q", got, cfg.User)
	}
	var entry []string
	if len(df["ENTRYPOINT"]) != 1 || json.Unmarshal([]byte(df["ENTRYPOINT"][0]), &entry) != nil {
		t.Fatalf("the Dockerfile's ENTRYPOINT %q is not one exec-form (JSON) entrypoint", df["ENTRYPOINT"])
	}
	if !slices.Equal(entry, cfg.Entrypoint) {
		t.Errorf("the Dockerfile's ENTRYPOINT %q, make image's %q", entry, cfg.Entrypoint)
	}
	var copied bool
	for _, c := range df["COPY"] {
		copied = copied || strings.HasSuffix(c, " "+cfg.Entrypoint[0])
	}
	if !copied {
		t.Errorf("the Dockerfile copies no binary to %s: %q", cfg.Entrypoint[0], df["COPY"])
	}
	var labels []string
	for _, l := range df["LABEL"] {
		for _, kv := range strings.Fields(l) {
			k, v, _ := strings.Cut(kv, "=")
			labels = append(labels, k)
			if k == "org.opencontainers.image.source" && v != cfg.Labels[k] {
				t.Errorf("the Dockerfile's %s is %s, make image's %s", k, v, cfg.Labels[k])
			}
		}
	}
	var want []string
	for k := range cfg.Labels {
		want = append(want, k)
	}
	slices.Sort(labels)
	slices.Sort(want)
	if !slices.Equal(labels, want) {
		t.Errorf("the Dockerfile's labels %q, make image's %q", labels, want)
	}
}

// A second build of the same commit, pushed with make image-push to a
// registry on loopback, has the first build's digests, and the registry
// lists each image's SBOM as its referrer.
func TestReproducibleAndPushed(t *testing.T) {
	b := built(t)
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(true)))
	defer reg.Close()
	dest := strings.TrimPrefix(reg.URL, "http://") + "/certbridge:test"
	second, err := makeImage(filepath.Join(scratch, "second"), "image-push", "IMAGE="+dest)
	if err != nil {
		t.Fatal(err)
	}
	if second.digest != b.digest {
		t.Fatalf("two builds of one commit: index %s, then %s", b.digest, second.digest)
	}
	if want := "pushed " + dest + "@" + b.digest.String(); !strings.Contains(second.output, want) {
		t.Errorf("make image-push did not print %q:\n%s", want, second.output)
	}
	ref, err := name.ParseReference(dest)
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := remote.Index(ref)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := pushed.Digest(); err != nil || d != b.digest {
		t.Fatalf("the registry has %s (%v), make image built %s", d, err, b.digest)
	}
	for _, p := range platforms {
		img, err := remote.Image(ref, remote.WithPlatform(p))
		if err != nil {
			t.Fatalf("pulling %s: %v", p, err)
		}
		_, want := platformImage(t, b, p)
		if d, _ := img.Digest(); d != want.Digest {
			t.Errorf("pulling %s gives %s, want %s", p, d, want.Digest)
		}
		refs, err := remote.Referrers(ref.Context().Digest(want.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		rm, err := refs.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		sbom := sbomDigest(t, b, want)
		if !slices.ContainsFunc(rm.Manifests, func(d v1.Descriptor) bool { return d.Digest == sbom }) {
			t.Errorf("the registry lists %+v as referrers of the %s image, not its SBOM %s", rm.Manifests, p, sbom)
		}
	}
}
