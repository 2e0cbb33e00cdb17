package main

import (
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// A value is one leaf of values.yaml: a scalar, a list, or an empty map.
type value struct {
	Path        string // dotted, e.g. webhook.podDisruptionBudget.enabled
	Default     string // as values.yaml writes it, in flow style: "", [], 2m
	Description string // the comment above it, lines joined
}

// parseValues lists values.yaml's leaves in file order. Every leaf must have
// a comment: an undocumented value is an error that names it.
func parseValues(src []byte) ([]value, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("not a map of values")
	}
	var out []value
	var missing []string
	var walk func(prefix string, m *yaml.Node)
	walk = func(prefix string, m *yaml.Node) {
		for i := 0; i+1 < len(m.Content); i += 2 {
			key, val := m.Content[i], m.Content[i+1]
			path := strings.TrimPrefix(prefix+"."+key.Value, ".")
			if val.Kind == yaml.MappingNode && len(val.Content) > 0 {
				walk(path, val)
				continue
			}
			v := value{Path: path, Default: literal(val), Description: strings.Join(commentLines(key.HeadComment), " ")}
			if v.Description == "" {
				missing = append(missing, path)
			}
			out = append(out, v)
		}
	}
	walk("", doc.Content[0])
	if len(missing) > 0 {
		return nil, fmt.Errorf("values without a comment above them: %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// commentLines returns the last paragraph of a head comment, without the
// "#": a paragraph above it (a header for the values that follow) is not
// this value's.
func commentLines(head string) []string {
	paragraphs := strings.Split(strings.TrimSpace(head), "\n\n")
	var out []string
	for _, line := range strings.Split(paragraphs[len(paragraphs)-1], "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
		if line != "" {
			out = append(out, line)
		}
	}
	return out
}

// literal renders a leaf as values.yaml writes it, in flow style.
func literal(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str" && n.Value == "":
		return `""`
	case n.Kind == yaml.ScalarNode:
		return n.Value
	case n.Kind == yaml.SequenceNode && len(n.Content) == 0:
		return "[]"
	case n.Kind == yaml.MappingNode && len(n.Content) == 0:
		return "{}"
	}
	flow := *n
	flow.Style = yaml.FlowStyle
	b, err := yaml.Marshal(&flow)
	if err != nil {
		return n.Value
	}
	return strings.TrimSpace(string(b))
}
