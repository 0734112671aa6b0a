package hosts_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"clustertx/hosts"
	"clustertx/hosts/hoststest"
	"clustertx/internal/testenv"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// sshEnv isolates a test from the user's ssh setup.
func sshEnv(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "")
	t.Setenv("HOME", t.TempDir())
	hosts.SetSystemSSHConfig(t, filepath.Join(t.TempDir(), "no-system-ssh_config"))
}

func khFile(t *testing.T, servers ...*hoststest.SSHD) string {
	p := filepath.Join(t.TempDir(), "known_hosts")
	hoststest.WriteKnownHosts(t, p, servers...)
	return p
}

func baseOpts(kh string) hosts.SSHOptions {
	return hosts.SSHOptions{KnownHostsFiles: []string{kh}, SSHConfigFile: "none", ConnectTimeout: 5 * time.Second}
}

func dial(t *testing.T, s *hoststest.SSHD, opts hosts.SSHOptions) *hosts.SSHTransport {
	t.Helper()
	opts.Logf = t.Logf
	tr, err := hosts.DialSSH(context.Background(), s.Def("h1"), opts)
	if err != nil {
		t.Fatalf("DialSSH: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func start(t *testing.T) (*hoststest.SSHD, *hosts.SSHTransport) {
	sshEnv(t)
	s := hoststest.StartSSHD(t, hoststest.Options{})
	return s, dial(t, s, baseOpts(khFile(t, s)))
}

func pgrep(t *testing.T, pattern string) []string {
	out, err := exec.Command("pgrep", "-af", pattern).Output()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		t.Fatalf("pgrep: %v", err)
	}
	var res []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && !strings.Contains(l, "pgrep -af") {
			res = append(res, l)
		}
	}
	return res
}

func marker(t *testing.T) string {
	b := make([]byte, 6)
	rand.Read(b)
	return fmt.Sprintf("clustertx-test-%x", b)
}

// Regression for golang/go#29286: the server has ed25519, ECDSA and RSA
// host keys, known_hosts only the ed25519 line.
func TestSSHConnectEd25519OnlyKnownHosts(t *testing.T) {
	s, tr := start(t)
	if !strings.Contains(tr.ServerVersion(), "OpenSSH") {
		t.Errorf("ServerVersion %q", tr.ServerVersion())
	}
	if tr.Addr() != s.Addr {
		t.Errorf("Addr %q, want %q", tr.Addr(), s.Addr)
	}
	if err := tr.Exec(context.Background(), []string{"true"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	// The same known_hosts with x/crypto's default algorithm order fails:
	// proves the setup reproduces the pitfall.
	cb, err := xknownhosts.New(khFile(t, s))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := os.ReadFile(s.IdentityFile)
	signer, _ := ssh.ParsePrivateKey(key)
	_, err = ssh.Dial("tcp", s.Addr, &ssh.ClientConfig{User: s.User, Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: cb, Timeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "key mismatch") {
		t.Errorf("default x/crypto dial: %v, want key mismatch (pitfall no longer reproduced?)", err)
	}
}

func TestSSHUnknownHostRefused(t *testing.T) {
	sshEnv(t)
	s := hoststest.StartSSHD(t, hoststest.Options{})
	missing := filepath.Join(t.TempDir(), "nope", "known_hosts")
	_, err := hosts.DialSSH(context.Background(), s.Def("h1"), baseOpts(missing))
	var hk *hosts.HostKeyError
	if !errors.As(err, &hk) {
		t.Fatalf("err = %v (%T), want *HostKeyError", err, err)
	}
	if hk.Changed || hk.Fingerprint != ssh.FingerprintSHA256(s.HostKeys[0]) {
		t.Errorf("HostKeyError %+v, want unknown with ed25519 fingerprint %s", hk, ssh.FingerprintSHA256(s.HostKeys[0]))
	}
	msg := err.Error()
	for _, want := range []string{"h1", s.Addr, "is not in known_hosts", "ssh-ed25519 key SHA256:", "ssh-keyscan -p " + strconv.Itoa(s.Port) + " 127.0.0.1 >> ", "--accept-new-host-keys"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if hosts.IsTransport(err) {
		t.Error("host key error must not be a TransportError")
	}
	if _, serr := os.Stat(missing); serr == nil {
		t.Error("known_hosts created without AcceptNewHostKeys")
	}
}

func TestSSHAcceptNewHostKeys(t *testing.T) {
	sshEnv(t)
	s1 := hoststest.StartSSHD(t, hoststest.Options{})
	s2 := hoststest.StartSSHD(t, hoststest.Options{})
	kh := filepath.Join(t.TempDir(), "new", "dir", "known_hosts")
	opts := baseOpts(kh)
	opts.AcceptNewHostKeys = true
	var wg sync.WaitGroup
	for _, s := range []*hoststest.SSHD{s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr, err := hosts.DialSSH(context.Background(), s.Def("h"), opts)
			if err != nil {
				t.Errorf("accept-new dial %s: %v", s.Addr, err)
				return
			}
			tr.Close()
		}()
	}
	wg.Wait()
	b, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*hoststest.SSHD{s1, s2} {
		if !strings.Contains(string(b), s.KnownHostsLine+"\n") {
			t.Errorf("known_hosts lacks %q:\n%s", s.KnownHostsLine, b)
		}
	}
	if st, _ := os.Stat(kh); st.Mode().Perm() != 0o600 {
		t.Errorf("known_hosts mode %v", st.Mode())
	}
	// Now trusted without accept-new.
	tr := dial(t, s1, baseOpts(kh))
	if err := tr.Exec(context.Background(), []string{"true"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	if b2, _ := os.ReadFile(kh); !bytes.Equal(b, b2) {
		t.Errorf("known_hosts changed by a trusted dial")
	}
}

// TestSSHAcceptNewHashesNames: accept-new writes hashed names, one line
// each, where ssh would: HashKnownHosts yes in the user's ssh_config or
// the system's (Debian's default), or a known_hosts already hashed. The
// hashed entry is then trusted without accept-new; with HashKnownHosts
// no, the name is written plain even into a hashed file.
func TestSSHAcceptNewHashesNames(t *testing.T) {
	sshEnv(t)
	s := hoststest.StartSSHD(t, hoststest.Options{})
	name := "[127.0.0.1]:" + strconv.Itoa(s.Port)
	for _, tc := range []struct {
		what       string
		user, sys  string // HashKnownHosts in the user's and the system's ssh_config
		prehashed  bool   // known_hosts already holds a hashed line
		wantHashed bool
	}{
		{what: "plain file, no config"},
		{what: "user config", user: "yes", wantHashed: true},
		{what: "system config", sys: "yes", wantHashed: true},
		{what: "user no beats system yes", user: "no", sys: "yes"},
		{what: "hashed file", prehashed: true, wantHashed: true},
		{what: "hashed file, user no", user: "no", prehashed: true},
	} {
		t.Run(tc.what, func(t *testing.T) {
			dir := t.TempDir()
			kh := filepath.Join(dir, "known_hosts")
			if tc.prehashed {
				other := ssh.MarshalAuthorizedKey(otherKey(t))
				writeFile(t, kh, "|1|c2FsdHNhbHRzYWx0c2FsdHNhbHQ=|aGFzaGhhc2hoYXNoaGFzaGhhc2g= "+strings.TrimSpace(string(other)))
			}
			cfg := writeFile(t, filepath.Join(dir, "config"), "Host *")
			if tc.user != "" {
				cfg = writeFile(t, filepath.Join(dir, "config"), "Host *", "  HashKnownHosts "+tc.user)
			}
			if tc.sys != "" {
				hosts.SetSystemSSHConfig(t, writeFile(t, filepath.Join(dir, "system"), "Host *", "  HashKnownHosts "+tc.sys))
			}
			opts := hosts.SSHOptions{KnownHostsFiles: []string{kh}, SSHConfigFile: cfg, AcceptNewHostKeys: true, ConnectTimeout: 5 * time.Second, Logf: t.Logf}
			tr, err := hosts.DialSSH(context.Background(), s.Def("h"), opts)
			if err != nil {
				t.Fatal(err)
			}
			tr.Close()
			b, _ := os.ReadFile(kh)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			added := lines[len(lines)-1]
			if hashed := strings.HasPrefix(added, "|1|"); hashed != tc.wantHashed || tc.wantHashed && strings.Contains(added, "127.0.0.1") {
				t.Fatalf("added %q, want hashed %v", added, tc.wantHashed)
			}
			if !tc.wantHashed && added != s.KnownHostsLine {
				t.Fatalf("added %q, want %q", added, s.KnownHostsLine)
			}
			opts.AcceptNewHostKeys = false // now trusted as recorded
			tr, err = hosts.DialSSH(context.Background(), s.Def("h"), opts)
			if err != nil {
				t.Fatalf("%s recorded as %q, then refused: %v", name, added, err)
			}
			tr.Close()
		})
	}
}

func TestSSHChangedHostKeyRefused(t *testing.T) {
	sshEnv(t)
	s := hoststest.StartSSHD(t, hoststest.Options{})
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewPublicKey(pub)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, []byte(hoststest.KnownHostsLine(s.Addr, other)+"\n"), 0o600)
	for _, accept := range []bool{false, true} {
		opts := baseOpts(kh)
		opts.AcceptNewHostKeys = accept
		_, err := hosts.DialSSH(context.Background(), s.Def("h1"), opts)
		var hk *hosts.HostKeyError
		if !errors.As(err, &hk) || !hk.Changed {
			t.Fatalf("accept=%v: err = %v, want changed HostKeyError", accept, err)
		}
		if hk.Fingerprint != ssh.FingerprintSHA256(s.HostKeys[0]) {
			t.Errorf("fingerprint %s", hk.Fingerprint)
		}
		for _, want := range []string{"man-in-the-middle", "ssh-keygen -R '[127.0.0.1]:" + strconv.Itoa(s.Port) + "'"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("message %q lacks %q", err, want)
			}
		}
	}
	if b, _ := os.ReadFile(kh); strings.Count(string(b), "\n") != 1 {
		t.Errorf("known_hosts modified:\n%s", b)
	}
}

func TestSSHExecExitCodes(t *testing.T) {
	_, tr := start(t)
	ctx := context.Background()
	if err := tr.Exec(ctx, []string{"sh", "-c", "exit 0"}, nil, nil); err != nil {
		t.Fatalf("exit 0: %v", err)
	}
	var stderr bytes.Buffer
	err := tr.Exec(ctx, []string{"sh", "-c", "echo first >&2; echo 'it failed' >&2; exit 1"}, nil, &stderr)
	var xe *hosts.ExitError
	if !errors.As(err, &xe) || xe.Code != 1 || !strings.Contains(xe.Stderr, "it failed") {
		t.Fatalf("err = %#v, want ExitError 1 with stderr tail", err)
	}
	if hosts.IsTransport(err) {
		t.Error("exit 1 is not a transport error")
	}
	if got := stderr.String(); got != "first\nit failed\n" {
		t.Errorf("stderr forwarded %q (pid line must be stripped)", got)
	}
	err = tr.Exec(ctx, []string{"sh", "-c", "exit 42"}, nil, nil)
	if !errors.As(err, &xe) || xe.Code != 42 {
		t.Errorf("exit 42: %v", err)
	}
}

type timedWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	first time.Time
}

func (w *timedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.first.IsZero() {
		w.first = time.Now()
	}
	return w.buf.Write(p)
}

func TestSSHExecStdoutStreams(t *testing.T) {
	_, tr := start(t)
	var w timedWriter
	if err := tr.Exec(context.Background(), []string{"sh", "-c", "echo one; sleep 1; echo two"}, &w, nil); err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	if w.buf.String() != "one\ntwo\n" {
		t.Errorf("stdout %q", w.buf.String())
	}
	if end.Sub(w.first) < 700*time.Millisecond {
		t.Errorf("first stdout arrived %v before the end: not streamed", end.Sub(w.first))
	}
}

func TestSSHExecHostileArgvRoundTrip(t *testing.T) {
	_, tr := start(t)
	pwned := filepath.Join(os.TempDir(), marker(t))
	args := []string{
		"plain", "with space", "it's", `say "hi"`, "$(touch " + pwned + ")", "`touch " + pwned + "`",
		"a;touch " + pwned, "a & b", "a|b", "%PATH%", "!x!", "line1\nline2", "a\tb", "-i", "*?[",
		"~root", "=ls", "$HOME", `back\slash`, "café", "日本", "🎬", "bad\xff\xfe", "", "'",
	}
	var out bytes.Buffer
	if err := tr.Exec(context.Background(), append([]string{"printf", `%s\0`}, args...), &out, nil); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(out.String(), "\x00")
	got = got[:len(got)-1]
	if len(got) != len(args) {
		t.Fatalf("got %d args %q, want %q", len(got), got, args)
	}
	for i := range args {
		if got[i] != args[i] {
			t.Errorf("arg %d: %q, want %q", i, got[i], args[i])
		}
	}
	if _, err := os.Stat(pwned); err == nil {
		os.Remove(pwned)
		t.Fatal("command injection: file created")
	}
}

func TestSSHExecCancelKillsRemote(t *testing.T) {
	s, tr := start(t)
	m := marker(t)
	argv := []string{"ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=duration=60:size=64x48:rate=10",
		"-metadata", "comment=" + m, "-f", "null", "-"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Exec(ctx, argv, nil, nil) }()
	waitStarted(t, m, 5*time.Second, "remote ffmpeg never started")
	time.Sleep(300 * time.Millisecond)
	t0 := time.Now()
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(15 * time.Second):
		t.Fatal("Exec did not return after cancel")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want wrapping context.Canceled", err)
	}
	if el := time.Since(t0); el > 3*time.Second {
		t.Errorf("cancel took %v", el)
	}
	if left := pgrep(t, m); len(left) > 0 {
		t.Fatalf("remote process still running after Exec returned: %q", left)
	}
	// The connection is still usable and the slot was released.
	if err := tr.Exec(context.Background(), []string{"true"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	_ = s
}

// A command that ignores SIGTERM: the watchdog's TERM does nothing, so its
// KILL a second later (or the fallback kill -TERM / kill -KILL of the group
// from a second session) must end it.
func TestSSHExecCancelKillFallback(t *testing.T) {
	_, tr := start(t)
	hosts.SetKillGrace(tr, 500*time.Millisecond)
	m := marker(t)
	argv := []string{"bash", "-c", "trap '' TERM; while :; do sleep 0.2; done", m}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Exec(ctx, argv, nil, nil) }()
	waitStarted(t, m, 5*time.Second, "remote command never started")
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Exec did not return")
	}
	if left := pgrep(t, m); len(left) > 0 {
		t.Fatalf("remote process survived: %q", left)
	}
}

func TestSSHStopMidExecIsTransportError(t *testing.T) {
	s, tr := start(t)
	done := make(chan error, 1)
	go func() { done <- tr.Exec(context.Background(), []string{"sleep", "30"}, nil, nil) }()
	time.Sleep(500 * time.Millisecond)
	s.Stop()
	select {
	case err := <-done:
		var xe *hosts.ExitError
		if errors.As(err, &xe) || !hosts.IsTransport(err) {
			t.Fatalf("err = %v (%T), want TransportError", err, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Exec did not return after sshd died")
	}
	time.Sleep(100 * time.Millisecond)
	if err := tr.Exec(context.Background(), []string{"true"}, nil, nil); !hosts.IsTransport(err) {
		t.Errorf("Exec after death: %v, want TransportError", err)
	}
	if _, err := tr.FreeSpace(context.Background(), "/"); !hosts.IsTransport(err) {
		t.Errorf("FreeSpace after death: %v, want TransportError", err)
	}
}

func TestSSHUploadDownloadRoundTrip(t *testing.T) {
	s, tr := start(t)
	ctx := context.Background()
	data := make([]byte, 3<<20+12345)
	rand.Read(data)
	local := filepath.Join(t.TempDir(), "src.bin")
	os.WriteFile(local, data, 0o644)
	remote := tr.Join(s.Dir, "remote dir $x", "up 'loaded'.bin")
	if err := os.MkdirAll(filepath.Dir(remote), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := tr.Upload(ctx, local, remote); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(remote) // same machine: check what arrived
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatal("uploaded content differs")
	}
	back := filepath.Join(t.TempDir(), "back.bin")
	if err := tr.Download(ctx, remote, back); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(back)
	if sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatal("downloaded content differs")
	}
	sum, ok, err := tr.RemoteSHA256(ctx, remote)
	if err != nil || !ok || sum != fmt.Sprintf("%x", sha256.Sum256(data)) {
		t.Errorf("RemoteSHA256 = %s %v %v", sum, ok, err)
	}
	// Failures leave nothing behind and are transport errors.
	bad := filepath.Join(s.Dir, "no-such-dir", "x.bin")
	if err := tr.Upload(ctx, local, bad); !hosts.IsTransport(err) {
		t.Errorf("upload into missing dir: %v", err)
	}
	partial := filepath.Join(t.TempDir(), "partial.bin")
	if err := tr.Download(ctx, bad, partial); !hosts.IsTransport(err) {
		t.Errorf("download of missing file: %v", err)
	}
	if _, err := os.Stat(partial); err == nil {
		t.Error("partial download left behind")
	}
	// Cancelled upload: prompt, and the remote partial is removed.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := tr.Upload(cctx, local, remote+".c"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled upload: %v", err)
	}
	if _, err := os.Stat(remote + ".c"); err == nil {
		t.Error("cancelled upload left its file")
	}
	if err := tr.Remove(ctx, remote); err != nil {
		t.Fatal(err)
	}
	if err := tr.Remove(ctx, remote); err != nil {
		t.Errorf("removing a missing file: %v", err)
	}
	if _, err := os.Stat(remote); err == nil {
		t.Error("Remove left the file")
	}
}

// concurrentExecs runs n overlapping commands on tr and reports every failure.
func concurrentExecs(t *testing.T, tr *hosts.SSHTransport, n int) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out bytes.Buffer
			if err := tr.Exec(ctx, []string{"sh", "-c", "sleep 0.5; echo ok" + strconv.Itoa(i)}, &out, nil); err != nil {
				errs <- err
				return
			}
			if out.String() != "ok"+strconv.Itoa(i)+"\n" {
				errs <- fmt.Errorf("exec %d: stdout %q", i, out.String())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// More commands than session slots, beside an open SFTP session: they queue
// for slots and all succeed. (sshd may still refuse an open that races the
// close of another session; that refusal is retried — see the test below.)
func TestSSHConcurrentExecs(t *testing.T) {
	s, tr := start(t)
	if free, err := tr.FreeSpace(context.Background(), s.Dir); err != nil || free <= 0 { // also opens the SFTP session
		t.Fatalf("FreeSpace = %d, %v", free, err)
	}
	concurrentExecs(t, tr, 12)
}

// A server whose MaxSessions is below our budget refuses sessions; commands
// that get sessions of their own wait for one of ours to end instead of
// failing. Once nothing of ours is left to free a slot, the refusal is an
// error that names MaxSessions. (On the executor, commands need no session
// of their own: see TestSSHExecutorOneSession.)
func TestSSHSessionsRefusedByMaxSessions(t *testing.T) {
	sshEnv(t)
	s := hoststest.StartSSHD(t, hoststest.Options{ExtraConfig: []string{"MaxSessions 3"}})
	opts := baseOpts(khFile(t, s))
	opts.PerCommandSessions = true
	tr := dial(t, s, opts)
	ctx := context.Background()
	if _, err := tr.FreeSpace(ctx, s.Dir); err != nil { // the SFTP session holds one of the 3
		t.Fatal(err)
	}
	concurrentExecs(t, tr, 6)
	if !strings.Contains(s.Log(), "no more sessions") {
		t.Error("sshd never refused a session: the test did not exercise the retry")
	}

	s1 := hoststest.StartSSHD(t, hoststest.Options{ExtraConfig: []string{"MaxSessions 1"}})
	tr1 := dial(t, s1, baseOpts(khFile(t, s1)))
	hosts.SetRefusedPatience(tr1, 300*time.Millisecond)
	if _, err := tr1.FreeSpace(ctx, s1.Dir); err != nil { // takes the only session
		t.Fatal(err)
	}
	err := tr1.Exec(ctx, []string{"true"}, nil, nil)
	var te *hosts.TransportError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "MaxSessions") {
		t.Errorf("exec with no session left: %v, want a TransportError naming MaxSessions", err)
	}
	if tr1.Err() != nil {
		t.Errorf("a refused session marked the connection dead: %v", tr1.Err())
	}
}

func TestSSHConfigAlias(t *testing.T) {
	sshEnv(t)
	s := hoststest.StartSSHD(t, hoststest.Options{})
	kh := khFile(t, s)
	keyDir := t.TempDir()
	key, _ := os.ReadFile(s.IdentityFile)
	os.WriteFile(filepath.Join(keyDir, "127.0.0.1_id"), key, 0o600)
	cfg := filepath.Join(t.TempDir(), "config")
	os.WriteFile(cfg, []byte(fmt.Sprintf("Host other\n  Port 1\n\nHost media-box\n  HostName 127.0.0.1\n  Port %d\n  User %s\n  IdentityFile %s/%%h_id\n\nHost *\n  User nobody-default\n",
		s.Port, s.User, keyDir)), 0o644)
	opts := baseOpts(kh)
	opts.SSHConfigFile = cfg
	tr, err := hosts.DialSSH(context.Background(), &hosts.Def{Name: "box", Address: "media-box", OS: "linux"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.Addr() != s.Addr || tr.User() != s.User {
		t.Errorf("resolved %s@%s, want %s@%s", tr.User(), tr.Addr(), s.User, s.Addr)
	}
	if err := tr.Exec(context.Background(), []string{"true"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	// transcode.yml wins over ssh_config: a wrong explicit port fails.
	def := &hosts.Def{Name: "box", Address: "media-box", Port: 1}
	if _, err := hosts.DialSSH(context.Background(), def, opts); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("explicit port ignored: %v", err)
	}
}

func TestSSHProxyJump(t *testing.T) {
	sshEnv(t)
	jump := hoststest.StartSSHD(t, hoststest.Options{})
	target := hoststest.StartSSHD(t, hoststest.Options{})
	kh := khFile(t, jump, target)
	cfg := filepath.Join(t.TempDir(), "config")
	os.WriteFile(cfg, []byte(fmt.Sprintf("Host target\n  HostName 127.0.0.1\n  Port %d\n  ProxyJump %s@127.0.0.1:%d\n", target.Port, jump.User, jump.Port)), 0o644)
	opts := baseOpts(kh)
	opts.SSHConfigFile = cfg
	def := &hosts.Def{Name: "t", Address: "target", IdentityFile: target.IdentityFile}
	tr, err := hosts.DialSSH(context.Background(), def, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var out bytes.Buffer
	if err := tr.Exec(context.Background(), []string{"sh", "-c", "echo $SSH_CONNECTION"}, &out, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(strings.TrimSpace(out.String()), " "+strconv.Itoa(target.Port)) {
		t.Errorf("SSH_CONNECTION %q", out.String())
	}
	// The path really goes through the jump host: killing it kills us.
	jump.Stop()
	time.Sleep(200 * time.Millisecond)
	if err := tr.Exec(context.Background(), []string{"true"}, nil, nil); !hosts.IsTransport(err) {
		t.Errorf("after jump host died: %v, want TransportError", err)
	}
	// Jump host key is checked on its own.
	jump.Start(t)
	opts.KnownHostsFiles = []string{khFile(t, target)}
	_, err = hosts.DialSSH(context.Background(), def, opts)
	var hk *hosts.HostKeyError
	if !errors.As(err, &hk) || hk.Addr != jump.Addr {
		t.Errorf("unknown jump host: %v", err)
	}
}

func TestSSHEncryptedKey(t *testing.T) {
	sshEnv(t)
	s := hoststest.StartSSHD(t, hoststest.Options{})
	kh := khFile(t, s)
	raw, _ := os.ReadFile(s.IdentityFile)
	priv, err := ssh.ParseRawPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	enc := filepath.Join(t.TempDir(), "id_enc")
	os.WriteFile(enc, pem.EncodeToMemory(blk), 0o600)
	def := s.Def("h1")
	def.IdentityFile = enc
	_, err = hosts.DialSSH(context.Background(), def, baseOpts(kh))
	if err == nil || !strings.Contains(err.Error(), enc+" is encrypted") || !strings.Contains(err.Error(), "ssh-add") {
		t.Fatalf("err = %v, want encrypted-key hint naming %s", err, enc)
	}
	// With the key in an agent, the same config connects through the agent.
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { agent.ServeAgent(keyring, c); c.Close() }()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
	tr, err := hosts.DialSSH(context.Background(), def, baseOpts(kh))
	if err != nil {
		t.Fatalf("with agent: %v", err)
	}
	tr.Close()
}

func TestSSHHandshakeTimeout(t *testing.T) {
	sshEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // accept and never speak
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	port := l.Addr().(*net.TCPAddr).Port
	key := filepath.Join(t.TempDir(), "id")
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	blk, _ := ssh.MarshalPrivateKey(priv, "")
	os.WriteFile(key, pem.EncodeToMemory(blk), 0o600)
	opts := baseOpts(filepath.Join(t.TempDir(), "kh"))
	opts.ConnectTimeout = time.Second
	t0 := time.Now()
	_, err = hosts.DialSSH(context.Background(), &hosts.Def{Name: "mute", Address: "127.0.0.1", Port: port, IdentityFile: key}, opts)
	el := time.Since(t0)
	if err == nil || !hosts.IsTransport(err) {
		t.Fatalf("err = %v, want TransportError", err)
	}
	if el > 1500*time.Millisecond || el < 900*time.Millisecond {
		t.Errorf("DialSSH took %v with ConnectTimeout 1s", el)
	}
}

func TestSSHKeepAliveDetectsDeadServer(t *testing.T) {
	sshEnv(t)
	s := hoststest.StartSSHD(t, hoststest.Options{})
	opts := baseOpts(khFile(t, s))
	opts.KeepAliveInterval = 200 * time.Millisecond
	opts.KeepAliveMax = 3
	tr := dial(t, s, opts)
	if err := tr.Exec(context.Background(), []string{"true"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // keepalives answered: still alive
	if tr.Err() != nil {
		t.Fatalf("healthy connection declared dead: %v", tr.Err())
	}
	pids := s.ConnectionPIDs()
	if len(pids) == 0 {
		t.Fatal("no per-connection sshd found")
	}
	done := make(chan error, 1)
	go func() { done <- tr.Exec(context.Background(), []string{"sleep", "20"}, nil, nil) }()
	time.Sleep(200 * time.Millisecond)
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGSTOP)
	}
	defer func() {
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGCONT)
		}
	}()
	t0 := time.Now()
	select {
	case err := <-done:
		if !hosts.IsTransport(err) {
			t.Fatalf("err = %v, want TransportError", err)
		}
		if el := time.Since(t0); el > 200*time.Millisecond*4+time.Second {
			t.Errorf("dead connection detected after %v", el)
		}
		t.Logf("detected after %v: %v", time.Since(t0), err)
	case <-time.After(10 * time.Second):
		t.Fatal("keepalive did not detect the stopped server")
	}
	if _, err := tr.FreeSpace(context.Background(), "/"); !hosts.IsTransport(err) {
		t.Errorf("FreeSpace after death: %v", err)
	}
}

var _ io.Writer = (*timedWriter)(nil)

// tapOnce passes a download's writes through, but the first time do
// returns bytes it writes those instead of the ones received.
type tapOnce struct {
	w    io.Writer
	n    int
	do   func(n int, p []byte) []byte
	done bool
}

func (t *tapOnce) Write(p []byte) (int, error) {
	t.n++
	if !t.done {
		if q := t.do(t.n, p); q != nil {
			t.done = true
			if _, err := t.w.Write(q); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return t.w.Write(p)
}

// checkPath is a PATH folder for a host whose cksum is not GNU
// coreutils ≥ 9.0: with oldCksum, a cksum that says it is coreutils 8.32
// (and computes as the real one); without, no cksum at all. Everything
// else the tests use is there, perl (the executor) and openssl included.
func checkPath(t *testing.T, oldCksum bool) string {
	dir := t.TempDir()
	for _, tool := range []string{"sh", "bash", "perl", "setsid", "sleep", "echo", "cat", "kill", "true", "printf", "df", "openssl", "sha256sum"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			continue
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	if oldCksum {
		real, err := exec.LookPath("cksum")
		if err != nil {
			t.Skip("no cksum")
		}
		script := "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'cksum (GNU coreutils) 8.32'; exit 0; fi\nexec " + hosts.QuotePOSIX(real) + " \"$@\"\n"
		if err := os.WriteFile(filepath.Join(dir, "cksum"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// checkHost is a test host and the check its downloads should get.
type checkHost struct {
	name string
	s    *hoststest.SSHD
	tr   *hosts.SSHTransport
	want string // "cksum" or "SHA-256", as mismatch errors name them
}

// checkHosts starts this machine's host (GNU cksum ≥ 9.0: the CRC), one
// whose cksum is coreutils 8.32 and, with noCksum, one with no cksum (both
// SHA-256).
func checkHosts(t *testing.T, noCksum bool) []checkHost {
	testenv.Need(t, "cksum")
	if out, _ := exec.Command("cksum", "--version").Output(); !regexp.MustCompile(`^cksum \(GNU coreutils\) (9|[1-9][0-9])\.`).Match(out) {
		hoststest.SkipOrFail(t, "cksum here is not GNU coreutils ≥ 9.0: %q", out)
	}
	s, tr := start(t)
	hs := []checkHost{{"gnu-cksum", s, tr, "cksum"}}
	s, tr = startWith(t, hoststest.Options{Path: checkPath(t, true)}, false)
	hs = append(hs, checkHost{"cksum-8.32", s, tr, "SHA-256"})
	if noCksum {
		s, tr = startWith(t, hoststest.Options{Path: checkPath(t, false)}, false)
		hs = append(hs, checkHost{"no-cksum", s, tr, "SHA-256"})
	}
	return hs
}

// A download whose bytes are damaged between the SFTP client and the
// local file (as a reassembly bug would) keeps its size: the comparison
// with the CRC or hash computed on the host catches it, and no file is
// left. Hosts with GNU cksum ≥ 9.0 get the CRC, the others SHA-256; a
// clean download from each passes.
func TestSSHDownloadDetectsCorruption(t *testing.T) {
	for _, h := range checkHosts(t, true) {
		t.Run(h.name, func(t *testing.T) {
			remote := filepath.Join(h.s.Dir, "out.bin")
			data := make([]byte, 8<<20+3)
			rand.Read(data)
			if err := os.WriteFile(remote, data, 0o644); err != nil {
				t.Fatal(err)
			}
			local := filepath.Join(t.TempDir(), "back.bin")
			if err := h.tr.Download(context.Background(), remote, local); err != nil {
				t.Fatalf("clean download: %v", err)
			}
			if got, _ := os.ReadFile(local); !bytes.Equal(got, data) {
				t.Fatal("clean download differs")
			}
			hosts.SetDownloadTap(t, func(w io.Writer) io.Writer {
				return &tapOnce{w: w, do: func(n int, p []byte) []byte {
					if n < 3 {
						return nil
					}
					q := append([]byte(nil), p...)
					q[len(q)/2] ^= 1
					return q
				}}
			})
			err := h.tr.Download(context.Background(), remote, local)
			if !hosts.IsTransport(err) || !strings.Contains(err.Error(), h.want+" mismatch") {
				t.Fatalf("download of damaged bytes: %v, want a %s mismatch", err, h.want)
			}
			if _, err := os.Stat(local); err == nil {
				t.Error("damaged download left behind")
			}
		})
	}
}

// A download streams over an SFTP session of its own; where the server
// refuses it one (here MaxSessions 2: the shared SFTP session and the
// executor's take both), pkg/sftp's client reads the file instead, checked
// the same way.
func TestSSHDownloadWithoutASessionToSpare(t *testing.T) {
	s, tr := startWith(t, hoststest.Options{ExtraConfig: []string{"MaxSessions 2"}}, false)
	ctx := context.Background()
	remote := filepath.Join(s.Dir, "out.bin")
	data := make([]byte, 3<<20+5)
	rand.Read(data)
	if err := os.WriteFile(remote, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tr.RemoteSHA256(ctx, remote); err != nil { // the executor's session
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "back.bin")
	if err := tr.Download(ctx, remote, local); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(local); !bytes.Equal(got, data) {
		t.Fatal("download differs")
	}
	if !strings.Contains(s.Log(), "no more sessions") {
		t.Error("sshd refused no session: the fallback was not exercised")
	}
}

// A download cancelled while it streams stops promptly with the
// context's error, leaves no file, and leaves the connection usable.
func TestSSHDownloadCancelledMidway(t *testing.T) {
	s, tr := start(t)
	remote := filepath.Join(s.Dir, "big.bin")
	data := make([]byte, 64<<20)
	rand.Read(data)
	if err := os.WriteFile(remote, data, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hosts.SetDownloadTap(t, func(w io.Writer) io.Writer {
		return &tapOnce{w: w, do: func(n int, p []byte) []byte {
			if n == 3 {
				cancel()
			}
			return nil
		}}
	})
	local := filepath.Join(t.TempDir(), "back.bin")
	start := time.Now()
	if err := tr.Download(ctx, remote, local); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled download: %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cancelled download took %v", d)
	}
	if _, err := os.Stat(local); err == nil {
		t.Error("cancelled download left a file")
	}
	hosts.SetDownloadTap(t, nil)
	if err := tr.Download(context.Background(), remote, local); err != nil {
		t.Fatalf("download after a cancelled one: %v", err)
	}
	if got, _ := os.ReadFile(local); !bytes.Equal(got, data) {
		t.Fatal("download after a cancelled one differs")
	}
}

// The remote file shrinking or growing while it is read is an error, not
// a shorter or longer copy. The change is made on the first bytes
// received: the download has asked for at most 64 reads of 128 KiB by
// then (the streamed one, as pkg/sftp's), a quarter of the file.
func TestSSHDownloadDetectsRemoteChange(t *testing.T) {
	for _, h := range checkHosts(t, false) {
		t.Run(h.name, func(t *testing.T) { testDownloadRemoteChange(t, h.s, h.tr) })
	}
}

func testDownloadRemoteChange(t *testing.T, s *hoststest.SSHD, tr *hosts.SSHTransport) {
	for _, tc := range []struct {
		name   string
		change func(path string) error
		want   string
	}{
		{"truncated", func(p string) error { return os.Truncate(p, 16<<20) }, "short read"},
		{"grown", func(p string) error {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write(make([]byte, 1<<20))
			return err
		}, "changed during the download"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remote := filepath.Join(s.Dir, tc.name+".bin")
			data := make([]byte, 32<<20)
			rand.Read(data)
			if err := os.WriteFile(remote, data, 0o644); err != nil {
				t.Fatal(err)
			}
			hosts.SetDownloadTap(t, func(w io.Writer) io.Writer {
				return &tapOnce{w: w, do: func(_ int, p []byte) []byte {
					if err := tc.change(remote); err != nil {
						t.Error(err)
					}
					return p // once
				}}
			})
			local := filepath.Join(t.TempDir(), "back.bin")
			err := tr.Download(context.Background(), remote, local)
			if !hosts.IsTransport(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("download of a remote file %s meanwhile: %v, want %q", tc.name, err, tc.want)
			}
			if _, err := os.Stat(local); err == nil {
				t.Error("download left behind")
			}
		})
	}
}
