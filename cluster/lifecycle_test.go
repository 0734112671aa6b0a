package cluster_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"clustertx/cluster"
	"clustertx/config"
	"clustertx/hosts"
	"clustertx/internal/fileid"
	"clustertx/internal/testenv"
	"clustertx/journal"
	"clustertx/report"
)

// These tests follow one file through runs and outside events (another
// program replacing it mid-encode, -k then a normal run, a restore from a
// backup) on the manager alone, with real ffmpeg and a real journal. Each
// checks what the user would: which files are on disk, with which content.

// home is a media folder, a config whose only host is the manager, and a
// journal, across runs.
type home struct {
	t       *testing.T
	dir     string
	media   string
	journal string
	cfg     string
}

func newHome(t *testing.T, ffmpeg string) *home {
	t.Helper()
	testenv.NeedFFmpeg(t)
	dir := t.TempDir()
	h := &home{t: t, dir: dir, media: filepath.Join(dir, "media"), journal: filepath.Join(dir, "state", "journal.jsonl")}
	must(t, os.MkdirAll(h.media, 0o755))
	if ffmpeg == "" {
		ffmpeg = "ffmpeg"
	}
	h.cfg = filepath.Join(dir, "transcode.yml")
	cfg := "config:\n  ffmpeg: ffmpeg\n  clusters:\n    home:\n      manager:\n        type: local\n        fallback: no\n        ffmpeg: " + ffmpeg + "\n" + `
profiles:
  x264:
    output_options: -c:v libx264 -preset ultrafast -crf 35 -c:a copy
    extension: .mkv
rules:
  default:
    profile: x264
`
	must(t, os.WriteFile(h.cfg, []byte(cfg), 0o644))
	return h
}

// hookFFmpeg makes an ffmpeg wrapper that runs the real ffmpeg and, after
// an encode (not a host check), the shell commands in script: the outside
// event, while the job is between its encode and its replace. It exits
// with ffmpeg's status.
func hookFFmpeg(t *testing.T, dir, script string) string {
	t.Helper()
	p := filepath.Join(dir, "ffmpeg-hook")
	must(t, os.WriteFile(p, []byte("#!/bin/sh\nffmpeg \"$@\"\nrc=$?\ncase \"$*\" in *pipe:1*)\n"+script+"\n;; esac\nexit $rc\n"), 0o755))
	return p
}

func (h *home) run(keep, force bool, paths ...string) (*cluster.Report, string) {
	h.t.Helper()
	return h.runWith(func(o *cluster.Options) { o.Keep, o.Force = keep, force }, paths...)
}

// runWith runs the files on cluster "home" with the journal, opts setting
// what the test needs.
func (h *home) runWith(opt func(*cluster.Options), paths ...string) (*cluster.Report, string) {
	h.t.Helper()
	cfg, err := config.Load(config.LoadOptions{Path: h.cfg, Strict: true})
	must(h.t, err)
	j, err := journal.Open(h.journal)
	must(h.t, err)
	defer j.Close()
	var out bytes.Buffer
	opts := cluster.Options{Config: cfg, Connect: func(ctx context.Context, d *hosts.Def) (hosts.Transport, error) {
		return hosts.Connect(ctx, d, hosts.SSHOptions{SSHConfigFile: "none"})
	}, Journal: j, Out: &out, Log: &out, CheckTimeout: 10 * time.Second, HostWait: 2 * time.Second}
	opt(&opts)
	var its []cluster.WorkItem
	for _, p := range paths {
		its = append(its, cluster.WorkItem{Path: p, Cluster: "home"})
	}
	rep, err := cluster.Run(context.Background(), opts, its)
	if err != nil {
		h.t.Fatalf("run: %v\n%s", err, out.String())
	}
	report.WriteSummary(&out, rep)
	return rep, out.String()
}

func (h *home) clip(name string, seconds float64) string {
	p := filepath.Join(h.media, name)
	testenv.MakeClip(h.t, p, testenv.Clip{Seconds: seconds, AudioLangs: []string{"eng"}})
	return p
}

func sum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("reading %s: %v", p, err)
	}
	return sha256.Sum256(b)
}

func fileOf(rep *cluster.Report, path string) *cluster.FileResult {
	for _, f := range rep.Files {
		if f.Path == path {
			return f
		}
	}
	return nil
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// A new version that replaces the source while the old one encodes (what
// Sonarr/Radarr's upgrade does) is left alone, the old version's output is
// discarded, and the next run encodes the new version.
func TestSourceReplacedDuringEncodeIsLeftAlone(t *testing.T) {
	for _, name := range []string{"film.mp4", "film.mkv"} { // new name; same name (renamed over the source)
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			newer := filepath.Join(dir, "newer"+filepath.Ext(name))
			testenv.MakeClip(t, newer, testenv.Clip{Seconds: 2, AudioLangs: []string{"eng"}, Width: 320, Height: 180})
			h := newHome(t, "")
			src := h.clip(name, 1)
			want := sum(t, newer)
			// The upgrade lands once, during the first encode.
			h2 := newHome(t, hookFFmpeg(t, dir, "if [ -f '"+newer+"' ]; then mv '"+newer+"' '"+src+"'; fi"))
			h2.media, h2.journal = h.media, h.journal
			rep, out := h2.run(false, false, src)
			f := fileOf(rep, src)
			if f == nil || f.Outcome != cluster.Changed {
				t.Fatalf("outcome = %+v, want %q\n%s", f, cluster.Changed, out)
			}
			if got := sum(t, src); got != want {
				t.Fatalf("the new version at %s was overwritten or removed\n%s", src, out)
			}
			out1 := strings.TrimSuffix(src, filepath.Ext(src)) + ".mkv"
			if out1 != src && exists(out1) {
				t.Fatalf("the old version's output %s was left in place\n%s", out1, out)
			}
			if l := leftovers(t, h.media); len(l) > 0 {
				t.Fatalf("temp files left: %v", l)
			}
			// The next run encodes the new version.
			rep, out = h.run(false, false, src)
			if f := fileOf(rep, src); f == nil || f.Outcome != cluster.Done {
				t.Fatalf("next run: %+v\n%s", f, out)
			}
			if d := probe(t, out1).Duration; d < 1.5 {
				t.Fatalf("the output is of the old version (%.1fs), not the new one (2s)", d)
			}
		})
	}
}

// -k makes a copy and never touches the source; a normal run afterwards
// neither removes the source (the old "finish an interrupted run" path did)
// nor transcodes the -k copy.
func TestKeepThenNormalRunKeepsTheOriginal(t *testing.T) {
	h := newHome(t, "")
	src := h.clip("a.mkv", 1)
	orig := sum(t, src)
	rep, out := h.run(true, false, src)
	copyPath := filepath.Join(h.media, "a.transcoded.mkv")
	if f := fileOf(rep, src); f == nil || f.Outcome != cluster.Done || !exists(copyPath) {
		t.Fatalf("-k run: %+v\n%s", f, out)
	}
	copySum := sum(t, copyPath)
	rep, out = h.run(false, false, h.media)
	if !exists(src) || sum(t, src) != orig {
		t.Fatalf("the normal run after -k removed or changed the original\n%s", out)
	}
	if sum(t, copyPath) != copySum {
		t.Fatalf("the -k copy was transcoded again\n%s", out)
	}
	f := fileOf(rep, src)
	if f == nil || f.Outcome != cluster.Skipped || !strings.Contains(f.Reason, "-k") {
		t.Fatalf("source: %+v, want skipped naming -k\n%s", f, out)
	}
	if f := fileOf(rep, copyPath); f == nil || f.Outcome != cluster.Skipped || !strings.Contains(f.Reason, "written by clustertx") {
		t.Fatalf("-k copy: %+v, want skipped as clustertx's output\n%s", f, out)
	}
	// --force does what it says: encodes the source again and replaces it.
	rep, out = h.run(false, true, src)
	if f := fileOf(rep, src); f == nil || f.Outcome != cluster.Done {
		t.Fatalf("--force: %+v\n%s", f, out)
	}
}

// An original restored from a backup with its mtime (cp -p, rsync -a)
// after a finished run is skipped and said so, never deleted.
func TestRestoredOriginalIsNotDeleted(t *testing.T) {
	h := newHome(t, "")
	src := h.clip("b.mp4", 1)
	backup := filepath.Join(h.dir, "backup.mp4")
	if out, err := exec.Command("cp", "-p", src, backup).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	rep, out := h.run(false, false, src)
	if f := fileOf(rep, src); f == nil || f.Outcome != cluster.Done || exists(src) {
		t.Fatalf("first run: %+v\n%s", f, out)
	}
	if out, err := exec.Command("cp", "-p", backup, src).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	rep, out = h.run(false, false, h.media)
	if !exists(src) || sum(t, src) != sum(t, backup) {
		t.Fatalf("the restored original was removed\n%s", out)
	}
	f := fileOf(rep, src)
	if f == nil || f.Outcome != cluster.Skipped || !strings.Contains(f.Reason, "restored") {
		t.Fatalf("restored original: %+v, want skipped as restored\n%s", f, out)
	}
}

// The output keeps the source's permission bits and owner, when replacing
// in place and when written under a new name.
func TestOutputKeepsPermissionsAndOwner(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give files another owner")
	}
	h := newHome(t, "")
	for _, name := range []string{"p.mkv", "q.mp4"} {
		src := h.clip(name, 1)
		must(t, os.Chown(src, 1234, 2345))
		must(t, os.Chmod(src, 0o600))
		rep, out := h.run(false, false, src)
		f := fileOf(rep, src)
		if f == nil || f.Outcome != cluster.Done {
			t.Fatalf("%s: %+v\n%s", name, f, out)
		}
		st, err := os.Stat(f.Output)
		must(t, err)
		sys := st.Sys().(*syscall.Stat_t)
		if st.Mode().Perm() != 0o600 || sys.Uid != 1234 || sys.Gid != 2345 {
			t.Fatalf("%s: output %s is %v %d:%d, want -rw------- 1234:2345", name, f.Output, st.Mode().Perm(), sys.Uid, sys.Gid)
		}
	}
}

// A replace that a killed run left half done (output in place, source not
// yet removed) is finished by the next run, not by planning or a dry run,
// and only for exactly the version the killed run encoded.
func TestInterruptedReplaceIsFinishedOnlyForThatVersion(t *testing.T) {
	for _, restored := range []bool{false, true} {
		t.Run(map[bool]string{false: "same file", true: "restored copy"}[restored], func(t *testing.T) {
			h := newHome(t, "")
			src := h.clip("c.mp4", 1)
			out := filepath.Join(h.media, "c.mkv")
			if b, err := exec.Command("ffmpeg", "-v", "error", "-i", src, "-c", "copy", out).CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg: %v %s", err, b)
			}
			// The journal as a run killed between linking the output and
			// removing the source leaves it.
			j, err := journal.Open(h.journal)
			must(t, err)
			srcID, _ := fileidOf(t, src)
			outID, _ := fileidOf(t, out)
			must(t, j.Record(journal.Entry{Outcome: journal.Output, Output: out, Source: src}.WithVersion(outID)))
			must(t, j.Record(journal.Entry{Outcome: journal.Replacing, Output: out}.WithVersion(srcID)))
			j.Close()
			if restored { // the user restored the source from a backup since (new inode, same name, size, mtime)
				tmp := filepath.Join(h.dir, "copy.mp4")
				if b, err := exec.Command("cp", "-p", src, tmp).CombinedOutput(); err != nil {
					t.Fatalf("cp: %v %s", err, b)
				}
				must(t, os.Rename(tmp, src))
			}
			orig := sum(t, src)

			// Planning and a dry run change nothing.
			cfg, err := config.Load(config.LoadOptions{Path: h.cfg, Strict: true})
			must(t, err)
			ro, err := journal.OpenReadOnly(h.journal)
			must(t, err)
			var buf bytes.Buffer
			_, err = cluster.PlanFiles(context.Background(), cluster.Options{Config: cfg, Journal: ro, DryRun: true, Out: &buf, Log: &buf},
				[]cluster.WorkItem{{Path: src, Cluster: "home"}})
			must(t, err)
			if !exists(src) {
				t.Fatalf("planning removed the source\n%s", buf.String())
			}

			rep, log := h.run(false, false, src)
			f := fileOf(rep, src)
			if restored {
				if !exists(src) || sum(t, src) != orig || f == nil || f.Outcome != cluster.Skipped {
					t.Fatalf("a restored copy was removed or not skipped: %+v\n%s", f, log)
				}
				return
			}
			if exists(src) || f == nil || f.Outcome != cluster.Done || !strings.Contains(f.Reason, "finished an earlier run") {
				t.Fatalf("interrupted replace not finished: %+v\n%s", f, log)
			}
		})
	}
}

func fileidOf(t *testing.T, p string) (fileid.ID, error) {
	t.Helper()
	id, err := fileid.Of(p)
	if err != nil {
		t.Fatal(err)
	}
	return id, nil
}

// A streaming host's result keeps the source's mode and owner too (the
// download is written by the manager, 0644 root by default).
func TestStreamedOutputKeepsPermissionsAndOwner(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to give files another owner")
	}
	l := newLab(t)
	l.writeConfig(l.gamerYAML())
	src := l.clip("s.mp4", testenv.Clip{Seconds: 1, AudioLangs: []string{"eng"}})
	must(t, os.Chown(src, 1234, 2345))
	must(t, os.Chmod(src, 0o640))
	rep, out, err := l.run(context.Background(), nil, items("lab", src)...)
	must(t, err)
	f := rep.Files[0]
	if f.Outcome != cluster.Done || f.Host != "gamer" {
		t.Fatalf("%s on %s: %s\n%s", f.Outcome, f.Host, f.Reason, out)
	}
	st, err := os.Stat(f.Output)
	must(t, err)
	sys := st.Sys().(*syscall.Stat_t)
	if st.Mode().Perm() != 0o640 || sys.Uid != 1234 || sys.Gid != 2345 {
		t.Fatalf("output %s is %v %d:%d, want -rw-r----- 1234:2345", f.Output, st.Mode().Perm(), sys.Uid, sys.Gid)
	}
}

// A full disk on the manager is the manager's problem: the streaming host
// that encoded the file stays up, the file is not encoded again elsewhere,
// and the reason says where the problem is.
func TestManagerDiskFullIsNotBlamedOnTheHost(t *testing.T) {
	l := newLab(t)
	// The media folder: room for the source, not for the download's
	// free-space check (output size + 64 MiB).
	if err := syscall.Mount("tmpfs", l.media, "tmpfs", 0, "size=8m"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v)", err)
	}
	t.Cleanup(func() { syscall.Unmount(l.media, syscall.MNT_DETACH) })
	src := l.clip("d.mkv", testenv.Clip{Seconds: 1, AudioLangs: []string{"eng"}})
	// The manager as a fallback: it would take the file if the failure
	// counted as the host's or as an attempt.
	l.writeConfig(l.gamerYAML(), "      manager:\n        type: local\n        fallback: yes\n")
	rep, out, err := l.run(context.Background(), nil, cluster.WorkItem{Path: src, Cluster: "lab", Profile: "hevc"})
	must(t, err)
	f := rep.Files[0]
	if f.Outcome != cluster.Failed || !strings.Contains(f.Reason, "on the manager") {
		t.Fatalf("%s on %s: %s, want failed on the manager\n%s", f.Outcome, f.Host, f.Reason, out)
	}
	if strings.Contains(out, "host gamer is down") || strings.Contains(out, "goes back to the queue") {
		t.Fatalf("the manager's full disk was blamed on host gamer:\n%s", out)
	}
	if f.Attempts != 1 {
		t.Fatalf("the file was encoded %d times for one local error\n%s", f.Attempts, out)
	}
	if !exists(src) {
		t.Fatal("source removed")
	}
}

// An output folder the manager cannot write (here a read-only mount) fails
// the file once, with a reason on the manager, instead of an ffmpeg
// failure retried on every host.
func TestUnwritableOutputFolderFailsOnce(t *testing.T) {
	h := newHome(t, "")
	if err := syscall.Mount("tmpfs", h.media, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v)", err)
	}
	t.Cleanup(func() { syscall.Unmount(h.media, syscall.MNT_DETACH) })
	src := h.clip("ro.mp4", 1)
	if err := syscall.Mount("", h.media, "", syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
		t.Skipf("cannot remount read-only (%v)", err)
	}
	rep, out := h.run(false, false, src)
	f := fileOf(rep, src)
	if f == nil || f.Outcome != cluster.Failed || !strings.Contains(f.Reason, "on the manager") || f.Attempts != 1 {
		t.Fatalf("%+v, want failed once on the manager\n%s", f, out)
	}
}

// A library named through a symbolic link (the nightly cron's /mnt/media →
// /volume1/media) is walked, and a mounted host whose path substitution is
// written for the real folder still takes its files.
func TestSymlinkedLibraryOnMountedHost(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.nasYAML())
	src := l.clip("Show/e1.mkv", testenv.Clip{Seconds: 1, AudioLangs: []string{"eng"}})
	link := filepath.Join(l.dir, "mnt-media")
	must(t, os.Symlink(l.media, link))
	rep, out, err := l.run(context.Background(), nil, cluster.WorkItem{Path: link, Cluster: "lab", Profile: "hevc"})
	must(t, err)
	if len(rep.Files) != 1 {
		t.Fatalf("walked %d files through the link, want 1\n%s", len(rep.Files), out)
	}
	f := rep.Files[0]
	if f.Outcome != cluster.Done || f.Host != "nas" {
		t.Fatalf("%s on %s: %s\n%s", f.Outcome, f.Host, f.Reason, out)
	}
	if c := probe(t, src).Video.Codec; c != "hevc" {
		t.Fatalf("%s is %s, want hevc", src, c)
	}
}

// A film whose name holds a newline and concat directives is split over a
// mounted and a streaming host and joined: segment files and the concat
// list use generated names, so nothing of the name reaches the list.
func TestSplitFilmWithHostileName(t *testing.T) {
	l := newLab(t)
	l.writeConfig(l.nasYAML(), l.gamerYAML())
	l.splitProfile("ultrafast")
	l.clip("other.mkv", testenv.Clip{Seconds: 2})
	name := "a\nfile 'other.mkv'\nb.mkv"
	src := l.clip(name, testenv.Clip{Seconds: 12, GOP: 25, AudioLangs: []string{"eng"}})
	frames := len(frameHashes(t, src))
	rep, out, err := l.run(context.Background(), nil, cluster.WorkItem{Path: src, Cluster: "lab", Profile: "split"})
	must(t, err)
	f := rep.Files[0]
	if f.Outcome != cluster.Done || f.Split == nil || f.Split.Segments < 2 {
		t.Fatalf("%s: %s (split %+v)\n%s", f.Outcome, f.Reason, f.Split, out)
	}
	if got := len(frameHashes(t, f.Output)); got != frames {
		t.Fatalf("joined film has %d frames, the source %d", got, frames)
	}
	if left := leftovers(t, l.media, l.work); len(left) > 0 {
		t.Fatalf("temp files left: %q", left)
	}
}
