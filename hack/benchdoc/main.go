// Command benchdoc keeps the figures the README quotes equal to those make
// bench measured: it copies the block between the markers
//
//	<!-- BEGIN bench headline: written by make bench, copied by make generate -->
//	<!-- END bench headline -->
//
// from BENCHMARKS.md into each Markdown file given that has them. `make
// generate` runs it; `make verify` fails when a copy is stale.
//
//	benchdoc --from BENCHMARKS.md README.md
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
)

const (
	begin = "<!-- BEGIN bench headline"
	end   = "<!-- END bench headline -->"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchdoc:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("benchdoc", flag.ContinueOnError)
	from := fs.String("from", "BENCHMARKS.md", "the file make bench writes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	src, err := os.ReadFile(*from)
	if err != nil {
		return err
	}
	block, err := headline(src)
	if err != nil {
		return fmt.Errorf("%s: %w", *from, err)
	}
	for _, path := range fs.Args() {
		doc, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		updated, err := replace(doc, block)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if !bytes.Equal(doc, updated) {
			if err := os.WriteFile(path, updated, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

var errNoMarkers = errors.New("no bench headline markers (" + begin + " … " + end + ")")

// bounds finds the block: from the start of the begin marker's line to the
// end of the end marker.
func bounds(b []byte) (int, int, error) {
	i := bytes.Index(b, []byte(begin))
	if i < 0 {
		return 0, 0, errNoMarkers
	}
	j := bytes.Index(b[i:], []byte(end))
	if j < 0 {
		return 0, 0, errNoMarkers
	}
	return i, i + j + len(end), nil
}

// headline is the block in src, markers included.
func headline(src []byte) ([]byte, error) {
	i, j, err := bounds(src)
	if err != nil {
		return nil, err
	}
	return src[i:j], nil
}

// replace puts block where doc's markers are.
func replace(doc, block []byte) ([]byte, error) {
	i, j, err := bounds(doc)
	if err != nil {
		return nil, err
	}
	return bytes.Join([][]byte{doc[:i], block, doc[j:]}, nil), nil
}
