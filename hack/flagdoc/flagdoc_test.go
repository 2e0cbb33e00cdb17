package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/certbridge/certbridge/internal/cli"
)

// Every command's flags are in the docs: a command without its markers is
// an error, not a table silently left out.
func TestEveryCommandHasItsTable(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range cli.Reference() {
		if !strings.Contains(string(doc), beginMarker(ref.Command)) {
			t.Errorf("docs/configuration.md has no flags table for %s", ref.Command)
		}
	}
}

func TestTableIsRewrittenFromTheFlags(t *testing.T) {
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	fs.StringP("namespace", "n", "", "namespace of a | namespaced thing")
	fs.Int("count", 8, "how many")
	doc := []byte("before\n" + beginMarker("certbridge x") + "\n| stale |\n" + endMarker + "\nafter\n")
	got, err := replace(doc, "certbridge x", table(fs))
	if err != nil {
		t.Fatal(err)
	}
	want := "before\n" + beginMarker("certbridge x") + "\n| flag | default | meaning |\n|---|---|---|\n" +
		"| `-n`, `--namespace` |  | Namespace of a \\| namespaced thing |\n| `--count` | `8` | How many |\n" + endMarker + "\nafter\n"
	if string(got) != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	if _, err := replace([]byte("no markers"), "certbridge x", ""); err == nil {
		t.Error("a document without the command's markers was accepted")
	}
}
