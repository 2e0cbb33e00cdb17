// Command pause is the local node's sandbox image: it holds a pod's
// namespaces and waits for SIGTERM or SIGINT. No registry is reachable to
// pull registry.k8s.io/pause from.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
