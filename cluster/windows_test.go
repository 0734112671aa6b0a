package cluster_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"clustertx/cluster"
	"clustertx/config"
	"clustertx/hosts"
	"clustertx/journal"
)

// windowHome is a home whose encodes read the source in real time (-re),
// so that a window can close while one runs, and whose one host, the
// manager, has the window: given ("" for none).
func windowHome(t *testing.T, hostWindow string) *home {
	h := newHome(t, "")
	win := ""
	if hostWindow != "" {
		win = "        window: \"" + hostWindow + "\"\n"
	}
	cfg := "config:\n  ffmpeg: ffmpeg\n  clusters:\n    home:\n      manager:\n        type: local\n        fallback: no\n" + win + `
profiles:
  x264:
    input_options: -re
    output_options: -c:v libx264 -preset ultrafast -crf 35 -c:a copy
    extension: .mkv
rules:
  default:
    profile: x264
`
	must(t, os.WriteFile(h.cfg, []byte(cfg), 0o644))
	return h
}

// runWindow is home.run with the windows' options: until (zero: none),
// grace and the clock.
func (h *home) runWindow(until time.Time, grace time.Duration, now func() time.Time, paths ...string) (*cluster.Report, string) {
	h.t.Helper()
	return h.runWith(func(o *cluster.Options) { o.Until, o.Grace, o.Now = until, grace, now }, paths...)
}

func (h *home) temps() []string {
	var left []string
	filepath.WalkDir(h.media, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), cluster.TempMarker) {
			left = append(left, p)
		}
		return nil
	})
	return left
}

// Issue 18: --until reached while a job runs stops it as Ctrl-C would
// (temporary files removed, original untouched); its file and the one not
// started are not run ("window closed"), not failed, not in the journal as
// failed; the next run does them.
func TestUntilStopsMidBatchAndNextRunResumes(t *testing.T) {
	h := windowHome(t, "")
	a, b := h.clip("a.mp4", 8), h.clip("b.mp4", 8)
	sumA, sumB := sum(t, a), sum(t, b)

	start := time.Now()
	rep, out := h.runWindow(time.Now().Add(3*time.Second), 0, nil, a, b)
	if took := time.Since(start); took > 6*time.Second {
		t.Errorf("the run took %s: an 8 s encode was not stopped at --until 3 s\n%s", took, out)
	}
	if !strings.Contains(out, "--until was reached") || !strings.Contains(out, "stopped") {
		t.Errorf("no job was stopped by --until:\n%s", out)
	}
	for _, p := range []string{a, b} {
		f := fileOf(rep, p)
		if f == nil || f.Outcome != cluster.NotRun || !f.WindowClosed || !strings.HasPrefix(f.Reason, "window closed") {
			t.Errorf("%s: %+v, want not run: window closed\n%s", p, f, out)
		}
	}
	if rep.Count(cluster.Failed) != 0 || rep.WindowClosed() != 2 {
		t.Errorf("failed %d, window closed %d; want 0 and 2", rep.Count(cluster.Failed), rep.WindowClosed())
	}
	if sum(t, a) != sumA || sum(t, b) != sumB {
		t.Error("an original changed")
	}
	if left := h.temps(); len(left) > 0 || exists(strings.TrimSuffix(a, ".mp4")+".mkv") || exists(strings.TrimSuffix(b, ".mp4")+".mkv") {
		t.Errorf("files left behind: temps %v\n%s", left, out)
	}
	j, err := journal.Open(h.journal)
	must(t, err)
	for _, p := range []string{a, b} {
		if e, ok := j.LookupPath(p); ok {
			t.Errorf("journal has %s for %s after a window closed on it", e.Outcome, p)
		}
	}
	j.Close()

	// The next run, at full speed.
	cfg, err := os.ReadFile(h.cfg)
	must(t, err)
	must(t, os.WriteFile(h.cfg, bytes.Replace(cfg, []byte("input_options: -re"), nil, 1), 0o644))
	rep, out = h.runWindow(time.Time{}, 0, nil, a, b)
	if rep.Count(cluster.Done) != 2 {
		t.Fatalf("next run: %d done, want 2\n%s", rep.Count(cluster.Done), out)
	}
}

// A job still running when --until passes finishes if it does within the
// grace period.
func TestUntilGraceLetsTheJobFinish(t *testing.T) {
	h := windowHome(t, "")
	a := h.clip("a.mp4", 5)
	until := time.Now().Add(3 * time.Second)
	rep, out := h.runWindow(until, 20*time.Second, nil, a)
	if f := fileOf(rep, a); f == nil || f.Outcome != cluster.Done {
		t.Fatalf("with a 20 s grace: %+v, want done\n%s", f, out)
	}
	if time.Now().Before(until) {
		t.Fatalf("the run ended before --until: the grace was not put to the test\n%s", out)
	}
}

// A host's window: outside its hours (on a clock shifted to 12:00 local
// time, the window is 01:00-02:00) the host takes nothing and the run ends
// at --until with the file not run; on a clock inside its hours it does
// the file.
func TestHostWindowKeepsHostIdleOutsideItsHours(t *testing.T) {
	h := windowHome(t, "01:00-02:00")
	a := h.clip("a.mp4", 1)
	shifted := func(hh, mm int) func() time.Time {
		y, mo, d := time.Now().Date()
		base, t0 := time.Date(y, mo, d, hh, mm, 0, 0, time.Local), time.Now()
		return func() time.Time { return base.Add(time.Since(t0)) }
	}
	noon := shifted(12, 0)
	rep, out := h.runWindow(noon().Add(2*time.Second), 0, noon, a)
	if f := fileOf(rep, a); f == nil || f.Outcome != cluster.NotRun || !f.WindowClosed {
		t.Fatalf("at 12:00: %+v, want not run (window closed)\n%s", f, out)
	}
	if strings.Contains(out, "job: manager: start") || exists(strings.TrimSuffix(a, ".mp4")+".mkv") {
		t.Fatalf("the host took a job outside its window:\n%s", out)
	}
	if !strings.Contains(out, "01:00-02:00(closed)") || !strings.Contains(out, "window opens 01:00") {
		t.Errorf("the host table does not show the window:\n%s", out)
	}

	in := shifted(1, 0)
	rep, out = h.runWindow(time.Time{}, 0, in, a)
	if f := fileOf(rep, a); f == nil || f.Outcome != cluster.Done {
		t.Fatalf("at 01:00: %+v, want done\n%s", f, out)
	}
}

// --dry-run shows the hosts' windows and the run's --until in the host
// table.
func TestDryRunShowsWindows(t *testing.T) {
	h := windowHome(t, "23:00-07:00")
	a := h.clip("a.mp4", 1)
	cfg, err := config.Load(config.LoadOptions{Path: h.cfg, Strict: true})
	must(t, err)
	var out bytes.Buffer
	noon := func() time.Time {
		y, mo, d := time.Now().Date()
		return time.Date(y, mo, d, 12, 0, 0, 0, time.Local)
	}
	opts := cluster.Options{Config: cfg, Connect: func(ctx context.Context, d *hosts.Def) (hosts.Transport, error) {
		return hosts.Connect(ctx, d, hosts.SSHOptions{SSHConfigFile: "none"})
	}, DryRun: true, Out: &out, Log: &out, Until: noon().Add(19 * time.Hour), Now: noon}
	if _, err := cluster.Run(context.Background(), opts, []cluster.WorkItem{{Path: a, Cluster: "home"}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"WINDOW", "23:00-07:00(closed)", "window opens 23:00", "run window: until " + noon().Add(19*time.Hour).Format("Mon 15:04") + " (in 19h0m0s)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry run lacks %q:\n%s", want, out.String())
		}
	}
}
