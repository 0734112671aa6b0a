package bench

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"clustertx/cluster"
	"clustertx/config"
	"clustertx/internal/testenv"
)

// Split-mode benchmark (issue 7): one long file, real encodes through the
// real manager on real sshd hosts on loopback (mounted hosts: they read
// their segment straight from the shared file). Each encode is pinned to
// one thread (-threads 1), so that a host is one CPU's worth of work and
// three hosts can be compared with one on a small machine.
const (
	splitRounds  = 3
	splitSeconds = 120
	splitYAML    = `
profiles:
  film:
    output_options: -c:v libx264 -preset veryfast -crf 26 -threads 1 -c:a aac -b:a 128k -c:s copy
    extension: .mkv
    split:
      min_duration: 1m
      segment: 15s
rules:
  default:
    profile: film
`
)

// runFilm runs one copy of the film and returns the wall time and, when
// split, where the split-mode overhead went.
func runFilm(b *testing.B, l *ovLab, cfg *config.Config, src string, split bool) (time.Duration, *cluster.SplitStats) {
	rep, wall := runCluster(b, l.known, cfg, []string{src}, func(o *cluster.Options) { o.NoSplit = !split })
	f := rep.Files[0]
	if split != (f.Split != nil) {
		b.Fatalf("split=%v but the result says %+v", split, f.Split)
	}
	return wall, f.Split
}

func BenchmarkSplit(b *testing.B) {
	testenv.NeedFFmpeg(b)
	l := newOvLab(b, 3)
	pristine := filepath.Join(l.dir, "film.mkv")
	if err := testenv.Generate(pristine, testenv.Clip{Seconds: splitSeconds, Width: 640, Height: 360, GOP: 50,
		Preset: "veryfast", AudioLangs: []string{"eng"}, SubLangs: []string{"eng"}}); err != nil {
		b.Fatal(err)
	}
	one, three := l.configWith(b, 1, splitYAML, "split-1host.yml"), l.configWith(b, 3, splitYAML, "split-3hosts.yml")
	var whole1, split1, split3, overhead3, overhead1 []float64
	for round := 0; round < splitRounds; round++ {
		dir := filepath.Join(l.media, fmt.Sprintf("r%d", round))
		run := func(cfg *config.Config, split bool) (time.Duration, *cluster.SplitStats) {
			name := fmt.Sprintf("%v-%d", split, len(cfg.Clusters[0].Hosts))
			src := copyClips(b, []string{pristine}, filepath.Join(dir, name))[0]
			return runFilm(b, l, cfg, src, split)
		}
		w, _ := run(one, false)
		whole1 = append(whole1, w.Seconds())
		w, st := run(one, true)
		split1 = append(split1, w.Seconds())
		overhead1 = append(overhead1, overheadOf(st).Seconds()/w.Seconds())
		w, st = run(three, true)
		split3 = append(split3, w.Seconds())
		overhead3 = append(overhead3, overheadOf(st).Seconds()/w.Seconds())
		b.Logf("round %d: 1 host whole %.1fs, 1 host split %.1fs, 3 hosts split %.1fs (%d segments on %d hosts; index %s, extracts %s, rest %s beside the segments, waited %s for it, join %s, verify %s)",
			round+1, whole1[round], split1[round], split3[round], st.Segments, st.Hosts,
			st.Index.Round(time.Millisecond), st.Extract.Round(time.Millisecond), st.Rest.Round(time.Millisecond),
			st.RestWait.Round(time.Millisecond), st.Join.Round(time.Millisecond), st.Verify.Round(time.Millisecond))
	}
	b.ReportMetric(median(whole1), "1host-whole-s")
	b.ReportMetric(median(split1), "1host-split-s")
	b.ReportMetric(median(split3), "3hosts-split-s")
	b.ReportMetric(median(ratios(split3, whole1)), "3split/1whole")
	b.ReportMetric(median(ratios(split1, whole1)), "1split/1whole")
	b.ReportMetric(100*median(overhead3), "overhead-%-3hosts")
	b.ReportMetric(100*median(overhead1), "overhead-%-1host")
}

// overheadOf is the split-mode time on the critical path: reading the
// keyframes, cutting extracts, waiting for the rest, joining, verifying.
// The rest's own encode runs beside the segments and counts only through
// the wait.
func overheadOf(s *cluster.SplitStats) time.Duration {
	return s.Index + s.Extract + s.RestWait + s.Join + s.Verify
}
