package hosts

import (
	"strings"
	"testing"
)

func TestMapPathLongestPrefix(t *testing.T) {
	d := &Def{PathSubs: []PathSub{{"/media/", "/mnt/a/"}, {"/media/tv/", "/mnt/tv/"}, {"/data", "/d"}}}
	for _, c := range []struct{ in, want string }{
		{"/media/film.mkv", "/mnt/a/film.mkv"},
		{"/media/tv/ep 1.mkv", "/mnt/tv/ep 1.mkv"},
		{"/data/x.mkv", "/d/x.mkv"},
		{`/media/back\slash.mkv`, `/mnt/a/back\slash.mkv`}, // POSIX hosts: a byte like any other
	} {
		got, ok := d.MapPath(c.in)
		if !ok || got != c.want {
			t.Errorf("MapPath(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
	for _, p := range []string{"/data2/x.mkv", "/other/x.mkv"} {
		if _, ok := d.MapPath(p); ok || d.Covers(p) {
			t.Errorf("%q mapped although no substitution covers it", p)
		}
	}
}

// Issue 13 item 9: on a win10 host only '/' was converted, so a '\' in a
// Linux name became a folder separator there and the host was pointed at
// another file ("a\b.mkv" → folder "a", file "b.mkv"). Such names are
// refused for that host, with the reason, and never mapped.
func TestMapPathWindowsRefusesUnrepresentableNames(t *testing.T) {
	d := &Def{OS: "win10", PathSubs: []PathSub{{"/mnt/media/", `M:\media\`}}}
	good := map[string]string{
		"/mnt/media/film.mkv":              `M:\media\film.mkv`,
		"/mnt/media/tv/Show (2020)/e1.mkv": `M:\media\tv\Show (2020)\e1.mkv`,
		"/mnt/media/café 日本 %PATH%.mkv":    `M:\media\café 日本 %PATH%.mkv`,
		"/mnt/media/console.mkv":           `M:\media\console.mkv`,
		"/mnt/media/.hidden.clustertx.mkv": `M:\media\.hidden.clustertx.mkv`,
	}
	for in, want := range good {
		got, ok := d.MapPath(in)
		if !ok || got != want {
			t.Errorf("MapPath(%q) = %q, %v; want %q", in, got, ok, want)
		}
		if why := d.PathProblem(in); why != "" {
			t.Errorf("PathProblem(%q) = %q", in, why)
		}
	}
	bad := map[string]string{
		`/mnt/media/a\b.mkv`:          "folder separator",
		`/mnt/media/dir\x/film.mkv`:   "folder separator",
		"/mnt/media/film: part 1.mkv": "alternate data stream",
		"/mnt/media/what?.mkv":        "cannot contain",
		"/mnt/media/a|b.mkv":          "cannot contain",
		"/mnt/media/line\nbreak.mkv":  "cannot contain",
		"/mnt/media/dots.../x.mkv":    "ends in a dot",
		"/mnt/media/film.mkv ":        "ends in a dot or a space",
		"/mnt/media/nul.mkv":          "device name NUL",
		"/mnt/media/Com3.part.mkv":    "device name COM3",
	}
	for in, want := range bad {
		if got, ok := d.MapPath(in); ok {
			t.Errorf("MapPath(%q) = %q, mapped; want refused", in, got)
		}
		if !d.Covers(in) {
			t.Errorf("Covers(%q) = false", in)
		}
		why := d.PathProblem(in)
		if !strings.Contains(why, want) || !strings.Contains(why, "win10") {
			t.Errorf("PathProblem(%q) = %q, want it to mention %q", in, why, want)
		}
	}
	// The substitution's own Windows destination may hold backslashes; only
	// the Linux part below it is checked. Outside every substitution there
	// is no name problem, just no mapping.
	if why := d.PathProblem(`/elsewhere/a\b.mkv`); why != "" {
		t.Errorf("uncovered path: PathProblem = %q", why)
	}
	linux := &Def{OS: "linux", PathSubs: d.PathSubs}
	if why := linux.PathProblem(`/mnt/media/a\b.mkv`); why != "" {
		t.Errorf("linux host: PathProblem = %q", why)
	}
}
