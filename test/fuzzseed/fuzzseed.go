// Package fuzzseed keeps a fuzz target's f.Add seeds and its committed seed
// corpus (testdata/fuzz/<FuzzName>/) the same: every seed a target adds must
// be there as a file, so the corpus in the repository is the one the target
// starts from, and a crasher found later sits beside the seeds it grew from.
//
// Add checks that each seed's file exists and fails the target otherwise;
// run the target once with CERTBRIDGE_FUZZ_SEEDS=write to write the missing
// files, then commit them.
package fuzzseed

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// WriteEnv is the variable that makes Add write missing seed files.
const WriteEnv = "CERTBRIDGE_FUZZ_SEEDS"

// Add adds one seed to f and checks that it is committed under
// testdata/fuzz/<f.Name()>/, in the file format go test reads.
func Add(f *testing.F, vals ...any) {
	f.Helper()
	f.Add(vals...)
	data, err := Marshal(vals...)
	if err != nil {
		f.Fatal(err)
	}
	sum := sha256.Sum256(data)
	path := filepath.Join("testdata", "fuzz", f.Name(), "seed-"+hex.EncodeToString(sum[:8]))
	have, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(have, data):
		return
	case os.Getenv(WriteEnv) == "write":
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			f.Fatal(err)
		}
	default:
		f.Errorf("seed %s is not committed: run this target once with %s=write and commit the file", path, WriteEnv)
	}
}

// Marshal encodes values as a "go test fuzz v1" corpus file. It takes the
// types certbridge's targets use.
func Marshal(vals ...any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("go test fuzz v1\n")
	for _, v := range vals {
		switch t := v.(type) {
		case string:
			fmt.Fprintf(&b, "string(%q)\n", t)
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", t)
		case byte:
			fmt.Fprintf(&b, "byte(%q)\n", t)
		case bool, int, int64, uint16, uint32, uint64:
			fmt.Fprintf(&b, "%T(%v)\n", t, t)
		default:
			return nil, fmt.Errorf("fuzzseed: no encoding for a seed of type %T", v)
		}
	}
	return b.Bytes(), nil
}
