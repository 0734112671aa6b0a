package app

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Version and Commit are set at link time by `make dist`
// (-ldflags "-X clustertx/app.Version=v1.2.3 -X clustertx/app.Commit=abc123");
// otherwise they come from the build info Go records (a `go install
// clustertx@v1.2.3` has its module version, a build in a git checkout its
// revision).
var (
	Version string
	Commit  string
)

// versionLine is what --version prints.
func versionLine() string {
	version, commit, dirty := Version, Commit, false
	goVersion := runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if commit == "" {
					commit = s.Value
				}
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if version == "" {
		version = "devel"
	}
	if commit == "" {
		commit = "unknown"
	} else if len(commit) > 12 {
		commit = commit[:12]
	}
	if dirty {
		commit += "-dirty"
	}
	return fmt.Sprintf("clustertx %s (commit %s, %s, %s/%s)", version, commit, goVersion, runtime.GOOS, runtime.GOARCH)
}

func printVersion(w io.Writer) { fmt.Fprintln(w, versionLine()) }
