// Command image builds certbridge's container images without a container
// engine, and pushes them. `make image` runs `image build` on the binaries it
// has just built with make build's flags; `make image-push` runs `image push`.
//
//	image build --dir DIR --name REPO:TAG --version V --revision SHA --source URL \
//	    --source-date-epoch SECONDS linux/amd64=PATH linux/arm64=PATH
//	image push --dir DIR REGISTRY/REPOSITORY:TAG
//
// build writes DIR/oci (an OCI image layout: one image index naming every
// platform, and an SPDX SBOM per platform), DIR/certbridge-<os>-<arch>.tar (a
// docker-archive per platform, tagged REPO:TAG) and DIR/digest (the index
// digest).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("name a command: build or push")
	}
	switch args[0] {
	case "build":
		return runBuild(args[1:], stdout)
	case "push":
		return runPush(ctx, args[1:], stdout)
	default:
		return fmt.Errorf("unknown command %q: want build or push", args[0])
	}
}

func runBuild(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	var o buildOptions
	fs.StringVar(&o.dir, "dir", "", "output directory")
	fs.StringVar(&o.name, "name", "", "repository:tag the layout and the tarballs name the image")
	fs.StringVar(&o.version, "version", "", "version stamped into the binary (org.opencontainers.image.version)")
	fs.StringVar(&o.revision, "revision", "", "commit the binary is built from (org.opencontainers.image.revision)")
	fs.StringVar(&o.source, "source", "", "repository URL (org.opencontainers.image.source)")
	fs.Int64Var(&o.sourceDateEpoch, "source-date-epoch", -1, "creation time in seconds since 1970, the commit's for a reproducible digest")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for flagName, v := range map[string]string{"--dir": o.dir, "--name": o.name, "--version": o.version, "--revision": o.revision, "--source": o.source} {
		if v == "" {
			return fmt.Errorf("build: %s is required", flagName)
		}
	}
	if o.sourceDateEpoch < 0 {
		return fmt.Errorf("build: --source-date-epoch is required (the commit time: git log -1 --format=%%ct)")
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("build: name at least one binary as os/arch=path, e.g. linux/amd64=bin/image/linux_amd64/certbridge")
	}
	for _, a := range fs.Args() {
		platform, path, ok := strings.Cut(a, "=")
		osName, arch, ok2 := strings.Cut(platform, "/")
		if !ok || !ok2 || osName == "" || arch == "" || path == "" {
			return fmt.Errorf("build: %q is not os/arch=path, e.g. linux/amd64=bin/image/linux_amd64/certbridge", a)
		}
		o.binaries = append(o.binaries, binary{os: osName, arch: arch, path: path})
	}
	res, err := build(o)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	res.print(stdout)
	return nil
}

func runPush(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	dir := fs.String("dir", "", "the directory `image build` wrote")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() != 1 {
		return fmt.Errorf("push: want --dir DIR and one destination, e.g. --dir bin/image registry.example.com/certbridge:v1.2.3")
	}
	ref, digest, err := push(ctx, *dir, fs.Arg(0))
	if err != nil {
		return fmt.Errorf("push: %w", err)
	}
	fmt.Fprintf(stdout, "pushed %s@%s\n", ref, digest)
	fmt.Fprintf(stdout, "install with: helm install certbridge ./charts/certbridge --set image.repository=%s,image.digest=%s\n", ref.Context().Name(), digest)
	return nil
}
