package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
