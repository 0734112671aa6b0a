package hoststest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"clustertx/hosts"
)

// Host is one transport under test, as a conformance factory makes it.
// RunConformance reads and writes the host's files directly, so the host
// must share this machine's filesystem and process table (the local host,
// a Fake, an sshd on loopback).
type Host struct {
	Transport hosts.Transport
	// Dir is an empty folder the login user may write, in the host's path
	// syntax: what a streaming host's working_dir would be.
	Dir string
	// Kill makes the host unreachable as a dead connection or a dead host
	// does (sshd killed, Fake.Die). nil for a transport that cannot lose its
	// host (the local one): that case is then skipped.
	Kill func()
}

// Factory makes a fresh host for one conformance case and registers its
// cleanup with t.
type Factory func(t *testing.T) Host

// RunConformance checks, case by case in subtests, the promises of
// hosts.Transport that the manager relies on, so that every transport (the
// local host, SSH/SFTP, and the Fake that fast tests use in their place)
// keeps the same contract:
//
//   - exec/argv: argv reaches the program word for word, hostile names
//     included, and nothing in it is run by a shell;
//   - exec/exit: exit status and the last stderr lines in *hosts.ExitError
//     (not a transport error), stdout and stderr forwarded, 127 for a
//     program that is not there;
//   - exec/streams: output arrives while the command runs (progress);
//   - exec/cancel: a cancelled command is gone with every process it
//     started (a wrapper script that forks, as `ffmpeg:` wrappers do)
//     when Exec returns, promptly, with an error wrapping context.Canceled;
//   - exec/cancel-stubborn: the same when the wrapper dies on SIGTERM but
//     its child ignores it (ffmpeg flushing x265's lookahead): SIGKILL
//     follows within about a second;
//   - exec/concurrent: the slots of a host run commands at once;
//   - transfer/roundtrip: upload and download keep every byte (checked by
//     size and SHA-256), truncate what was there, and take hostile names;
//   - transfer/missing: a missing or unwritable local side is a
//     *hosts.LocalError, a missing remote side a *hosts.TransportError, and
//     a failed transfer leaves no file behind;
//   - transfer/cancel: a cancelled transfer leaves nothing;
//   - remove: removes, and a missing file is not an error;
//   - freespace: the free bytes of a folder, an error for a missing one;
//   - workingdir: hosts.Check finds a usable working_dir and refuses a
//     missing one;
//   - join: the host's separator;
//   - dead: once the host is gone, a running command and every later call
//     fail with a *hosts.TransportError (never an ExitError: the job goes
//     back to the queue instead of counting as a failed encode).
func RunConformance(t *testing.T, newHost Factory) {
	cases := []struct {
		name string
		fn   func(*testing.T, Host)
	}{
		{"exec/argv", confArgv},
		{"exec/exit", confExit},
		{"exec/streams", confStreams},
		{"exec/cancel", confCancel},
		{"exec/cancel-stubborn", confCancelStubborn},
		{"exec/concurrent", confConcurrent},
		{"transfer/roundtrip", confRoundTrip},
		{"transfer/missing", confMissing},
		{"transfer/cancel", confTransferCancel},
		{"remove", confRemove},
		{"freespace", confFreeSpace},
		{"workingdir", confWorkingDir},
		{"join", confJoin},
		{"dead", confDead},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, newHost(t)) })
	}
}

// HostileNames are file names and arguments that break naive quoting.
var HostileNames = []string{
	"plain", "with space", "it's", `say "hi"`, "$(touch PWNED)", "`touch PWNED`",
	"a;touch PWNED", "a & b", "a|b", "%PATH%", "!x!", "line1\nline2", "a\tb", "-i", "--",
	"*?[", "~root", "=ls", "$HOME", `back\slash`, "café", "日本", "🎬", "bad\xff\xfe", "", "'",
}

func confMarker() string {
	b := make([]byte, 6)
	rand.Read(b)
	return fmt.Sprintf("clustertx-conf-%x", b)
}

func confArgv(t *testing.T, h Host) {
	pwned := filepath.Join(h.Dir, "PWNED")
	var args []string
	for _, a := range HostileNames {
		args = append(args, strings.ReplaceAll(a, "PWNED", pwned))
	}
	var out bytes.Buffer
	if err := h.Transport.Exec(context.Background(), append([]string{"printf", `%s\0`}, args...), &out, nil); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(out.String(), "\x00")
	got = got[:len(got)-1]
	if len(got) != len(args) {
		t.Fatalf("program got %d arguments %q, want %d %q", len(got), got, len(args), args)
	}
	for i := range args {
		if got[i] != args[i] {
			t.Errorf("argument %d arrived as %q, want %q", i, got[i], args[i])
		}
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("an argument was run by a shell: PWNED created")
	}
}

func confExit(t *testing.T, h Host) {
	ctx := context.Background()
	var stdout, stderr bytes.Buffer
	err := h.Transport.Exec(ctx, []string{"sh", "-c", "echo out; echo first >&2; echo 'it failed' >&2; exit 3"}, &stdout, &stderr)
	var xe *hosts.ExitError
	if !errors.As(err, &xe) || xe.Code != 3 || !strings.Contains(xe.Stderr, "it failed") {
		t.Fatalf("err = %#v, want *ExitError 3 with the stderr tail", err)
	}
	if hosts.IsTransport(err) {
		t.Error("a non-zero exit is a transport error")
	}
	if stdout.String() != "out\n" || stderr.String() != "first\nit failed\n" {
		t.Errorf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	if err := h.Transport.Exec(ctx, []string{"sh", "-c", "exit 0"}, nil, nil); err != nil {
		t.Errorf("exit 0: %v", err)
	}
	err = h.Transport.Exec(ctx, []string{"clustertx-no-such-program", "-version"}, nil, nil)
	if !errors.As(err, &xe) || xe.Code != 127 {
		t.Errorf("missing program: err = %v (%T), want *ExitError 127", err, err)
	}
}

func confStreams(t *testing.T, h Host) {
	var mu sync.Mutex
	var first time.Time
	var buf bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if first.IsZero() {
			first = time.Now()
		}
		return buf.Write(p)
	})
	if err := h.Transport.Exec(context.Background(), []string{"sh", "-c", "echo one; sleep 1; echo two"}, w, nil); err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	mu.Lock()
	defer mu.Unlock()
	if buf.String() != "one\ntwo\n" {
		t.Errorf("stdout %q", buf.String())
	}
	if first.IsZero() || end.Sub(first) < 600*time.Millisecond {
		t.Errorf("first output arrived %v before the end: not streamed", end.Sub(first))
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func confCancel(t *testing.T, h Host) {
	cancelWrapped(t, h, "while :; do sleep 0.1; done", 4*time.Second)
}

func confCancelStubborn(t *testing.T, h Host) {
	cancelWrapped(t, h, "trap '' TERM; while :; do sleep 0.1; done", 2500*time.Millisecond)
}

// cancelWrapped cancels a wrapper script running loop as its child and
// checks that Exec returns within limit with nothing left running.
func cancelWrapped(t *testing.T, h Host, loop string, limit time.Duration) {
	m := confMarker()
	// A wrapper without exec, as `ffmpeg:` wrappers are: the loop tagged
	// with m is its child, not the process the transport started.
	script := filepath.Join(h.Dir, "wrapper")
	body := "#!/bin/sh\nsh -c " + hosts.QuotePOSIX(loop) + " " + m + "\necho unreachable\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.Transport.Exec(ctx, []string{script}, nil, nil) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(ProcessesWith(m)) == 0 {
		select {
		case err := <-done:
			t.Fatalf("command ended before it was cancelled: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the wrapped command never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t0 := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want wrapping context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Exec did not return after cancel")
	}
	if el := time.Since(t0); el > limit {
		t.Errorf("cancel took %v, more than %v", el, limit)
	}
	if left := waitNoProcess(m, time.Second); len(left) > 0 {
		t.Fatalf("the wrapper's child still runs after cancel: %q", left)
	}
	// The host still works, and the slot was given back.
	if err := h.Transport.Exec(context.Background(), []string{"true"}, nil, nil); err != nil {
		t.Errorf("exec after a cancel: %v", err)
	}
}

func confConcurrent(t *testing.T, h Host) {
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	outs := make([]bytes.Buffer, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = h.Transport.Exec(context.Background(), []string{"sh", "-c", `sleep 0.5; echo "$0"`, "slot" + strconv.Itoa(i)}, &outs[i], nil)
		}()
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		if errs[i] != nil || outs[i].String() != "slot"+strconv.Itoa(i)+"\n" {
			t.Errorf("command %d: %v, output %q", i, errs[i], outs[i].String())
		}
	}
	if el := time.Since(start); el > 1800*time.Millisecond {
		t.Errorf("%d commands of 0.5 s took %v: not run at once", n, el)
	}
}

func randomFile(t *testing.T, path string, size int) []byte {
	t.Helper()
	data := make([]byte, size)
	rand.Read(data)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

func sameContent(t *testing.T, what, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if len(got) != len(want) || sha256.Sum256(got) != sha256.Sum256(want) {
		t.Fatalf("%s: %d bytes, want %d, or their SHA-256 differs", what, len(got), len(want))
	}
}

func confRoundTrip(t *testing.T, h Host) {
	ctx := context.Background()
	tr := h.Transport
	local := t.TempDir()
	for _, name := range []string{"up 'loaded' $x.bin", "line\nbreak;`x`.bin", "empty.bin"} {
		size := 3<<20 + 12345
		if name == "empty.bin" {
			size = 0
		}
		src := filepath.Join(local, "src.bin")
		data := randomFile(t, src, size)
		remote := tr.Join(h.Dir, name)
		// Something longer is there already: it must be truncated.
		randomFile(t, remote, size+4096)
		if err := tr.Upload(ctx, src, remote); err != nil {
			t.Fatalf("upload %q: %v", name, err)
		}
		sameContent(t, "uploaded "+name, remote, data)
		back := filepath.Join(local, "back.bin")
		randomFile(t, back, size+4096)
		if err := tr.Download(ctx, remote, back); err != nil {
			t.Fatalf("download %q: %v", name, err)
		}
		sameContent(t, "downloaded "+name, back, data)
	}
}

func confMissing(t *testing.T, h Host) {
	ctx := context.Background()
	tr := h.Transport
	local := t.TempDir()
	src := filepath.Join(local, "src.bin")
	randomFile(t, src, 1<<16)
	remote := tr.Join(h.Dir, "dst.bin")

	err := tr.Upload(ctx, filepath.Join(local, "gone.bin"), remote)
	if !hosts.IsLocal(err) || hosts.IsTransport(err) {
		t.Errorf("upload of a missing local file: %v (%T), want *LocalError only", err, err)
	}
	mustBeAbsent(t, remote)

	inMissing := tr.Join(h.Dir, "no-such-dir", "dst.bin")
	err = tr.Upload(ctx, src, inMissing)
	if !hosts.IsTransport(err) || hosts.IsLocal(err) {
		t.Errorf("upload into a missing remote folder: %v (%T), want *TransportError", err, err)
	}
	mustBeAbsent(t, inMissing)

	dst := filepath.Join(local, "dst.bin")
	err = tr.Download(ctx, tr.Join(h.Dir, "gone.bin"), dst)
	if !hosts.IsTransport(err) || hosts.IsLocal(err) {
		t.Errorf("download of a missing remote file: %v (%T), want *TransportError", err, err)
	}
	mustBeAbsent(t, dst)

	if err := tr.Upload(ctx, src, remote); err != nil {
		t.Fatal(err)
	}
	err = tr.Download(ctx, remote, filepath.Join(local, "no-such-dir", "dst.bin"))
	if !hosts.IsLocal(err) || hosts.IsTransport(err) {
		t.Errorf("download into a missing local folder: %v (%T), want *LocalError only", err, err)
	}
}

func mustBeAbsent(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); err == nil {
		t.Errorf("%s exists after a failed transfer", path)
	}
}

func confTransferCancel(t *testing.T, h Host) {
	tr := h.Transport
	local := t.TempDir()
	src := filepath.Join(local, "src.bin")
	randomFile(t, src, 1<<20)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	remote := tr.Join(h.Dir, "cancelled.bin")
	if err := tr.Upload(ctx, src, remote); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled upload: %v, want wrapping context.Canceled", err)
	}
	mustBeAbsent(t, remote)
	if err := tr.Upload(context.Background(), src, remote); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(local, "cancelled.bin")
	if err := tr.Download(ctx, remote, dst); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled download: %v, want wrapping context.Canceled", err)
	}
	mustBeAbsent(t, dst)
}

func confRemove(t *testing.T, h Host) {
	ctx := context.Background()
	p := h.Transport.Join(h.Dir, "it's $here.mkv")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.Transport.Remove(ctx, p); err != nil {
		t.Fatal(err)
	}
	mustBeAbsent(t, p)
	if err := h.Transport.Remove(ctx, p); err != nil {
		t.Errorf("removing a missing file: %v", err)
	}
	if err := h.Transport.Remove(ctx, h.Transport.Join(h.Dir, "no-such-dir", "x")); err != nil {
		t.Errorf("removing in a missing folder: %v", err)
	}
}

func confFreeSpace(t *testing.T, h Host) {
	ctx := context.Background()
	free, err := h.Transport.FreeSpace(ctx, h.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(h.Dir, &st); err != nil {
		t.Fatal(err)
	}
	want := int64(st.Bavail) * int64(st.Bsize)
	if diff := free - want; free <= 0 || diff > want/10+256<<20 || -diff > want/10+256<<20 {
		t.Errorf("FreeSpace = %d, statfs says %d", free, want)
	}
	if _, err := h.Transport.FreeSpace(ctx, h.Transport.Join(h.Dir, "no-such-dir")); err == nil {
		t.Error("FreeSpace of a missing folder: no error")
	}
}

func confWorkingDir(t *testing.T, h Host) {
	ctx := context.Background()
	def := &hosts.Def{Name: "conf", Type: hosts.Streaming, OS: "linux", FFmpeg: "true", WorkingDir: h.Dir, Enabled: true}
	if res := hosts.Check(ctx, def, h.Transport); !res.Up || res.Free <= 0 {
		t.Errorf("Check with working_dir %s: %+v", h.Dir, res)
	}
	def.WorkingDir = h.Transport.Join(h.Dir, "no-such-dir")
	if res := hosts.Check(ctx, def, h.Transport); res.Up || !strings.Contains(res.Reason, "does not exist or is not writable") {
		t.Errorf("Check with a missing working_dir: %+v", res)
	}
	def.WorkingDir, def.FFmpeg = h.Dir, "clustertx-no-such-ffmpeg"
	if res := hosts.Check(ctx, def, h.Transport); res.Up || !strings.Contains(res.Reason, "not found") {
		t.Errorf("Check with a missing ffmpeg: %+v", res)
	}
}

func confJoin(t *testing.T, h Host) {
	if got, want := h.Transport.Join(h.Dir, "a b", "c.mkv"), h.Dir+"/a b/c.mkv"; got != want {
		t.Errorf("Join = %q, want %q", got, want)
	}
}

func confDead(t *testing.T, h Host) {
	if h.Kill == nil {
		t.Skip("this transport cannot lose its host")
	}
	ctx := context.Background()
	tr := h.Transport
	local := t.TempDir()
	src := filepath.Join(local, "src.bin")
	randomFile(t, src, 1<<16)
	remote := tr.Join(h.Dir, "there.bin")
	if err := tr.Upload(ctx, src, remote); err != nil {
		t.Fatal(err)
	}
	m := confMarker()
	done := make(chan error, 1)
	go func() { done <- tr.Exec(ctx, []string{"sh", "-c", "while :; do sleep 0.1; done", m}, nil, nil) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(ProcessesWith(m)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("command never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.Kill()
	select {
	case err := <-done:
		var xe *hosts.ExitError
		if !hosts.IsTransport(err) || errors.As(err, &xe) {
			t.Errorf("running command when the host died: %v (%T), want *TransportError", err, err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Exec did not return after the host died")
	}
	for what, err := range map[string]error{
		"exec":      tr.Exec(ctx, []string{"true"}, nil, nil),
		"upload":    tr.Upload(ctx, src, remote+".2"),
		"download":  tr.Download(ctx, remote, filepath.Join(local, "back.bin")),
		"remove":    tr.Remove(ctx, remote),
		"freespace": func() error { _, err := tr.FreeSpace(ctx, h.Dir); return err }(),
	} {
		if !hosts.IsTransport(err) {
			t.Errorf("%s after the host died: %v (%T), want *TransportError", what, err, err)
		}
	}
	if left := waitNoProcess(m, 5*time.Second); len(left) > 0 {
		t.Errorf("command still runs after its host died: %q", left)
	}
}

// ProcessesWith lists the processes of this machine (other than this test
// process) whose command line contains s, as "pid cmdline".
func ProcessesWith(s string) []string {
	self := os.Getpid()
	var out []string
	for _, p := range allPIDs() {
		if p == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
		if err != nil || !bytes.Contains(b, []byte(s)) {
			continue
		}
		if st, ok := procState(p); ok && st == 'Z' {
			continue // exited, not yet reaped: it runs nothing
		}
		out = append(out, strconv.Itoa(p)+" "+string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
	}
	return out
}

func procState(pid int) (byte, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0, false
	}
	return b[i+2], true
}

func waitNoProcess(s string, d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		left := ProcessesWith(s)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(50 * time.Millisecond)
	}
}
