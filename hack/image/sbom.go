package main

import (
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// The subset of SPDX 2.3 (JSON) that describes a Go binary: the main module,
// the Go standard library and every module linked in, as the binary's own
// build information records them, the way `go version -m` prints them. It is
// read from the binary, not from go.mod, so it lists what was linked.
type spdxDoc struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	SPDXID                string            `json:"SPDXID"`
	Name                  string            `json:"name"`
	VersionInfo           string            `json:"versionInfo,omitempty"`
	PackageFileName       string            `json:"packageFileName,omitempty"`
	DownloadLocation      string            `json:"downloadLocation"`
	FilesAnalyzed         bool              `json:"filesAnalyzed"`
	Checksums             []spdxChecksum    `json:"checksums,omitempty"`
	PrimaryPackagePurpose string            `json:"primaryPackagePurpose,omitempty"`
	ExternalRefs          []spdxExternalRef `json:"externalRefs,omitempty"`
	Comment               string            `json:"comment,omitempty"`
}

type spdxChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	SPDXElementID      string `json:"spdxElementId"`
	RelationshipType   string `json:"relationshipType"`
	RelatedSPDXElement string `json:"relatedSpdxElement"`
}

func purl(path, version string) spdxExternalRef {
	return spdxExternalRef{
		ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl",
		ReferenceLocator: "pkg:golang/" + path + "@" + version + "?type=module",
	}
}

// spdxDocument describes the binary at path, whose SHA-256 is sum. Every
// field comes from the binary and the build options, and the time is the
// commit's, so the same commit gives the same document (and digest).
func spdxDocument(path, sum, platform string, created time.Time, o buildOptions) ([]byte, error) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the build information of %s (build it with go build): %w", path, err)
	}
	const rootID, stdlibID = "SPDXRef-Package-main-module", "SPDXRef-Package-stdlib"
	var settings []string
	for _, s := range bi.Settings {
		settings = append(settings, s.Key+"="+s.Value)
	}
	doc := spdxDoc{
		SPDXVersion: "SPDX-2.3",
		DataLicense: "CC0-1.0",
		SPDXID:      "SPDXRef-DOCUMENT",
		Name:        fmt.Sprintf("certbridge %s %s", o.version, platform),
		// Unique per binary, as SPDX asks, and the same for the same binary.
		DocumentNamespace: fmt.Sprintf("%s/spdx/%s/%s/sha256-%s", strings.TrimSuffix(o.source, "/"), o.version, platform, sum),
		CreationInfo: spdxCreationInfo{
			Created:  created.Format(time.RFC3339),
			Creators: []string{"Tool: certbridge make image (hack/image)"},
		},
		Packages: []spdxPackage{{
			SPDXID:                rootID,
			Name:                  bi.Main.Path,
			VersionInfo:           o.version,
			PackageFileName:       entrypoint,
			DownloadLocation:      "git+" + o.source + "@" + o.revision,
			Checksums:             []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: sum}},
			PrimaryPackagePurpose: "APPLICATION",
			ExternalRefs:          []spdxExternalRef{purl(bi.Main.Path, o.version)},
			Comment:               "built by " + bi.GoVersion + " with " + strings.Join(settings, " "),
		}, {
			SPDXID:           stdlibID,
			Name:             "stdlib",
			VersionInfo:      bi.GoVersion,
			DownloadLocation: "NOASSERTION",
			// Vulnerability scanners look the Go release up by this name.
			ExternalRefs: []spdxExternalRef{{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: "pkg:golang/stdlib@" + bi.GoVersion}},
		}},
		Relationships: []spdxRelationship{
			{SPDXElementID: "SPDXRef-DOCUMENT", RelationshipType: "DESCRIBES", RelatedSPDXElement: rootID},
			{SPDXElementID: rootID, RelationshipType: "DEPENDS_ON", RelatedSPDXElement: stdlibID},
		},
	}
	for i, m := range bi.Deps {
		p := spdxPackage{
			SPDXID: fmt.Sprintf("SPDXRef-Package-module-%d", i+1), Name: m.Path, VersionInfo: m.Version,
			DownloadLocation: "NOASSERTION", ExternalRefs: []spdxExternalRef{purl(m.Path, m.Version)},
		}
		if r := m.Replace; r != nil {
			p.VersionInfo = r.Version
			p.ExternalRefs = []spdxExternalRef{purl(r.Path, r.Version)}
			p.Comment = "replaced by " + strings.TrimSpace(r.Path+" "+r.Version)
		}
		doc.Packages = append(doc.Packages, p)
		doc.Relationships = append(doc.Relationships, spdxRelationship{SPDXElementID: rootID, RelationshipType: "DEPENDS_ON", RelatedSPDXElement: p.SPDXID})
	}
	return json.MarshalIndent(doc, "", "  ")
}
