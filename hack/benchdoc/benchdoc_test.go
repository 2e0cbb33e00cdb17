package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const marked = begin + ": written by make bench, copied by make generate -->\n- %s\n" + end

func TestCopiesTheHeadline(t *testing.T) {
	dir := t.TempDir()
	bench := filepath.Join(dir, "BENCHMARKS.md")
	readme := filepath.Join(dir, "README.md")
	write := func(path, content string) {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(bench, "# Benchmarks\n\n"+strings.Replace(marked, "%s", "0.37 calls per challenge", 1)+"\n\nmore\n")
	write(readme, "intro\n"+strings.Replace(marked, "%s", "0.35 calls per challenge", 1)+"\noutro\n")
	if err := run([]string{"--from", bench, readme}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(readme)
	if want := "intro\n" + strings.Replace(marked, "%s", "0.37 calls per challenge", 1) + "\noutro\n"; string(got) != want {
		t.Errorf("README after benchdoc:\n%s\nwant:\n%s", got, want)
	}
}

func TestRefusesAFileWithoutMarkers(t *testing.T) {
	dir := t.TempDir()
	bench := filepath.Join(dir, "BENCHMARKS.md")
	readme := filepath.Join(dir, "README.md")
	_ = os.WriteFile(bench, []byte(strings.Replace(marked, "%s", "x", 1)), 0o644)
	_ = os.WriteFile(readme, []byte("no markers"), 0o644)
	if err := run([]string{"--from", bench, readme}); !errors.Is(err, errNoMarkers) {
		t.Errorf("got %v, want the missing markers named", err)
	}
}
