//go:build !linux

package alibaba

import (
	"fmt"
	"os"
)

// tokenFile hands a ServiceAccount token to the SDK's OIDC credentials
// provider, which reads it from a file path: a file only the process's
// user may read (CreateTemp's mode), removed by done. (On Linux it never reaches a disk.)
func tokenFile(token string) (path string, done func(), err error) {
	f, err := os.CreateTemp("", "certbridge-oidc-token-")
	if err != nil {
		return "", nil, fmt.Errorf("creating a file for the ServiceAccount token: %w", err)
	}
	remove := func() { f.Close(); os.Remove(f.Name()) }
	if _, err := f.WriteString(token); err != nil {
		remove()
		return "", nil, fmt.Errorf("writing the ServiceAccount token: %w", err)
	}
	return f.Name(), remove, nil
}
