package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	cfsim "github.com/certbridge/certbridge/test/sim/cloudflare"
)

// certbridgeBinary builds the binary the way users get it: with `make build`.
func certbridgeBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("make", "--no-print-directory", "build", "BIN_DIR="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "certbridge")
}

func run(t *testing.T, bin string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestBinary(t *testing.T) {
	bin := certbridgeBinary(t)

	t.Run("version is stamped by make build", func(t *testing.T) {
		out, err := run(t, bin, nil, "version")
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		desc, err := exec.Command("git", "describe", "--tags", "--always", "--dirty").Output()
		if err != nil {
			t.Skip("not a git checkout")
		}
		if want := "certbridge " + strings.TrimSpace(string(desc)) + " "; !strings.HasPrefix(out, want) {
			t.Errorf("version printed %q, want it to start with %q", out, want)
		}
	})
	t.Run("webhook --help", func(t *testing.T) {
		out, err := run(t, bin, []string{"GROUP_NAME=acme.example.com"}, "webhook", "--help")
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		for _, want := range []string{"--group-name", `(default "acme.example.com")`, "--cloudflare-api-url", "--secure-port", "--solver-timeout"} {
			if !strings.Contains(out, want) {
				t.Errorf("help lacks %q", want)
			}
		}
	})
	t.Run("check credentials: exit code 0 only when everything passed", func(t *testing.T) {
		sim := cfsim.Start()
		defer sim.Close()
		sim.AddZone("example.com")
		token := strings.Repeat("t", 40)
		sim.AddToken(cfsim.Token{Value: token, Permissions: []cfsim.Permission{cfsim.ZoneRead, cfsim.DNSEdit}})
		args := []string{"check", "credentials", "cloudflare", "--cloudflare-api-url", sim.URL(), "--zone", "example.com", "-o", "json"}
		out, err := run(t, bin, []string{"CLOUDFLARE_API_TOKEN=" + token}, args...)
		if err != nil || !strings.Contains(out, `"passed": true`) {
			t.Fatalf("a good token: %v\n%s", err, out)
		}
		out, err = run(t, bin, []string{"CLOUDFLARE_API_TOKEN=" + strings.Repeat("x", 40)}, args...)
		if err == nil || !strings.Contains(out, `"passed": false`) || strings.Contains(out, strings.Repeat("x", 40)) {
			t.Fatalf("a revoked token must exit non-zero without printing it: %v\n%s", err, out)
		}
	})
	t.Run("webhook refuses to start without a group name", func(t *testing.T) {
		out, err := run(t, bin, []string{"GROUP_NAME="}, "webhook")
		if err == nil || !strings.Contains(out, "--group-name or GROUP_NAME") {
			t.Fatalf("want a refusal naming --group-name and GROUP_NAME, got %v: %s", err, out)
		}
	})
}

// The image must build with the Go version go.mod declares.
func TestDockerfileGoVersion(t *testing.T) {
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var goLine string
	for _, l := range strings.Split(string(mod), "\n") {
		if v, ok := strings.CutPrefix(l, "go "); ok {
			goLine = strings.TrimSpace(v)
		}
	}
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if want := "FROM golang:" + goLine + " AS build"; !strings.Contains(string(df), want) {
		t.Errorf("Dockerfile's builder must be %q (go.mod says go %s)", want, goLine)
	}
	if !strings.Contains(string(df), "distroless/static") || !strings.Contains(string(df), "USER 65532") {
		t.Error("the runtime image must be distroless/static and non-root")
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// certbridge issuer runs its controller manager against a real kube-apiserver:
// it takes the leader Lease, and serves health, readiness and metrics.
func TestIssuerCommand(t *testing.T) {
	bin := certbridgeBinary(t)
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager").Output()
	if err != nil {
		t.Fatal(err)
	}
	env := &envtest.Environment{CRDDirectoryPaths: []string{"charts/certbridge/files/crds", filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds")}, ErrorIfCRDPathMissing: true}
	if _, err := env.Start(); err != nil {
		t.Fatalf("starting kube-apiserver (run with `make test`): %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	admin, err := env.AddUser(envtest.User{Name: "issuer", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := admin.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	metrics, probes := freePort(t), freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "issuer", "--leader-election-namespace=default",
		"--metrics-bind-address="+metrics, "--health-probe-bind-address="+probes, "--max-retry-duration=90s")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+path)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	get := func(url string) (int, string) {
		res, err := http.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	cs, err := kubernetes.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		health, _ := get("http://" + probes + "/healthz")
		ready, _ := get("http://" + probes + "/readyz")
		code, body := get("http://" + metrics + "/metrics")
		_, leaseErr := cs.CoordinationV1().Leases("default").Get(ctx, "certbridge-issuer.certbridge.io", metav1.GetOptions{})
		if health == 200 && ready == 200 && code == 200 && strings.Contains(body, "controller_runtime_") && leaseErr == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz %d, readyz %d, metrics %d, lease %v; logs:\n%s", health, ready, code, leaseErr, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// outsidePointers match references to notes that live outside the
// repository, which users never see: the folder of shared notes and the
// files in it, and their lettered sections. The repository's own words are
// in docs/. The patterns are built from pieces so that this file, which the
// test reads too, does not match them.
var outsidePointers = func() []*regexp.Regexp {
	folder := "sh" + "ared/"
	var out []*regexp.Regexp
	for _, p := range []string{
		// the folder as a path of its own, not an element inside a longer
		// path such as a Go import path
		`(^|[^A-Za-z0-9_./-])(\.{1,2}/)?` + folder,
		"API-" + "REFERENCE",
		"FAIL" + "URES\\.md",
		"STY" + "LE\\.md",
		"E2E-" + "NOTES",
		"\u00a7" + "[A-D]",
	} {
		// (?m): ^ is a line's start also when the whole file is matched
		out = append(out, regexp.MustCompile("(?m)"+p))
	}
	return out
}()

// Every tracked file stands on its own: no comment, test name, doc or
// script points at notes outside the repository.
func TestNoPointersOutsideTheRepository(t *testing.T) {
	out, err := exec.Command("git", "ls-files", "-z").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	files := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if len(files) < 10 {
		t.Fatalf("git ls-files lists %d files; want the repository's", len(files))
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the work tree, not yet committed
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(raw, 0) >= 0 || !slices.ContainsFunc(outsidePointers, func(p *regexp.Regexp) bool { return p.Match(raw) }) {
			continue // binary, or clean: only a file that matches is read line by line
		}
		for i, line := range strings.Split(string(raw), "\n") {
			for _, p := range outsidePointers {
				if m := p.FindString(line); m != "" {
					t.Errorf("%s:%d points outside the repository (%q): %s; say it in the project's own words, or point into docs/",
						f, i+1, strings.TrimSpace(m), strings.TrimSpace(line))
				}
			}
		}
	}
}

// The README's Layout lists every package on a line of its own, and nothing
// that is not one.
func TestReadmeLayoutMatchesGoList(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", "e2e", "./...").Output()
	if err != nil {
		t.Fatal(err)
	}
	const module = "github.com/certbridge/certbridge"
	want := map[string]bool{}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == module {
			want["main.go"] = true
			continue
		}
		want[strings.TrimPrefix(pkg, module+"/")+"/"] = true
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## Layout\n")
	if !ok {
		t.Fatal("README.md has no Layout section")
	}
	_, block, _ := strings.Cut(section, "```\n")
	block, _, _ = strings.Cut(block, "```")
	listed := map[string]bool{}
	for _, line := range strings.Split(block, "\n") {
		if line == "" || strings.HasPrefix(line, " ") {
			continue // a continuation of the line above
		}
		name := strings.Fields(line)[0]
		if listed[name] {
			t.Errorf("README Layout lists %s twice", name)
		}
		listed[name] = true
		if !want[name] {
			t.Errorf("README Layout lists %s, which go list does not", name)
		}
	}
	for name := range want {
		if !listed[name] {
			t.Errorf("README Layout lacks the package %s", name)
		}
	}
}
