package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// push copies the image index that `image build` wrote to dest, with every
// platform image and SBOM in it, using the credentials docker login and
// crane auth login store. A registry with the OCI referrers API lists each
// SBOM as its image's referrer; for one without, go-containerregistry keeps
// the referrers tag (sha256-<digest>) that the OCI distribution spec falls
// back to.
func push(ctx context.Context, dir, dest string) (name.Tag, v1.Hash, error) {
	ref, err := name.NewTag(dest, name.StrictValidation)
	if err != nil {
		return name.Tag{}, v1.Hash{}, fmt.Errorf("IMAGE=%q: %w (want registry/repository:tag)", dest, err)
	}
	path := filepath.Join(dir, "oci")
	l, err := layout.ImageIndexFromPath(path)
	if err != nil {
		return name.Tag{}, v1.Hash{}, fmt.Errorf("no image in %s (run make image first): %w", path, err)
	}
	m, err := l.IndexManifest()
	if err != nil {
		return name.Tag{}, v1.Hash{}, err
	}
	if len(m.Manifests) != 1 || !m.Manifests[0].MediaType.IsIndex() {
		return name.Tag{}, v1.Hash{}, fmt.Errorf("%s holds %d entries, not the one image index make image writes: run make image again", path, len(m.Manifests))
	}
	idx, err := l.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		return name.Tag{}, v1.Hash{}, err
	}
	if err := remote.WriteIndex(ref, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return name.Tag{}, v1.Hash{}, fmt.Errorf("pushing to %s (log in with docker login or crane auth login %s): %w", ref, ref.RegistryStr(), err)
	}
	return ref, m.Manifests[0].Digest, nil
}
