package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseValues(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    []value
		wantErr string
	}{
		{
			name: "leaves in file order, nested paths, literal defaults",
			src:  "# Replicas.\nreplicas: 2\nwebhook:\n  # Its port.\n  port: 8443\n  # Extra args.\n  extraArgs: []\n  # Pod labels,\n  # on two lines.\n  labels: {}\n  # Off.\n  name: \"\"\n",
			want: []value{
				{Path: "replicas", Default: "2", Description: "Replicas."},
				{Path: "webhook.port", Default: "8443", Description: "Its port."},
				{Path: "webhook.extraArgs", Default: "[]", Description: "Extra args."},
				{Path: "webhook.labels", Default: "{}", Description: "Pod labels, on two lines."},
				{Path: "webhook.name", Default: `""`, Description: "Off."},
			},
		},
		{
			name: "a header paragraph above a value is not its description",
			src:  "# The chart's values.\n#\n# About them.\n\n# The group.\ngroupName: a.b\n",
			want: []value{{Path: "groupName", Default: "a.b", Description: "The group."}},
		},
		{
			name: "a list with items is shown in flow style",
			src:  "# Args.\nargs:\n  - --v=2\n  - --x\n",
			want: []value{{Path: "args", Default: "[--v=2, --x]", Description: "Args."}},
		},
		{
			name:    "every value without a comment is named",
			src:     "# Documented.\na: 1\nb: 2\nc:\n  # Header of d, which is not a leaf.\n  d:\n    e: true\n",
			wantErr: "values without a comment above them: b, c.d.e",
		},
		{
			name:    "a list at the top is refused",
			src:     "- a\n",
			wantErr: "not a map of values",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseValues([]byte(tt.src))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("value %d: got %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestDescribeSchema(t *testing.T) {
	schema := `{
  "type": "object",
  "properties": {
    "replicas": {"type": "integer", "minimum": 1, "description": "old"},
    "webhook": {"type": "object", "properties": {"name": {"type": "string", "pattern": "^<[a-z]+>$"}}}
  }
}`
	values := []value{
		{Path: "replicas", Description: "Replicas."},
		{Path: "webhook.name", Description: "Its <name>."},
	}
	got, err := describeSchema([]byte(schema), values)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "type": "object",
  "properties": {
    "replicas": {
      "type": "integer",
      "minimum": 1,
      "description": "Replicas."
    },
    "webhook": {
      "type": "object",
      "properties": {
        "name": {
          "type": "string",
          "description": "Its <name>.",
          "pattern": "^<[a-z]+>$"
        }
      }
    }
  }
}
`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}

	_, err = describeSchema([]byte(schema), append(values, value{Path: "webhook.port"}, value{Path: "replicas.x"}))
	if err == nil || err.Error() != "no property for the values webhook.port, replicas.x" {
		t.Errorf("error %v, want both values without a property named", err)
	}
}

func TestReplaceTable(t *testing.T) {
	values := []value{{Path: "a", Default: `""`, Description: "One | two."}}
	doc := "# Config\n\n" + tableStart + "| stale |\n" + tableEnd + "\n## Next\n"
	got, err := replaceTable([]byte(doc), values)
	if err != nil {
		t.Fatal(err)
	}
	want := "# Config\n\n" + tableStart + "| value | default | meaning |\n|---|---|---|\n| `a` | `\"\"` | One \\| two. |\n" + tableEnd + "\n## Next\n"
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if _, err := replaceTable([]byte("# Config\n"+tableStart), values); err == nil || !strings.Contains(err.Error(), "end of chart values") {
		t.Errorf("a missing end marker: error %v", err)
	}
}

// The chart's files are what chartdoc makes of its values.yaml (make verify
// checks it too, after make generate; this says which value drifted).
func TestChartIsCurrent(t *testing.T) {
	root := filepath.Join("..", "..")
	src, err := os.ReadFile(filepath.Join(root, "charts", "certbridge", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	values, err := parseValues(src)
	if err != nil {
		t.Fatal(err)
	}
	for path, update := range map[string]func([]byte) ([]byte, error){
		filepath.Join(root, "charts", "certbridge", "values.schema.json"): func(b []byte) ([]byte, error) { return describeSchema(b, values) },
		filepath.Join(root, "docs", "configuration.md"):                   func(b []byte) ([]byte, error) { return replaceTable(b, values) },
	} {
		old, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		updated, err := update(old)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if string(updated) != string(old) {
			t.Errorf("%s is stale: run make generate", path)
		}
	}
}
