package cluster_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"clustertx/cluster"
	"clustertx/hosts"
	"clustertx/internal/testenv"
	"clustertx/journal"
)

// TestCalibrationEncode: with Options.Calibrate, each host checked runs a
// short test encode and its measured speed is the host's estimate. Two
// real sshd hosts whose ffmpeg wrappers read the input at 4× and 0.5× real
// time (-readrate, as bench's BenchmarkHeteroCluster throttles its hosts)
// must come out in that order by a wide margin; a host whose ffmpeg fails
// the calibration stays up, without an estimate.
func TestCalibrationEncode(t *testing.T) {
	l := newLab(t)
	wrap := func(name, script string) string {
		p := filepath.Join(l.dir, "ffmpeg-"+name)
		must(t, os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755))
		return p
	}
	readrate := func(name, rate string) string {
		return wrap(name, "case \" $* \" in *\" -i \"*) exec ffmpeg -readrate "+rate+" \"$@\";; esac\nexec ffmpeg \"$@\"\n")
	}
	broken := wrap("broken", "case \"$*\" in *lavfi*) echo 'lavfi: not in this build' >&2; exit 1;; esac\nexec ffmpeg \"$@\"\n")
	var y strings.Builder
	y.WriteString("config:\n  ffmpeg: ffmpeg\n  clusters:\n    lab:\n")
	y.WriteString("      manager:\n        type: local\n        fallback: no\n        ffmpeg: " + broken + "\n")
	y.WriteString(l.nas.YAML("nas", "type: mounted", "path-substitutions:", "  - "+l.media+"/ "+l.view+"/", "ffmpeg: "+readrate("nas", "4")))
	y.WriteString(l.gamer.YAML("gamer", "type: streaming", "working_dir: "+l.work, "ffmpeg: "+readrate("gamer", "0.5")))
	y.WriteString(`
profiles:
  h264:
    output_options: -map 0 -c:v libx264 -preset ultrafast -crf 30 -c:a copy -movflags +faststart
    extension: .mkv
rules:
  default:
    profile: h264
`)
	l.cfgPath = filepath.Join(l.dir, "transcode.yml")
	must(t, os.WriteFile(l.cfgPath, []byte(y.String()), 0o644))
	clip := l.clip("a.mp4", testenv.Clip{Seconds: 2, Width: 160, Height: 120})

	rep, out, err := l.run(context.Background(), func(o *cluster.Options) {
		o.Calibrate, o.DryRun = true, true
		o.CheckTimeout = 15 * time.Second // a loaded machine: leave the calibration its time
	}, items("lab", clip)...)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]hosts.CheckResult{}
	for _, c := range rep.Hosts {
		got[c.Host] = c
	}
	fast, slow, bad := got["nas"], got["gamer"], got["manager"]
	if !fast.Up || !slow.Up || !bad.Up {
		t.Fatalf("every host should be up:\n%s", out)
	}
	if fast.Speed <= 0 || slow.Speed <= 0 {
		t.Fatalf("no calibrated speed: nas %v (%s), gamer %v (%s)\n%s", fast.Speed, fast.CalibNote, slow.Speed, slow.CalibNote, out)
	}
	if fast.Speed < 2*slow.Speed { // nominally 8×
		t.Errorf("nas (4× real time) calibrated at %.0f, gamer (0.5×) at %.0f: want nas at least 2× faster", fast.Speed, slow.Speed)
	}
	if fast.CalibProfile != "h264" {
		t.Errorf("calibrated with profile %q, want h264", fast.CalibProfile)
	}
	if bad.Speed != 0 || !strings.Contains(bad.CalibNote, "lavfi: not in this build") {
		t.Errorf("manager's ffmpeg fails the calibration: got speed %v, note %q", bad.Speed, bad.CalibNote)
	}
	t.Logf("nas %s, gamer %s (calibrations %s, %s)", hosts.FormatSpeed(fast.Speed), hosts.FormatSpeed(slow.Speed), fast.CalibTime, slow.CalibTime)
	if !strings.Contains(out, "est. speed") {
		t.Errorf("host table does not show the estimate:\n%s", out)
	}

	// A host whose speed the journal knows from an earlier run is not
	// calibrated (the estimate would not be used); the others still are.
	jr, err := journal.Open(filepath.Join(l.dir, "journal.jsonl"))
	must(t, err)
	defer jr.Close()
	must(t, jr.RecordSpeed("nas", "work", 3.5))
	rep, out, err = l.run(context.Background(), func(o *cluster.Options) {
		o.Calibrate, o.DryRun, o.Journal = true, true, jr
		o.CheckTimeout = 15 * time.Second
	}, items("lab", clip)...)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rep.Hosts {
		got[c.Host] = c
	}
	if nas := got["nas"]; nas.Speed != 0 || nas.CalibTime != 0 || !strings.Contains(nas.CalibNote, "journal has its speed") {
		t.Errorf("nas, with a journal speed: calibrated anyway (speed %v in %s, note %q)\n%s", nas.Speed, nas.CalibTime, nas.CalibNote, out)
	}
	if gamer := got["gamer"]; gamer.Speed <= 0 {
		t.Errorf("gamer, without a journal speed: not calibrated (%s)\n%s", gamer.CalibNote, out)
	}
}
