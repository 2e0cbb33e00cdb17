package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// describeSchema sets the description of each value's property in a JSON
// schema to the value's comment, keeping every other keyword and the order
// of keys as they are. A value the schema has no property for is an error.
func describeSchema(schema []byte, values []value) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(schema))
	dec.UseNumber()
	root, err := decodeOrdered(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the schema")
	}
	var missing []string
	for _, v := range values {
		prop := lookupProperty(root, strings.Split(v.Path, "."))
		if prop == nil {
			missing = append(missing, v.Path)
			continue
		}
		prop.set("description", v.Description)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("no property for the values %s", strings.Join(missing, ", "))
	}
	var buf bytes.Buffer
	if err := encodeOrdered(&buf, root); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

func lookupProperty(schema any, path []string) *object {
	for _, name := range path {
		o, ok := schema.(*object)
		if !ok {
			return nil
		}
		props, ok := o.get("properties").(*object)
		if !ok {
			return nil
		}
		schema = props.get(name)
	}
	o, _ := schema.(*object)
	return o
}

// object is a JSON object that remembers the order of its keys.
type object struct {
	keys []string
	vals map[string]any
}

func (o *object) get(k string) any { return o.vals[k] }

// set replaces a key's value in place, or adds the key after "type" (where
// the schema writes descriptions), or last.
func (o *object) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		at := len(o.keys)
		for i, key := range o.keys {
			if key == "type" {
				at = i + 1
			}
		}
		o.keys = append(o.keys[:at], append([]string{k}, o.keys[at:]...)...)
	}
	o.vals[k] = v
}

func decodeOrdered(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		o := &object{vals: map[string]any{}}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key := k.(string)
			v, err := decodeOrdered(dec)
			if err != nil {
				return nil, err
			}
			if _, dup := o.vals[key]; dup {
				return nil, fmt.Errorf("key %q twice in one object", key)
			}
			o.keys = append(o.keys, key)
			o.vals[key] = v
		}
		_, err := dec.Token()
		return o, err
	case json.Delim('['):
		var list []any
		for dec.More() {
			v, err := decodeOrdered(dec)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		_, err := dec.Token()
		return list, err
	}
	return tok, nil
}

func encodeOrdered(w *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case *object:
		w.WriteByte('{')
		for i, k := range v.keys {
			if i > 0 {
				w.WriteByte(',')
			}
			if err := encodeOrdered(w, k); err != nil {
				return err
			}
			w.WriteByte(':')
			if err := encodeOrdered(w, v.vals[k]); err != nil {
				return err
			}
		}
		w.WriteByte('}')
		return nil
	case []any:
		w.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				w.WriteByte(',')
			}
			if err := encodeOrdered(w, e); err != nil {
				return err
			}
		}
		w.WriteByte(']')
		return nil
	}
	// Scalars as encoding/json writes them, but "<" and ">" as they are:
	// descriptions name <release>.
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	w.Truncate(w.Len() - 1) // Encode's newline
	return nil
}
