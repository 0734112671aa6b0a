package report

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"clustertx/cluster"
	"clustertx/media"
)

// fmtDur renders a wall or media duration for people: tenths under 10 s,
// whole seconds above ("2m10s").
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

func fmtSeconds(s float64) string { return fmtDur(time.Duration(s * float64(time.Second))) }

func fmtBytes(n int64) string { return media.FormatBytes(n) }

// savingPercent is how much smaller out is than src, in percent; ok is
// false when either size is unknown.
func savingPercent(src, out int64) (float64, bool) {
	if src <= 0 || out <= 0 {
		return 0, false
	}
	return 100 * float64(src-out) / float64(src), true
}

// encoded reports whether an outcome means an encode ran to the end
// (the output was kept or thrown away by the threshold).
func encoded(o cluster.Outcome) bool { return o == cluster.Done || o == cluster.Kept }

// speedOf is media seconds per wall second of one file's encode.
func speedOf(f *cluster.FileResult) (float64, bool) {
	if !encoded(f.Outcome) || f.Elapsed <= 0 || f.Duration <= 0 {
		return 0, false
	}
	return f.Duration / f.Elapsed.Seconds(), true
}

// outcomeText is the OUTCOME column: done / kept original / skipped by
// rule / failed: reason / not run: reason / planned.
func outcomeText(f *cluster.FileResult) string {
	switch f.Outcome {
	case cluster.Done:
		if strings.HasPrefix(f.Reason, "finished an earlier run") { // from the journal, no encode
			return join("done", f.Reason)
		}
		return "done"
	case cluster.Kept:
		if strings.HasPrefix(f.Reason, "kept original") {
			return f.Reason
		}
		return join("kept original", f.Reason)
	case cluster.Skipped:
		if strings.HasPrefix(f.Reason, "skipped") {
			return f.Reason
		}
		return join("skipped", f.Reason)
	case cluster.Failed, cluster.NotRun:
		return join(string(f.Outcome), f.Reason)
	case cluster.Changed:
		return join("left for the next run", f.Reason)
	default:
		return join(string(f.Outcome), f.Reason)
	}
}

func join(a, b string) string {
	if b == "" {
		return a
	}
	return a + ": " + b
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func base(p string) string {
	if p == "" {
		return ""
	}
	return filepath.Base(p)
}

func pct(f float64) string { return fmt.Sprintf("%.0f%%", f) }
