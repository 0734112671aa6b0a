package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"clustertx/cluster"
	"clustertx/hosts"
)

const (
	mib = int64(1) << 20
	gib = int64(1) << 30
)

// sampleRun is a run with every outcome, two hosts that worked, one down
// at the start, and one that left and came back. Its recorder's clock is
// fake.
func sampleRun() (*cluster.Report, *Recorder) {
	rep := &cluster.Report{
		Hosts: []hosts.CheckResult{
			{Host: "nas", Type: hosts.Local, Up: true, Latency: 3 * time.Millisecond, FFmpeg: "5.1.9", Free: -1},
			{Host: "gpu2", Type: hosts.Streaming, Up: true, Latency: 42*time.Millisecond + 500*time.Microsecond, FFmpeg: "7.1", Free: 100 * gib},
			{Host: "old", Type: hosts.Mounted, Up: false, Latency: 15 * time.Second, Reason: "dial tcp: i/o timeout", Free: -1},
		},
		Files: []*cluster.FileResult{
			{Path: "/m/a.mkv", Output: "/m/a.mp4", Host: "nas", Profile: "hevc", Rule: "big", Outcome: cluster.Done,
				Reason: "4.0 GiB → 1.0 GiB (75% saved)", SrcSize: 4 * gib, OutSize: 1 * gib, Duration: 3600, Elapsed: 30 * time.Minute, Attempts: 1},
			{Path: "/m/b.mkv", Output: "/m/b.mp4", Host: "gpu2", Profile: "nvenc", Rule: "big", Outcome: cluster.Done,
				SrcSize: 2 * gib, OutSize: 1536 * mib, Duration: 1800, Elapsed: 10 * time.Minute, Attempts: 2},
			{Path: "/m/c.mkv", Host: "gpu2", Profile: "nvenc", Rule: "big", Outcome: cluster.Kept,
				Reason: "kept original: saved only 2% (threshold 10%)", SrcSize: 1 * gib, OutSize: 1003 * mib, Duration: 1800, Elapsed: 5 * time.Minute, Attempts: 1},
			{Path: "/m/d.mkv", Rule: "hevc already", Outcome: cluster.Skipped, Reason: `skipped by rule "hevc already"`, SrcSize: 500 * mib, Duration: 1200},
			{Path: "/m/e.mkv", Host: "nas", Profile: "hevc", Outcome: cluster.Failed, Reason: "ffmpeg exited 1: Invalid data",
				SrcSize: 700 * mib, Duration: 600, Elapsed: 4 * time.Second, Attempts: 2},
			{Path: "/m/f.mkv", Profile: "hevc", Outcome: cluster.NotRun, Reason: "interrupted", SrcSize: 1 * gib, Duration: 2400},
		},
		Interrupted: true,
	}
	t0 := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	clock := t0
	rec := &Recorder{now: func() time.Time { return clock }, xfer: map[string]*transferTotals{}}
	rec.started = t0
	for _, c := range rep.Hosts {
		clock = clock.Add(time.Second)
		rec.HostChecked(c)
	}
	rec.Transfer("gpu2", true, 3*gib, time.Minute)
	rec.Transfer("gpu2", false, 2*gib, time.Minute)
	clock = t0.Add(20 * time.Minute)
	rec.HostState("gpu2", false, "connection reset by peer")
	clock = t0.Add(25 * time.Minute)
	rec.HostState("gpu2", true, "")
	clock = t0.Add(59 * time.Minute)
	rec.RunFinished(rep)
	return rep, rec
}

func TestSummary(t *testing.T) {
	rep, rec := sampleRun()
	var b bytes.Buffer
	WriteSummary(&b, rep)
	WriteHostEvents(&b, rec)
	s := b.String()
	t.Logf("summary:\n%s", s)
	for _, re := range []string{
		// table rows: sizes, saving, time, speed, outcome
		`(?m)^FILE +HOST +PROFILE +SIZE +SAVED +TIME +SPEED +OUTCOME$`,
		`(?m)^a\.mkv +nas +hevc +4\.0 GiB → 1\.0 GiB +75% +30m0s +2\.00x +done$`,
		`(?m)^b\.mkv +gpu2 +nvenc +2\.0 GiB → 1\.5 GiB +25% +10m0s +3\.00x +done$`,
		`(?m)^c\.mkv +gpu2 +nvenc +1\.0 GiB → 1003\.0 MiB +2% +5m0s +6\.00x +kept original: saved only 2% \(threshold 10%\)$`,
		`(?m)^d\.mkv +- +- +500\.0 MiB +- +- +- +skipped by rule "hevc already"$`,
		`(?m)^e\.mkv +nas +hevc +700\.0 MiB +- +4s +- +failed: ffmpeg exited 1: Invalid data$`,
		`(?m)^f\.mkv +- +hevc +1\.0 GiB +- +- +- +not run: interrupted$`,
		// totals
		`(?m)^6 files: 2 done, 1 kept, 1 skipped, 1 failed, 1 not run$`,
		`(?m)^saved 3\.5 GiB of 6\.0 GiB \(58%\) over 2 files done$`,
		`(?m)^encoded 2\.00 media hours in 45m0s of encode time \(2\.67x realtime per slot\)$`,
		`(?m)^the run was interrupted$`,
		// share: nas 3600 of 7200 media s, gpu2 3600 (b + c); old did nothing
		`(?m)^  nas +1 file +1h0m0s media +50% +1 failed$`,
		`(?m)^  gpu2 +2 files +1h0m0s media +50%$`,
		`(?m)^  old +0 files +0s media +0%$`,
		// host changes, not the start-of-run checks
		`(?m)^  host gpu2 left at 02:20:00 \(\+20m0s\): connection reset by peer$`,
		`(?m)^  host gpu2 joined at 02:25:00 \(\+25m0s\)$`,
	} {
		if !regexp.MustCompile(re).MatchString(s) {
			t.Errorf("summary lacks %s", re)
		}
	}
	if strings.Contains(s, "host nas joined") || strings.Contains(s, "host old left") {
		t.Error("start-of-run checks shown as changes")
	}

	b.Reset()
	WriteSummary(&b, &cluster.Report{})
	if b.String() != "nothing to do\n" {
		t.Errorf("empty report: %q", b.String())
	}
	b.Reset()
	WriteHostEvents(&b, NewRecorder())
	if b.Len() != 0 {
		t.Errorf("host events with no change: %q", b.String())
	}
}

// documentedFields reads SCHEMA.md: section title → field names in its
// table, so the test checks the JSON against the documentation itself.
func documentedFields(t *testing.T) map[string][]string {
	t.Helper()
	doc, err := os.ReadFile("SCHEMA.md")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	section := ""
	row := regexp.MustCompile("^\\| `([a-z_]+)` \\|")
	for _, l := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(l, "## ") {
			section = strings.Trim(strings.TrimPrefix(l, "## "), "`")
			continue
		}
		if m := row.FindStringSubmatch(l); m != nil {
			out[section] = append(out[section], m[1])
		}
	}
	return out
}

func keys(m map[string]any) []string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

func sameKeys(t *testing.T, what string, got map[string]any, want []string) {
	t.Helper()
	w := append([]string(nil), want...)
	sort.Strings(w)
	if g := keys(got); strings.Join(g, ",") != strings.Join(w, ",") {
		t.Errorf("%s: keys %v, documented %v", what, g, w)
	}
}

func TestJSONSchema(t *testing.T) {
	doc := documentedFields(t)
	// The brief's fields must be documented (and so, below, present).
	for section, must := range map[string][]string{
		"Top level":        {"schema", "started", "finished", "files", "hosts", "totals"},
		"files[]":          {"path", "output", "host", "profile", "rule", "outcome", "reason", "source_bytes", "output_bytes", "saving_percent", "media_seconds", "encode_seconds", "speed", "attempts"},
		"hosts[]":          {"name", "type", "up", "latency_ms", "ffmpeg", "reason", "files", "media_seconds", "events"},
		"hosts[].events[]": {"time", "up", "reason"},
		"totals":           {"files", "saved_bytes", "media_seconds"},
	} {
		have := strings.Join(doc[section], ",")
		for _, f := range must {
			if !strings.Contains(","+have+",", ","+f+",") {
				t.Errorf("SCHEMA.md section %q does not document %q", section, f)
			}
		}
	}

	rep, rec := sampleRun()
	dir := t.TempDir()
	path := filepath.Join(dir, "report.json")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteJSONFile(path, rep, rec); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary files left beside the report: %v", ents)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("report mode: %v %v", st.Mode(), err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, raw)
	}
	if m["schema"] != "clustertx.report/v1" || Schema != "clustertx.report/v1" {
		t.Errorf("schema = %v", m["schema"])
	}
	sameKeys(t, "top level", m, doc["Top level"])
	files := m["files"].([]any)
	if len(files) != len(rep.Files) {
		t.Fatalf("%d files, want %d", len(files), len(rep.Files))
	}
	for i, f := range files {
		sameKeys(t, "files[]", f.(map[string]any), doc["files[]"])
		if f.(map[string]any)["path"] != rep.Files[i].Path {
			t.Errorf("files[%d] out of order", i)
		}
	}
	hostsJ := m["hosts"].([]any)
	if len(hostsJ) != 3 {
		t.Fatalf("%d hosts, want 3", len(hostsJ))
	}
	for _, h := range hostsJ {
		sameKeys(t, "hosts[]", h.(map[string]any), doc["hosts[]"])
		for _, e := range h.(map[string]any)["events"].([]any) {
			sameKeys(t, "hosts[].events[]", e.(map[string]any), doc["hosts[].events[]"])
		}
	}
	totals := m["totals"].(map[string]any)
	sameKeys(t, "totals", totals, doc["totals"])

	// Values.
	a := files[0].(map[string]any)
	for k, want := range map[string]any{
		"outcome": "done", "host": "nas", "rule": "big", "output": "/m/a.mp4",
		"source_bytes": float64(4 * gib), "output_bytes": float64(gib),
		"saving_percent": 75.0, "media_seconds": 3600.0, "encode_seconds": 1800.0, "speed": 2.0, "attempts": 1.0,
	} {
		if a[k] != want {
			t.Errorf("files[0].%s = %v, want %v", k, a[k], want)
		}
	}
	if d := files[3].(map[string]any); d["outcome"] != "skipped" || d["saving_percent"] != nil || d["speed"] != nil {
		t.Errorf("skipped file: %v", d)
	}
	if f := files[5].(map[string]any); f["outcome"] != "not run" {
		t.Errorf("not run file: %v", f)
	}
	gpu := hostsJ[1].(map[string]any)
	for k, want := range map[string]any{
		"name": "gpu2", "type": "streaming", "up": true, "latency_ms": 42.5, "ffmpeg": "7.1",
		"files": 2.0, "media_seconds": 3600.0, "failed": 0.0, "free_bytes": float64(100 * gib),
		"uploaded_bytes": float64(3 * gib), "downloaded_bytes": float64(2 * gib),
	} {
		if gpu[k] != want {
			t.Errorf("hosts[1].%s = %v, want %v", k, gpu[k], want)
		}
	}
	ev := gpu["events"].([]any)
	if len(ev) != 3 {
		t.Fatalf("gpu2 events: %v", ev)
	}
	for i, want := range []struct {
		kind, time string
		up         bool
	}{{"check", "2026-03-01T02:00:02Z", true}, {"change", "2026-03-01T02:20:00Z", false}, {"change", "2026-03-01T02:25:00Z", true}} {
		e := ev[i].(map[string]any)
		if e["kind"] != want.kind || e["time"] != want.time || e["up"] != want.up {
			t.Errorf("gpu2 event %d = %v, want %+v", i, e, want)
		}
	}
	if ev[1].(map[string]any)["reason"] != "connection reset by peer" {
		t.Errorf("down event reason: %v", ev[1])
	}
	old := hostsJ[2].(map[string]any)
	if old["up"] != false || old["reason"] != "dial tcp: i/o timeout" || old["free_bytes"] != nil || old["files"] != 0.0 {
		t.Errorf("down host: %v", old)
	}
	for k, want := range map[string]any{
		"files": 6.0, "done": 2.0, "kept": 1.0, "skipped": 1.0, "failed": 1.0, "not_run": 1.0, "planned": 0.0,
		"done_source_bytes": float64(6 * gib), "output_bytes": float64(gib + 1536*mib),
		"saved_bytes": float64(6*gib - gib - 1536*mib), "saving_percent": 58.3,
		"media_seconds": 7200.0, "wall_seconds": 3540.0,
	} {
		if totals[k] != want {
			t.Errorf("totals.%s = %v, want %v", k, totals[k], want)
		}
	}
	if m["started"] != "2026-03-01T02:00:00Z" || m["finished"] != "2026-03-01T02:59:00Z" || m["interrupted"] != true {
		t.Errorf("started/finished/interrupted: %v %v %v", m["started"], m["finished"], m["interrupted"])
	}

	// Without a recorder: times and wall time are null, events empty.
	var b bytes.Buffer
	if err := WriteJSON(&b, rep, nil); err != nil {
		t.Fatal(err)
	}
	m = nil
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	if m["started"] != nil || m["finished"] != nil || m["totals"].(map[string]any)["wall_seconds"] != nil {
		t.Errorf("no recorder: %v %v", m["started"], m["finished"])
	}
	sameKeys(t, "top level (no recorder)", m, doc["Top level"])
	if ev := m["hosts"].([]any)[0].(map[string]any)["events"]; ev == nil || len(ev.([]any)) != 0 {
		t.Errorf("events without a recorder = %v, want []", ev)
	}
}

func TestWriteJSONFileFailure(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "report.json")
	if err := os.Mkdir(target, 0o755); err != nil { // rename onto a directory fails
		t.Fatal(err)
	}
	rep, rec := sampleRun()
	if err := WriteJSONFile(target, rep, rec); err == nil {
		t.Fatal("WriteJSONFile onto a directory succeeded")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("temporary file left after a failure: %v", ents)
	}
	if err := WriteJSONFile(filepath.Join(dir, "missing", "r.json"), rep, rec); err == nil {
		t.Error("WriteJSONFile into a missing directory succeeded")
	}
}

// A split film counts as one file for the host that joined it, and its
// media for the hosts that encoded its segments.
func TestSummarySharesOfASplitFile(t *testing.T) {
	rep := &cluster.Report{Files: []*cluster.FileResult{{
		Path: "/m/film.mkv", Host: "c", Profile: "hevc", Outcome: cluster.Done, SrcSize: 4 << 30, OutSize: 1 << 30,
		Duration: 6000, Elapsed: time.Hour,
		Split: &cluster.SplitStats{Segments: 20, Hosts: 3, HostSeconds: map[string]float64{"a": 3000, "b": 2400, "c": 600}},
	}}}
	var b bytes.Buffer
	WriteSummary(&b, rep)
	s := b.String()
	for _, re := range []string{
		`(?m)^  a +0 files +50m0s media +50%$`,
		`(?m)^  b +0 files +40m0s media +40%$`,
		`(?m)^  c +1 file +10m0s media +10%$`,
	} {
		if !regexp.MustCompile(re).MatchString(s) {
			t.Errorf("summary lacks %s:\n%s", re, s)
		}
	}
}

func TestJSONSplitEntry(t *testing.T) {
	rep := &cluster.Report{Files: []*cluster.FileResult{{Path: "/m/film.mkv", Host: "c", Outcome: cluster.Done,
		Split: &cluster.SplitStats{Segments: 20, Hosts: 2, HostSeconds: map[string]float64{"a": 3000, "c": 600}, Join: 1500 * time.Millisecond}},
		{Path: "/m/ep.mkv", Host: "a", Outcome: cluster.Done}}}
	var b bytes.Buffer
	if err := WriteJSON(&b, rep, nil); err != nil {
		t.Fatal(err)
	}
	var d struct {
		Files []struct {
			Split *struct {
				Segments    int                `json:"segments"`
				HostSeconds map[string]float64 `json:"host_media_seconds"`
				Join        float64            `json:"join_seconds"`
			} `json:"split"`
		} `json:"files"`
	}
	if err := json.Unmarshal(b.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if s := d.Files[0].Split; s == nil || s.Segments != 20 || s.HostSeconds["a"] != 3000 || s.Join != 1.5 {
		t.Errorf("split entry %+v\n%s", s, b.String())
	}
	if d.Files[1].Split != nil {
		t.Errorf("a whole file has a split entry")
	}
}
