// Package version is the one version of the wharf binary: what `wharf
// version` prints, what a hub node reports in GET /v1/status and what an
// agent reports in its Hello and inventory. The Makefile stamps it at link
// time; a build without stamps (go build, go install MODULE@VERSION) falls
// back to what the Go toolchain recorded in the binary.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Link-time stamps (the Makefile's LDFLAGS):
//
//	-X github.com/wharf-platform/wharf/internal/version.version=v1.2.3
//	-X github.com/wharf-platform/wharf/internal/version.commit=0123abcd
//
// They are package variables because the linker can set nothing else;
// nothing writes them at run time.
var (
	version string
	commit  string
)

// Dev is the version of a build that carries none: neither a stamp nor a
// module version (go build in a checkout).
const Dev = "dev"

// Info describes this build.
type Info struct {
	// Version is the release ("v1.2.3", or git describe's
	// "v1.2.3-4-gabcdef0-dirty"), or Dev.
	Version string `json:"version"`
	// Commit is the VCS revision the binary was built from ("" when
	// unknown), and Modified whether the tree had uncommitted changes.
	Commit   string `json:"commit,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	// GoVersion is the toolchain that built it.
	GoVersion string `json:"go_version"`
}

// Get returns this binary's version.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(version, commit, bi)
}

// String is the version with its commit: "v1.2.3 (0123abcd, go1.26.8)".
func (i Info) String() string {
	c := i.Commit
	if c == "" {
		c = "unknown commit"
	} else if i.Modified {
		c += ", modified"
	}
	return fmt.Sprintf("%s (%s, %s)", i.Version, c, i.GoVersion)
}

// shortCommit is how many hex digits of a revision are shown.
const shortCommit = 12

// resolve picks each field from the link-time stamp when there is one,
// else from the build info (nil when the binary carries none).
func resolve(stampVersion, stampCommit string, bi *debug.BuildInfo) Info {
	info := Info{Version: stampVersion, Commit: stampCommit, GoVersion: runtime.Version()}
	if bi == nil {
		if info.Version == "" {
			info.Version = Dev
		}
		return info
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	if info.Version == "" {
		// go install MODULE@v1.2.3 records v1.2.3; a build in a checkout
		// records "(devel)", or since Go 1.24 a pseudo-version from VCS.
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			info.Version = v
		} else {
			info.Version = Dev
		}
	}
	if info.Commit == "" {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Commit = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	if len(info.Commit) > shortCommit {
		info.Commit = info.Commit[:shortCommit]
	}
	return info
}
