package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"clustertx/cluster"
	"clustertx/hosts"
	"clustertx/hosts/hoststest"
	"clustertx/internal/testenv"
)

// Slow-dotfiles benchmark (issue 14): the per-job overhead benchmark's
// serial setup (1 mounted host × 1 slot, 30 tiny clips) on two kinds of
// host, a normal one and one whose ~/.bashrc sleeps 0.3 s (conda, pyenv or
// nvm init: Debian's bash reads it for every SSH command), each with the
// executor (the default) and with one SSH session per command.
const (
	ssRounds    = 3
	ssBashrc    = 300 * time.Millisecond
	ssTargetMS  = 50.0
	ssHostKinds = 2 // normal, slow dotfiles
	ssModeKinds = 2 // executor, per-command sessions
	// Clips per whole cluster.Run (the paired measurement uses ovClips).
	ssClusterClips = 10
)

// BenchmarkPerJobShellStartup measures, for each host kind (normal, slow
// dotfiles) and each mode (executor, per-command sessions), what a job
// costs beyond its bare encode, two ways:
//
//   - paired: for every clip, the bare ffmpeg run and the same argv run by
//     Exec over each of the four transports, back to back in a rotating
//     order, so that load from other processes hits all five alike; the
//     figure is the median over clips and rounds of (Exec − bare). The
//     transports are connected and have run one command first, as in a
//     run after its host checks; that first command's time is reported
//     apart (the executor's start, or one command's shell start-up);
//   - whole runs: cluster.Run of ssClusterClips clips on each variant,
//     (wall − Σ bare) ÷ jobs with start-up included, and how many times
//     the slow host's ~/.bashrc was read per run.
//
// The shell start-up share is the slow host's figure minus the normal
// host's in the same mode; target ≤ 50 ms per job with the executor.
func BenchmarkPerJobShellStartup(b *testing.B) {
	testenv.NeedFFmpeg(b)
	labs := []*ovLab{
		newOvLabWith(b, hoststest.Options{}),
		newOvLabWith(b, hoststest.Options{SlowBashrc: ssBashrc}),
	}
	kinds := []string{"normal host", fmt.Sprintf("~/.bashrc %v", ssBashrc)}
	modes := []string{"executor", "per-command"}
	pristine := ovPristine(b, b.TempDir())
	sshOpts := func(l *ovLab, m int) hosts.SSHOptions {
		return hosts.SSHOptions{KnownHostsFiles: []string{l.known}, SSHConfigFile: "none",
			ConnectTimeout: 10 * time.Second, PerCommandSessions: m == 1}
	}
	defs := make([]*hosts.Def, len(labs))
	for k, l := range labs {
		d := l.servers[0].Def(fmt.Sprintf("host%d", k))
		d.Type = hosts.Mounted
		d.PathSubs = []hosts.PathSub{{Src: l.media + "/", Dst: l.views[0] + "/"}}
		defs[k] = d
	}

	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		var pairedExtra, first [ssHostKinds][ssModeKinds][]float64
		var ovh, reads [ssHostKinds][ssModeKinds][]float64
		var bareMS []float64
		for round := 0; round < ssRounds; round++ {
			dir := fmt.Sprintf("ss-i%d-r%d", it, round)
			// Paired: fresh transports per round, one warm-up command each.
			var trs [ssHostKinds][ssModeKinds]hosts.Transport
			for k, l := range labs {
				for m := range modes {
					tr, err := hosts.Connect(context.Background(), defs[k], sshOpts(l, m))
					if err != nil {
						b.Fatal(err)
					}
					defer tr.Close()
					start := time.Now()
					if err := tr.Exec(context.Background(), []string{"true"}, nil, nil); err != nil {
						b.Fatal(err)
					}
					first[k][m] = append(first[k][m], ms(time.Since(start)))
					trs[k][m] = tr
				}
			}
			srcs := make([][]string, len(labs))
			for k, l := range labs {
				srcs[k] = copyClips(b, pristine, filepath.Join(l.media, dir, "paired-src"))
			}
			outDir := filepath.Join(labs[0].media, dir, "paired-out")
			for _, d := range []string{outDir, filepath.Join(labs[0].media, dir, "out-executor"), filepath.Join(labs[0].media, dir, "out-per-command"),
				filepath.Join(labs[1].media, dir, "out-executor"), filepath.Join(labs[1].media, dir, "out-per-command")} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					b.Fatal(err)
				}
			}
			argvs := bareArgvs(b, labs[0].config(b, 1), srcs[0], outDir)
			for i, argv := range argvs {
				var bare time.Duration
				var took [ssHostKinds][ssModeKinds]time.Duration
				steps := []func(){func() { bare = runBare(b, [][]string{argv})[0] }}
				for k := range labs {
					for m := range modes {
						steps = append(steps, func() {
							hargv := slices.Clone(argv)
							for a := range hargv { // host k's own copy of the source and output, as the host sees them
								p, ok := strings.CutPrefix(hargv[a], "file:")
								if !ok {
									continue
								}
								if p == srcs[0][i] {
									p = srcs[k][i]
								} else {
									p = filepath.Join(labs[k].media, dir, "out-"+modes[m], filepath.Base(p))
								}
								mp, ok := defs[k].MapPath(p)
								if !ok {
									b.Fatalf("host %d cannot see %s", k, p)
								}
								hargv[a] = "file:" + mp
							}
							start := time.Now()
							if err := trs[k][m].Exec(context.Background(), hargv, io.Discard, nil); err != nil {
								b.Fatalf("%s, %s: %v", kinds[k], modes[m], err)
							}
							took[k][m] = time.Since(start)
						})
					}
				}
				for s := range steps { // rotate the order from clip to clip
					steps[(s+i+round)%len(steps)]()
				}
				for k := range labs {
					for m := range modes {
						pairedExtra[k][m] = append(pairedExtra[k][m], ms(took[k][m])-ms(bare))
					}
				}
			}
			for k := range labs {
				for m := range modes {
					trs[k][m].Close()
				}
			}

			// Whole runs.
			bareSrc := copyClips(b, pristine[:ssClusterClips], filepath.Join(labs[0].media, dir, "bare-src"))
			bareOut := filepath.Join(labs[0].media, dir, "bare-out")
			if err := os.MkdirAll(bareOut, 0o755); err != nil {
				b.Fatal(err)
			}
			wargvs := bareArgvs(b, labs[0].config(b, 1), bareSrc, bareOut)
			var wbare time.Duration
			var runs [ssHostKinds][ssModeKinds]clusterRun
			var nread [ssHostKinds][ssModeKinds]int
			steps := []func(){func() { wbare = sum(runBare(b, wargvs)) }}
			for k := range labs {
				for m := range modes {
					steps = append(steps, func() {
						l := labs[k]
						src := copyClips(b, pristine[:ssClusterClips], filepath.Join(l.media, dir, modes[m]))
						before := l.servers[0].BashrcRuns()
						o := sshOpts(l, m)
						runs[k][m] = runBatchWith(b, l, l.config(b, 1), src, func(opts *cluster.Options) {
							opts.Connect = func(ctx context.Context, d *hosts.Def) (hosts.Transport, error) {
								return hosts.Connect(ctx, d, o)
							}
						})
						nread[k][m] = l.servers[0].BashrcRuns() - before
					})
				}
			}
			for s := range steps { // rotate the order so no variant always goes first
				steps[(s+round)%len(steps)]()
			}
			for _, l := range labs {
				if err := os.RemoveAll(filepath.Join(l.media, dir)); err != nil {
					b.Fatal(err)
				}
			}
			bareMS = append(bareMS, ms(wbare))
			for k := range labs {
				for m := range modes {
					ovh[k][m] = append(ovh[k][m], (ms(runs[k][m].wall)-ms(wbare))/ssClusterClips)
					reads[k][m] = append(reads[k][m], float64(nread[k][m]))
				}
			}
		}
		b.Logf("clips of %.1fs 160x120, x264 ultrafast, 1 mounted host × 1 slot (serial), loopback sshd; paired: %d clips × %d rounds; whole runs: %d clips, Σ bare %.0f ms, medians of %d rounds",
			ovSeconds, ovClips, ssRounds, ssClusterClips, median(bareMS), ssRounds)
		b.Logf("%-18s %-12s %15s %14s %18s %13s", "host", "mode", "paired Exec−bare", "1st command", "run (wall−Σbare)/job", "bashrc reads")
		for k := range labs {
			for m := range modes {
				rd := "-"
				if k == 1 {
					rd = fmt.Sprintf("%.0f/run", median(reads[k][m]))
				}
				b.Logf("%-18s %-12s %12.1f ms %11.1f ms %15.1f ms %13s", kinds[k], modes[m], median(pairedExtra[k][m]), median(first[k][m]), median(ovh[k][m]), rd)
			}
		}
		for m := range modes {
			d := median(pairedExtra[1][m]) - median(pairedExtra[0][m])
			verdict := "meets"
			if d > ssTargetMS {
				verdict = "MISSES"
			}
			b.Logf("shell start-up share per job (slow − normal), %s: paired %.1f ms (target ≤ %.0f ms: %s); whole runs %.1f ms",
				modes[m], d, ssTargetMS, verdict, median(ovh[1][m])-median(ovh[0][m]))
		}
		b.Logf("whole runs per round (wall−Σbare)/job: normal exec %s | normal per-cmd %s | slow exec %s | slow per-cmd %s",
			fmtList(ovh[0][0]), fmtList(ovh[0][1]), fmtList(ovh[1][0]), fmtList(ovh[1][1]))
		b.ReportMetric(median(pairedExtra[0][0]), "normal-exec-ms/job")
		b.ReportMetric(median(pairedExtra[0][1]), "normal-percmd-ms/job")
		b.ReportMetric(median(pairedExtra[1][0]), "slow-exec-ms/job")
		b.ReportMetric(median(pairedExtra[1][1]), "slow-percmd-ms/job")
		b.ReportMetric(median(pairedExtra[1][0])-median(pairedExtra[0][0]), "shell-share-exec-ms/job")
		b.ReportMetric(median(pairedExtra[1][1])-median(pairedExtra[0][1]), "shell-share-percmd-ms/job")
	}
}
