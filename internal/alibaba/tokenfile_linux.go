package alibaba

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// tokenFile hands a ServiceAccount token to the SDK's OIDC credentials
// provider, which reads it from a file path: an anonymous in-memory file
// (memfd), opened through /proc/self/fd, so the token never reaches a
// disk or a directory another process could list. done closes it.
func tokenFile(token string) (path string, done func(), err error) {
	fd, err := unix.MemfdCreate("certbridge-oidc-token", unix.MFD_CLOEXEC)
	if err != nil {
		return "", nil, fmt.Errorf("creating an in-memory file for the ServiceAccount token: %w", err)
	}
	f := os.NewFile(uintptr(fd), "certbridge-oidc-token")
	if _, err := f.WriteString(token); err != nil {
		f.Close()
		return "", nil, fmt.Errorf("writing the ServiceAccount token to an in-memory file: %w", err)
	}
	return fmt.Sprintf("/proc/self/fd/%d", fd), func() { f.Close() }, nil
}
