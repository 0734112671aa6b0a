// Package hoststest holds the test hosts: real OpenSSH servers
// (/usr/sbin/sshd) on loopback, so that SSH transports are tested against
// the server they meet in production (host-key negotiation, MaxSessions,
// shell interpretation, sftp-server packet limits, signal semantics); Fake,
// a fast transport without SSH whose death tests control; and
// RunConformance, the one suite of hosts.Transport promises that the local
// transport, Fake and SSH/SFTP all pass, so that tests using the Fake test
// what production does; and FakeHW, an ffmpeg wrapper that gives a test
// host NVENC and QSV encoders (x265/x264 underneath) that fail like real
// drivers on demand.
//
// Each server gets a temp directory with its config, host keys (ed25519,
// ECDSA, RSA), authorized_keys and log. The client key (ed25519) is the
// same for every server of a test process. Servers are stopped, with every
// process they spawned, when the test ends; the sshd log is dumped when the
// test failed.
//
// When sshd is missing the tests are skipped, unless the environment sets
// CLUSTERTX_TEST_DISALLOW_SKIP=1 (CI), which turns the skip into a failure.
package hoststest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"clustertx/hosts"

	"golang.org/x/crypto/ssh"
)

// SSHDPath and SFTPServerPath are the OpenSSH binaries used.
var (
	SSHDPath       = "/usr/sbin/sshd"
	SFTPServerPath = "/usr/lib/openssh/sftp-server"
)

// Options tunes a server.
type Options struct {
	// ExtraConfig are extra sshd_config lines. Plain keywords override the
	// harness defaults (sshd uses the first value it reads); Match blocks go
	// after the defaults.
	ExtraConfig []string
	// SlowBashrc, when set, gives the server's sessions a ~/.bashrc of
	// their own that takes this long, as conda, pyenv or nvm init does on
	// real hosts: HOME is a folder of the server's whose .bashrc appends a
	// line to SSHD.BashrcLog and sleeps, and sessions start as sshd starts
	// them for real (SHLVL unset), so that bash reads it for every SSH
	// command. The login shell must be bash (it is skipped otherwise).
	SlowBashrc time.Duration
	// Path, when set, is the sessions' PATH (a folder without perl, say,
	// for a host that lacks it).
	Path string
}

// SSHD is a running (or stopped) OpenSSH server on loopback.
type SSHD struct {
	Host           string // "127.0.0.1"
	Port           int
	Addr           string          // "127.0.0.1:PORT"
	User           string          // login user: the current user
	Dir            string          // config, host keys, authorized_keys, log
	IdentityFile   string          // client private key (ed25519) authorised on this server
	KnownHostsLine string          // "[127.0.0.1]:PORT ssh-ed25519 AAAA…" (ed25519 only, on purpose)
	HostKeys       []ssh.PublicKey // ed25519, ecdsa, rsa host public keys
	ConfigFile     string
	LogFile        string
	// BashrcLog gets a line each time a session's shell reads ~/.bashrc
	// (Options.SlowBashrc; "" otherwise).
	BashrcLog string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// SkipOrFail skips the test, or fails it when CLUSTERTX_TEST_DISALLOW_SKIP=1.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CLUSTERTX_TEST_DISALLOW_SKIP") == "1" {
		t.Fatalf("CLUSTERTX_TEST_DISALLOW_SKIP=1 but: "+format, args...)
	}
	t.Skipf(format, args...)
}

var clientKey struct {
	once sync.Once
	pem  []byte
	pub  ssh.PublicKey
	err  error
}

func loadClientKey() ([]byte, ssh.PublicKey, error) {
	clientKey.once.Do(func() {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			clientKey.err = err
			return
		}
		blk, err := ssh.MarshalPrivateKey(priv, "clustertx test client")
		if err != nil {
			clientKey.err = err
			return
		}
		clientKey.pem = pem.EncodeToMemory(blk)
		clientKey.pub, clientKey.err = ssh.NewPublicKey(pub)
	})
	return clientKey.pem, clientKey.pub, clientKey.err
}

func writeHostKeys(dir string) ([]string, []ssh.PublicKey, error) {
	type gen struct {
		name string
		key  func() (any, error)
	}
	gens := []gen{
		{"ed25519", func() (any, error) { _, k, err := ed25519.GenerateKey(rand.Reader); return k, err }},
		{"ecdsa", func() (any, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }},
		{"rsa", func() (any, error) { return rsa.GenerateKey(rand.Reader, 2048) }},
	}
	var files []string
	var pubs []ssh.PublicKey
	for _, g := range gens {
		k, err := g.key()
		if err != nil {
			return nil, nil, err
		}
		blk, err := ssh.MarshalPrivateKey(k, "")
		if err != nil {
			return nil, nil, err
		}
		signer, err := ssh.NewSignerFromKey(k)
		if err != nil {
			return nil, nil, err
		}
		f := filepath.Join(dir, "ssh_host_"+g.name+"_key")
		if err := os.WriteFile(f, pem.EncodeToMemory(blk), 0o600); err != nil {
			return nil, nil, err
		}
		if err := os.WriteFile(f+".pub", ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o644); err != nil {
			return nil, nil, err
		}
		files = append(files, f)
		pubs = append(pubs, signer.PublicKey())
	}
	return files, pubs, nil
}

// StartSSHD starts an sshd on a free loopback port and registers its
// cleanup with t.
func StartSSHD(t testing.TB, opts Options) *SSHD {
	t.Helper()
	for _, bin := range []string{SSHDPath, SFTPServerPath} {
		if _, err := os.Stat(bin); err != nil {
			SkipOrFail(t, "OpenSSH server not available: %v", err)
		}
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		SkipOrFail(t, "sshd privilege separation dir: %v", err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatalf("current user: %v", err)
	}
	s := &SSHD{Host: "127.0.0.1", User: u.Username, Dir: t.TempDir()}
	keyFiles, pubs, err := writeHostKeys(s.Dir)
	if err != nil {
		t.Fatalf("host keys: %v", err)
	}
	s.HostKeys = pubs
	cpem, cpub, err := loadClientKey()
	if err != nil {
		t.Fatalf("client key: %v", err)
	}
	s.IdentityFile = filepath.Join(s.Dir, "id_ed25519")
	if err := os.WriteFile(s.IdentityFile, cpem, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.IdentityFile+".pub", ssh.MarshalAuthorizedKey(cpub), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir, "authorized_keys"), ssh.MarshalAuthorizedKey(cpub), 0o600); err != nil {
		t.Fatal(err)
	}
	s.LogFile = filepath.Join(s.Dir, "sshd.log")
	if opts.SlowBashrc > 0 {
		s.writeBashrc(t, opts.SlowBashrc)
	}
	s.ConfigFile = filepath.Join(s.Dir, "sshd_config")

	var lastErr error
	for attempt := 0; attempt < 8; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		s.setPort(port)
		if err := s.writeConfig(keyFiles, opts); err != nil {
			t.Fatal(err)
		}
		if lastErr = s.start(); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("sshd did not start: %v\n%s", lastErr, s.Log())
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sshd %s log (%s):\n%s", s.Addr, s.LogFile, s.Log())
		}
		s.Stop()
	})
	return s
}

func (s *SSHD) setPort(port int) {
	s.Port = port
	s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(port))
	s.KnownHostsLine = KnownHostsLine(s.Addr, s.HostKeys[0])
}

// KnownHostsLine is the known_hosts line for key at addr (host:port).
func KnownHostsLine(addr string, key ssh.PublicKey) string {
	host, port, _ := net.SplitHostPort(addr)
	name := host
	if port != "22" {
		name = "[" + host + "]:" + port
	}
	return name + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *SSHD) writeConfig(keyFiles []string, opts Options) error {
	var b strings.Builder
	var match []string
	inMatch := false
	for _, l := range opts.ExtraConfig {
		if f := strings.Fields(l); len(f) > 0 && strings.EqualFold(f[0], "Match") {
			inMatch = true
		}
		if inMatch {
			match = append(match, l)
		} else {
			b.WriteString(l + "\n")
		}
	}
	fmt.Fprintf(&b, "Port %d\nListenAddress %s\n", s.Port, s.Host)
	for _, f := range keyFiles {
		fmt.Fprintf(&b, "HostKey %s\n", f)
	}
	fmt.Fprintf(&b, "PidFile %s\n", filepath.Join(s.Dir, "sshd.pid"))
	fmt.Fprintf(&b, "AuthorizedKeysFile %s\n", filepath.Join(s.Dir, "authorized_keys"))
	b.WriteString("PermitRootLogin prohibit-password\n" +
		"PubkeyAuthentication yes\n" +
		"PasswordAuthentication no\n" +
		"KbdInteractiveAuthentication no\n" +
		"UsePAM no\n" +
		"StrictModes no\n" +
		"PrintMotd no\n" +
		"UseDNS no\n" +
		"LogLevel VERBOSE\n")
	// One SetEnv line: sshd ignores all but the first.
	var env []string
	if s.BashrcLog != "" {
		env = append(env, "HOME="+filepath.Join(s.Dir, "home"))
	} else {
		// The test hosts run as the user running the tests, whose ~/.bashrc
		// may do slow or lock-taking things (pyenv rehash, here: a session
		// killed mid-rehash by a host-death test leaves a lock that makes
		// every later command wait 60 s). Bash reads ~/.bashrc for ssh
		// commands only when SHLVL was unset: start sessions at level 1.
		env = append(env, "SHLVL=1")
	}
	if opts.Path != "" {
		env = append(env, "PATH="+opts.Path)
	}
	fmt.Fprintf(&b, "SetEnv %s\n", strings.Join(env, " "))
	fmt.Fprintf(&b, "Subsystem sftp %s\n", SFTPServerPath)
	for _, l := range match {
		b.WriteString(l + "\n")
	}
	return os.WriteFile(s.ConfigFile, []byte(b.String()), 0o644)
}

// writeBashrc makes the slow ~/.bashrc of Options.SlowBashrc.
func (s *SSHD) writeBashrc(t testing.TB, d time.Duration) {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if sh := loginShell(u.Username); filepath.Base(sh) != "bash" {
		SkipOrFail(t, "a slow ~/.bashrc needs bash as the login shell, not %q", sh)
	}
	home := filepath.Join(s.Dir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	s.BashrcLog = filepath.Join(s.Dir, "bashrc.log")
	rc := fmt.Sprintf("echo \"$$ $SHLVL\" >> %s\nsleep %.3f\n", hosts.QuotePOSIX(s.BashrcLog), d.Seconds())
	if err := os.WriteFile(filepath.Join(home, ".bashrc"), []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
}

// BashrcRuns is how many times sessions' shells have read ~/.bashrc
// (Options.SlowBashrc).
func (s *SSHD) BashrcRuns() int {
	b, _ := os.ReadFile(s.BashrcLog)
	return bytes.Count(b, []byte{'\n'})
}

// loginShell is user's login shell from /etc/passwd ("" if not found).
func loginShell(name string) string {
	b, _ := os.ReadFile("/etc/passwd")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Split(l, ":"); len(f) == 7 && f[0] == name {
			return f[6]
		}
	}
	return ""
}

// start runs sshd and waits until the port accepts connections.
func (s *SSHD) start() error {
	logf, err := os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(SSHDPath, "-D", "-e", "-f", s.ConfigFile)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-done:
			logf.Close()
			return fmt.Errorf("sshd exited: %s", lastLines(s.Log(), 5))
		default:
		}
		c, err := net.DialTimeout("tcp", s.Addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			logf.Close()
			return fmt.Errorf("sshd not accepting on %s after 10s", s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.mu.Lock()
	s.cmd, s.done, s.log = cmd, done, logf
	s.mu.Unlock()
	return nil
}

// Start starts a stopped server again on the same port with the same keys.
func (s *SSHD) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	running := s.cmd != nil
	s.mu.Unlock()
	if running {
		return
	}
	var err error
	for i := 0; i < 20; i++ {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("restart sshd on %s: %v", s.Addr, err)
}

// PID is the listening sshd's pid (0 when stopped).
func (s *SSHD) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// ConnectionPIDs lists the per-connection sshd processes (descendants of the
// listener whose command is sshd).
func (s *SSHD) ConnectionPIDs() []int {
	pid := s.PID()
	if pid == 0 {
		return nil
	}
	var out []int
	for _, p := range descendants(pid) {
		if comm(p) == "sshd" {
			out = append(out, p)
		}
	}
	return out
}

// SessionPIDs lists every live process started for this server's sessions:
// descendants of the listener plus orphans that still carry this server's
// port in SSH_CONNECTION.
func (s *SSHD) SessionPIDs() []int {
	seen := map[int]bool{}
	var out []int
	if pid := s.PID(); pid != 0 {
		for _, p := range descendants(pid) {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	for _, p := range s.envPIDs() {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// Stop kills sshd and everything it spawned, like a host dying. Safe to
// call more than once.
func (s *SSHD) Stop() {
	s.mu.Lock()
	cmd, done, logf := s.cmd, s.done, s.log
	s.cmd, s.done, s.log = nil, nil, nil
	s.mu.Unlock()
	var tree []int
	if cmd != nil {
		tree = descendants(cmd.Process.Pid)
		_ = cmd.Process.Signal(syscall.SIGKILL)
	}
	// Connection handlers first (the client sees the connection drop, not an
	// exit status), then everything else.
	for _, p := range tree {
		if comm(p) == "sshd" {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
	for round := 0; round < 3; round++ {
		pids := append(tree, s.envPIDs()...)
		for _, p := range pids {
			_ = syscall.Kill(p, syscall.SIGCONT)
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		tree = nil
		if len(pids) == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if done != nil {
		<-done
	}
	if logf != nil {
		logf.Close()
	}
}

// Log returns the sshd log so far.
func (s *SSHD) Log() string {
	b, _ := os.ReadFile(s.LogFile)
	return string(b)
}

// Def returns a host definition for this server.
func (s *SSHD) Def(name string) *hosts.Def {
	return &hosts.Def{
		Name:         name,
		Address:      s.Host,
		Port:         s.Port,
		User:         s.User,
		IdentityFile: s.IdentityFile,
		OS:           "linux",
		FFmpeg:       "ffmpeg",
		Enabled:      true,
	}
}

// WriteKnownHosts writes the servers' ed25519 known_hosts lines to path
// (replacing the file).
func WriteKnownHosts(t testing.TB, path string, servers ...*SSHD) {
	t.Helper()
	var b strings.Builder
	for _, s := range servers {
		b.WriteString(s.KnownHostsLine + "\n")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// ------------------------------------------------------------ /proc helpers

func readStat(pid int) (comm string, ppid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, false
	}
	open, close := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || close < open {
		return "", 0, false
	}
	f := strings.Fields(string(b[close+1:]))
	if len(f) < 2 {
		return "", 0, false
	}
	pp, _ := strconv.Atoi(f[1])
	return string(b[open+1 : close]), pp, true
}

func comm(pid int) string {
	c, _, _ := readStat(pid)
	return c
}

func allPIDs() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		if p, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// descendants lists the processes below pid (not pid itself).
func descendants(pid int) []int {
	children := map[int][]int{}
	for _, p := range allPIDs() {
		if _, pp, ok := readStat(p); ok {
			children[pp] = append(children[pp], p)
		}
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// envPIDs finds processes whose SSH_CONNECTION names this server's port.
func (s *SSHD) envPIDs() []int {
	if s.Port == 0 {
		return nil
	}
	suffix := " " + s.Host + " " + strconv.Itoa(s.Port)
	self := os.Getpid()
	var out []int
	for _, p := range allPIDs() {
		if p == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/environ")
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(b, []byte{0}) {
			if v, ok := bytes.CutPrefix(kv, []byte("SSH_CONNECTION=")); ok && strings.HasSuffix(string(v), suffix) {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// YAML renders this server as a host of a transcode.yml cluster, indented
// for config.clusters.<cluster>: name, the connection keys (ip, port, user,
// identity_file), then each extra line as is ("type: mounted",
// "working_dir: /x", …).
func (s *SSHD) YAML(name string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "      %s:\n        ip: %s\n        port: %d\n        user: %s\n        identity_file: %s\n",
		name, s.Host, s.Port, s.User, s.IdentityFile)
	for _, l := range extra {
		b.WriteString("        " + l + "\n")
	}
	return b.String()
}
