// Package version holds the version stamped into the binary at build time.
package version

import (
	"fmt"
	"runtime"
)

// Version is set by the linker: make build passes
// -X github.com/certbridge/certbridge/internal/version.Version=<git describe>.
var Version = ""

// String is what `certbridge version` prints.
func String() string {
	v := Version
	if v == "" {
		v = "unstamped (built without make build)"
	}
	return fmt.Sprintf("certbridge %s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
