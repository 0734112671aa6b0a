package hosts

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kevinburke/ssh_config"
	"github.com/pkg/sftp"
	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"

	"clustertx/internal/filelock"
)

// SSHOptions tunes DialSSH. The zero value is usable.
type SSHOptions struct {
	// KnownHostsFiles lists the user known_hosts files (--known-hosts).
	// Empty means what OpenSSH uses: UserKnownHostsFile from ssh_config, else
	// ~/.ssh/known_hosts and ~/.ssh/known_hosts2. New keys are recorded in
	// the first. Missing files are skipped.
	KnownHostsFiles []string
	// GlobalKnownHostsFiles are the system-wide known_hosts files consulted
	// beside the user files when ssh_config names no GlobalKnownHostsFile.
	// nil means OpenSSH's default, /etc/ssh/ssh_known_hosts and
	// /etc/ssh/ssh_known_hosts2; empty (not nil) means none; tests set it
	// to keep /etc out. Missing files are skipped; nothing is ever written
	// to them.
	GlobalKnownHostsFiles []string
	// AcceptNewHostKeys is OpenSSH's StrictHostKeyChecking=accept-new: a
	// host known in none of the user and global files (under its name, its
	// HostKeyAlias, or with CheckHostIP its address) has its key recorded,
	// after authentication succeeded, in the first user file and trusted.
	// A key that differs from one recorded in any of them is always refused.
	AcceptNewHostKeys bool
	// SSHConfigFile is the ssh_config to read: "" = ~/.ssh/config, "none" =
	// do not read one.
	SSHConfigFile string
	// ConnectTimeout bounds TCP connect + SSH handshake + authentication,
	// per hop. Default 10s.
	ConnectTimeout time.Duration
	// KeepAliveInterval is the period of keepalive@openssh.com requests and
	// the time allowed for each reply. Default 15s.
	KeepAliveInterval time.Duration
	// KeepAliveMax is how many missed keepalives close the connection.
	// Default 3.
	KeepAliveMax int
	// PerCommandSessions runs every command in an SSH session of its own,
	// through the login shell, instead of on the host's executor (see
	// ssh_executor.go): each command then pays the shell's start-up,
	// ~/.bashrc included. Off by default; benchmarks and tests compare the
	// two. Windows hosts always work this way.
	PerCommandSessions bool
	// Logf receives debug messages; nil discards them.
	Logf func(format string, args ...any)
}

func (o *SSHOptions) setDefaults() {
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.KeepAliveInterval <= 0 {
		o.KeepAliveInterval = 15 * time.Second
	}
	if o.KeepAliveMax <= 0 {
		o.KeepAliveMax = 3
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// HostKeyError is a host key problem: the host is not in known_hosts
// (Changed false) or presents a key different from the recorded one
// (Changed true). It is not a TransportError: retrying elsewhere does not
// fix it and the user has to act.
type HostKeyError struct {
	Host        string // host name as configured (Def.Name, or the jump host)
	Addr        string // host:port that was dialled
	Fingerprint string // SHA256:… of the key the server presented
	Changed     bool
	Revoked     bool   // the key is marked @revoked in known_hosts
	KeyType     string // e.g. ssh-ed25519
	KnownHosts  string // the known_hosts file to fix
	// Name is the known_hosts name that was looked up and failed: the
	// HostKeyAlias, "[address]:port" for the address (CheckHostIP), or
	// "" for the dialled host:port itself.
	Name string
	Line int // Changed: the line of KnownHosts that records another key
}

func (e *HostKeyError) Error() string {
	host, port, err := net.SplitHostPort(e.Addr)
	if err != nil {
		host, port = e.Addr, "22"
	}
	kh := e.KnownHosts
	if kh == "" {
		kh = "~/.ssh/known_hosts"
	}
	switch {
	case e.Revoked:
		return fmt.Sprintf("host %s (%s) presented a REVOKED %s key %s; refusing to connect", e.Host, e.Addr, e.KeyType, e.Fingerprint)
	case e.Changed:
		name := e.Name
		if name == "" {
			name = knownhosts.Normalize(e.Addr)
		}
		where := kh
		if e.Line > 0 {
			where = fmt.Sprintf("%s:%d", kh, e.Line)
		}
		return fmt.Sprintf("host %s (%s) presented a %s key %s that does not match the key known_hosts records for %s (%s); "+
			"refusing to connect: possible man-in-the-middle attack; if the host was reinstalled, remove the old line with "+
			"ssh-keygen -R %s -f %s and verify the new key",
			e.Host, e.Addr, e.KeyType, e.Fingerprint, name, where, QuotePOSIX(name), shellPath(kh))
	}
	scan := "ssh-keyscan "
	if port != "22" {
		scan += "-p " + port + " "
	}
	scan += QuotePOSIX(host)
	if e.Name != "" { // HostKeyAlias: the line must carry the alias
		scan += " | sed " + QuotePOSIX("s/^[^ ]*/"+e.Name+"/")
	}
	return fmt.Sprintf("host %s (%s) is not in known_hosts (%s key %s); verify and add it with: %s >> %s  (or run once with --accept-new-host-keys)",
		e.Host, e.Addr, e.KeyType, e.Fingerprint, scan, shellPath(kh))
}

// shellPath quotes a path for a command line the user pastes, leaving a
// leading ~/ outside the quotes so that the shell still expands it.
func shellPath(p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return "~/" + QuotePOSIX(rest)
	}
	return QuotePOSIX(p)
}

// Session budget per connection: OpenSSH's MaxSessions defaults to 10.
// One goes to the SFTP subsystem, execSlots to commands, and one is kept
// for the kill session that stops a cancelled command.
const execSlots = 8

// SSHTransport runs commands and moves files on one host over a single SSH
// connection shared by all of the host's slots.
type SSHTransport struct {
	name    string
	def     Def
	addr    string // resolved host:port of the target
	user    string
	windows bool
	opts    SSHOptions

	client *ssh.Client
	jumps  []*ssh.Client // ProxyJump hops, outermost first

	sem   chan struct{} // exec / helper sessions
	spare chan struct{} // the kill session

	sftpMu sync.Mutex
	sftpc  *sftp.Client

	checkMu sync.Mutex
	check   downloadCheck // how downloads are verified; checkUnknown until probed

	dead     chan struct{}
	deadOnce sync.Once
	deadErr  error

	closeOnce sync.Once

	// The executor (ssh_executor.go): one session that runs every command.
	execMu     sync.Mutex
	exe        *executor     // running, or nil
	execStart  chan struct{} // closed when the start under way ends; nil when none is
	execOff    bool          // one session per command
	execDeaths int           // executors that ended under the transport

	killGrace time.Duration // wait after stdin EOF before kill(1); tests may shorten
	// refusedPatience bounds retries of a refused session once no other
	// session of ours could free a slot; tests may shorten.
	refusedPatience time.Duration
}

var _ Transport = (*SSHTransport)(nil)

// Addr is the host:port actually dialled (after ssh_config resolution).
func (t *SSHTransport) Addr() string { return t.addr }

// User is the login user.
func (t *SSHTransport) User() string { return t.user }

// ServerVersion is the server's SSH identification string.
func (t *SSHTransport) ServerVersion() string { return string(t.client.ServerVersion()) }

// Done is closed when the connection is closed or lost.
func (t *SSHTransport) Done() <-chan struct{} { return t.dead }

// Err reports why the connection ended, or nil while it is alive.
func (t *SSHTransport) Err() error {
	select {
	case <-t.dead:
		return t.deadErr
	default:
		return nil
	}
}

func (t *SSHTransport) markDead(err error) {
	t.deadOnce.Do(func() {
		t.deadErr = err
		close(t.dead)
	})
}

func (t *SSHTransport) terr(op string, err error) *TransportError {
	return &TransportError{Host: t.name, Op: op, Err: err}
}

// alive returns a TransportError once the connection is gone.
func (t *SSHTransport) alive(op string) error {
	if err := t.Err(); err != nil {
		return t.terr(op, err)
	}
	return nil
}

// acquire waits for a free session slot.
func (t *SSHTransport) acquire(ctx context.Context, op string) (func(), error) {
	select {
	case t.sem <- struct{}{}:
		return func() { <-t.sem }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("host %s: %s: waiting for a free SSH session: %w", t.name, op, ctx.Err())
	case <-t.dead:
		return nil, t.terr(op, t.deadErr)
	}
}

// newSession opens a session, mapping every failure to a TransportError.
//
// A session the server refuses ("open failed": sshd's MaxSessions reached)
// is retried with backoff. sshd frees a closed session's slot only on its
// next main-loop pass, so an open sent right after another session closed
// can be refused although the budget below MaxSessions holds; a server
// configured with a MaxSessions under ours refuses until one of our own
// sessions ends. Retries go on while ctx lives and, once no other exec
// session of ours is open (nothing of ours left to free a slot), for at most
// refusedPatience more.
func (t *SSHTransport) newSession(ctx context.Context, op string) (*ssh.Session, error) {
	backoff := 10 * time.Millisecond
	deadline := time.Now().Add(t.refusedPatience)
	for {
		if err := t.alive(op); err != nil {
			return nil, err
		}
		s, err := t.client.NewSession()
		if err == nil {
			return s, nil
		}
		var oce *ssh.OpenChannelError
		if !errors.As(err, &oce) || oce.Reason != ssh.ConnectionFailed {
			if derr := t.Err(); derr != nil {
				err = fmt.Errorf("%w (%v)", err, derr)
			}
			return nil, t.terr(op+": open session", err)
		}
		if len(t.sem) > 1 { // other sessions of ours will end and free slots
			deadline = time.Now().Add(t.refusedPatience)
		}
		if time.Now().After(deadline) {
			return nil, t.terr(op+": open session", fmt.Errorf("%w (the server kept refusing new sessions: is its MaxSessions below %d?)", err, execSlots+2))
		}
		timer := time.NewTimer(backoff)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("host %s: %s: waiting for the server to accept a session: %w", t.name, op, ctx.Err())
		case <-t.dead:
			timer.Stop()
			return nil, t.terr(op, t.deadErr)
		}
		backoff = min(backoff*2, 500*time.Millisecond)
	}
}

// Close closes the connection (and the jump hosts). Remote commands still
// running see EOF on their stdin and are stopped by the wrapper.
func (t *SSHTransport) Close() error {
	var err error
	t.closeOnce.Do(func() {
		t.markDead(errors.New("transport closed"))
		t.execMu.Lock()
		if t.exe != nil {
			t.exe.close() // stdin EOF: it stops every command and exits
		}
		t.execMu.Unlock()
		t.sftpMu.Lock()
		if t.sftpc != nil {
			_ = t.sftpc.Close()
		}
		t.sftpMu.Unlock()
		err = t.client.Close()
		for i := len(t.jumps) - 1; i >= 0; i-- {
			_ = t.jumps[i].Close()
		}
		if err != nil && errors.Is(err, net.ErrClosed) {
			err = nil
		}
	})
	return err
}

// Join joins with '/' on POSIX hosts and '\' on Windows hosts.
func (t *SSHTransport) Join(elem ...string) string {
	if t.windows {
		return joinWindows(elem...)
	}
	return path.Join(elem...)
}

func joinWindows(elem ...string) string {
	out := ""
	for _, e := range elem {
		e = strings.ReplaceAll(e, "/", `\`)
		if e == "" {
			continue
		}
		if out == "" {
			out = e
			continue
		}
		out = strings.TrimRight(out, `\`) + `\` + strings.TrimLeft(e, `\`)
	}
	return out
}

// ---------------------------------------------------------------- dialling

// sshTarget is one hop (or the final host) after ssh_config resolution.
type sshTarget struct {
	label      string // for messages
	alias      string // what ssh_config was queried with
	host       string
	port       int
	user       string
	identities []string // explicit identity files (IdentitiesOnly-like)
	fromDef    bool     // identities came from transcode.yml: missing = error
	proxyJump  string
	knownHosts []string // UserKnownHostsFile (nil: not set)
	// globalKnownHosts is GlobalKnownHostsFile (nil: not set).
	globalKnownHosts []string
	hostKeyAlias     string // HostKeyAlias: the known_hosts name instead of host:port
	checkHostIP      bool   // CheckHostIP yes: the address must not be known with another key
	hashKnownHosts   string // HashKnownHosts as the user's ssh_config sets it ("" not set)
}

func (h sshTarget) addr() string { return net.JoinHostPort(h.host, strconv.Itoa(h.port)) }

func homeDir() string {
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return h
	}
	if u, err := user.Current(); err == nil {
		return u.HomeDir
	}
	return "/"
}

func localUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "root"
}

// expandTokens implements the ssh_config tokens we support (%h %p %r %u %n
// %d %%) and a leading ~.
func expandTokens(s string, h *sshTarget) string {
	if s == "~" {
		s = homeDir()
	} else if strings.HasPrefix(s, "~/") {
		s = filepath.Join(homeDir(), s[2:])
	}
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'h':
			b.WriteString(h.host)
		case 'p':
			b.WriteString(strconv.Itoa(h.port))
		case 'r':
			b.WriteString(h.user)
		case 'u':
			b.WriteString(localUser())
		case 'n':
			b.WriteString(h.alias)
		case 'd':
			b.WriteString(homeDir())
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func loadSSHConfig(file string) (*ssh_config.Config, error) {
	if file == "none" {
		return nil, nil
	}
	if file == "" {
		file = filepath.Join(homeDir(), ".ssh", "config")
	}
	f, err := os.Open(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	cfg, err := ssh_config.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return cfg, nil
}

func cfgGet(cfg *ssh_config.Config, alias, key string) string {
	if cfg == nil {
		return ""
	}
	v, err := cfg.Get(alias, key)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(v)
}

func cfgGetAll(cfg *ssh_config.Config, alias, key string) []string {
	if cfg == nil {
		return nil
	}
	v, err := cfg.GetAll(alias, key)
	if err != nil {
		return nil
	}
	return v
}

// resolveTarget applies precedence explicit (transcode.yml / jump spec) >
// ssh_config > defaults.
func resolveTarget(cfg *ssh_config.Config, alias, explicitUser string, explicitPort int, explicitIdentity string) (sshTarget, error) {
	h := sshTarget{alias: alias, label: alias, host: alias}
	if hn := cfgGet(cfg, alias, "HostName"); hn != "" {
		h.host = expandTokens(hn, &sshTarget{host: alias, alias: alias})
	}
	switch {
	case explicitPort > 0:
		h.port = explicitPort
	case cfgGet(cfg, alias, "Port") != "":
		p, err := strconv.Atoi(cfgGet(cfg, alias, "Port"))
		if err != nil || p <= 0 || p > 65535 {
			return h, fmt.Errorf("ssh_config: Host %s: bad Port %q", alias, cfgGet(cfg, alias, "Port"))
		}
		h.port = p
	default:
		h.port = 22
	}
	switch {
	case explicitUser != "":
		h.user = explicitUser
	case cfgGet(cfg, alias, "User") != "":
		h.user = cfgGet(cfg, alias, "User")
	default:
		h.user = localUser()
	}
	if explicitIdentity != "" {
		h.identities = []string{expandTokens(explicitIdentity, &h)}
		h.fromDef = true
	} else {
		for _, f := range cfgGetAll(cfg, alias, "IdentityFile") {
			if strings.EqualFold(strings.TrimSpace(f), "none") {
				continue
			}
			h.identities = append(h.identities, expandTokens(strings.TrimSpace(f), &h))
		}
	}
	h.proxyJump = cfgGet(cfg, alias, "ProxyJump")
	h.knownHosts = cfgFiles(cfg, alias, "UserKnownHostsFile", &h)
	h.globalKnownHosts = cfgFiles(cfg, alias, "GlobalKnownHostsFile", &h)
	h.hostKeyAlias = cfgGet(cfg, alias, "HostKeyAlias")
	if strings.EqualFold(h.hostKeyAlias, "none") {
		h.hostKeyAlias = ""
	}
	// OpenSSH's default has been "no" since 8.5.
	h.checkHostIP = strings.EqualFold(cfgGet(cfg, alias, "CheckHostIP"), "yes")
	h.hashKnownHosts = strings.ToLower(cfgGet(cfg, alias, "HashKnownHosts"))
	return h, nil
}

// cfgFiles reads a known_hosts file list keyword (space-separated, tokens
// and ~ expanded; "none" is no file). nil when the keyword is not set.
func cfgFiles(cfg *ssh_config.Config, alias, key string, h *sshTarget) []string {
	vals := cfgGetAll(cfg, alias, key)
	if len(vals) == 0 {
		return nil
	}
	files := []string{}
	for _, v := range vals[:1] { // the first value wins, as for every ssh_config keyword
		for _, f := range strings.Fields(v) {
			if strings.EqualFold(f, "none") {
				continue
			}
			files = append(files, expandTokens(f, h))
		}
	}
	return files
}

// parseJumps splits a ProxyJump value into hops: [user@]host[:port] or
// ssh://[user@]host[:port], comma-separated. Each hop is also looked up in
// ssh_config (HostName, Port, User, IdentityFile); a hop's own ProxyJump
// is not followed.
func parseJumps(cfg *ssh_config.Config, spec string) ([]sshTarget, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" || strings.EqualFold(spec, "none") {
		return nil, nil
	}
	var hops []sshTarget
	for _, raw := range strings.Split(spec, ",") {
		s := strings.TrimSpace(raw)
		s = strings.TrimPrefix(s, "ssh://")
		s = strings.TrimSuffix(s, "/")
		if s == "" {
			return nil, fmt.Errorf("ProxyJump %q: empty hop", spec)
		}
		u := ""
		if i := strings.LastIndex(s, "@"); i >= 0 {
			u, s = s[:i], s[i+1:]
		}
		host, port := s, 0
		if strings.HasPrefix(s, "[") || strings.Count(s, ":") == 1 {
			hh, pp, err := net.SplitHostPort(s)
			if err != nil {
				return nil, fmt.Errorf("ProxyJump hop %q: %w", raw, err)
			}
			p, err := strconv.Atoi(pp)
			if err != nil || p <= 0 || p > 65535 {
				return nil, fmt.Errorf("ProxyJump hop %q: bad port", raw)
			}
			host, port = hh, p
		}
		h, err := resolveTarget(cfg, host, u, port, "")
		if err != nil {
			return nil, err
		}
		h.label = "jump host " + host
		hops = append(hops, h)
	}
	return hops, nil
}

// DialSSH connects to def (through its ProxyJump hosts, if ssh_config names
// any), verifies host keys against known_hosts, authenticates with keys only
// and starts the keepalive loop. Host key problems return *HostKeyError;
// everything else that fails returns *TransportError (or an error wrapping
// ctx.Err() when ctx ends first).
func DialSSH(ctx context.Context, def *Def, opts SSHOptions) (*SSHTransport, error) {
	opts.setDefaults()
	name := def.Name
	if name == "" {
		name = def.Address
	}
	fail := func(op string, err error) error { return &TransportError{Host: name, Op: op, Err: err} }
	if def.Address == "" {
		return nil, fail("dial", errors.New("no address"))
	}
	cfg, err := loadSSHConfig(opts.SSHConfigFile)
	if err != nil {
		return nil, fail("read ssh_config", err)
	}
	tgt, err := resolveTarget(cfg, def.Address, def.User, def.Port, def.IdentityFile)
	if err != nil {
		return nil, fail("ssh_config", err)
	}
	tgt.label = name
	hops, err := parseJumps(cfg, tgt.proxyJump)
	if err != nil {
		return nil, fail("ssh_config", err)
	}
	// Jump hosts without identities of their own use the target's.
	for i := range hops {
		if len(hops[i].identities) == 0 {
			hops[i].identities, hops[i].fromDef = tgt.identities, tgt.fromDef
		}
	}
	d := &dialer{opts: opts, name: name}
	if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
		if c, err := net.Dial("unix", sock); err != nil {
			opts.Logf("ssh %s: agent %s: %v", name, sock, err)
		} else {
			// Signers sign through this connection: keep it open until every
			// handshake is done.
			defer c.Close()
			if d.agentSigners, err = agent.NewClient(c).Signers(); err != nil {
				opts.Logf("ssh %s: agent signers: %v", name, err)
			}
		}
	}

	var via *ssh.Client
	var jumps []*ssh.Client
	closeJumps := func() {
		for i := len(jumps) - 1; i >= 0; i-- {
			_ = jumps[i].Close()
		}
	}
	for _, h := range hops {
		c, err := d.dialHop(ctx, via, h)
		if err != nil {
			closeJumps()
			return nil, err
		}
		jumps = append(jumps, c)
		via = c
	}
	client, err := d.dialHop(ctx, via, tgt)
	if err != nil {
		closeJumps()
		return nil, err
	}
	t := &SSHTransport{
		name:      name,
		def:       *def,
		addr:      tgt.addr(),
		user:      tgt.user,
		windows:   def.Windows(),
		opts:      opts,
		client:    client,
		jumps:     jumps,
		sem:       make(chan struct{}, execSlots),
		spare:     make(chan struct{}, 1),
		dead:      make(chan struct{}),
		killGrace: 5 * time.Second,
		execOff:   def.Windows() || opts.PerCommandSessions,

		refusedPatience: 10 * time.Second,
	}
	go func() {
		err := client.Wait()
		if err == nil {
			err = errors.New("connection closed by server")
		}
		t.markDead(fmt.Errorf("connection lost: %w", err))
		for i := len(jumps) - 1; i >= 0; i-- {
			_ = jumps[i].Close()
		}
	}()
	go t.keepalive()
	opts.Logf("ssh %s: connected to %s@%s (%s)", name, t.user, t.addr, client.ServerVersion())
	return t, nil
}

type dialer struct {
	opts         SSHOptions
	name         string
	agentSigners []ssh.Signer
}

// defaultGlobalKnownHosts is OpenSSH's GlobalKnownHostsFile default.
var defaultGlobalKnownHosts = []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}

// checkLoopbackIP makes CheckHostIP apply to loopback addresses too, which
// OpenSSH exempts; only tests set it (a loopback sshd is all they have).
var checkLoopbackIP = false

// knownHostsFiles returns the user files (new keys go to the first) and
// the global files for hop h, as OpenSSH picks them: --known-hosts, else
// UserKnownHostsFile, else ~/.ssh/known_hosts{,2}; GlobalKnownHostsFile,
// else the configured default, else /etc/ssh/ssh_known_hosts{,2}.
func (d *dialer) knownHostsFiles(h sshTarget) (user, global []string) {
	user = d.opts.KnownHostsFiles // empty like nil: a CLI may give either for an unset flag
	if len(user) == 0 {
		user = h.knownHosts // "UserKnownHostsFile none": empty, not nil
	}
	if user == nil {
		home := filepath.Join(homeDir(), ".ssh")
		user = []string{filepath.Join(home, "known_hosts"), filepath.Join(home, "known_hosts2")}
	}
	global = h.globalKnownHosts
	if global == nil {
		global = d.opts.GlobalKnownHostsFiles
	}
	if global == nil {
		global = defaultGlobalKnownHosts
	}
	return user, global
}

// hostKeyName is the known_hosts name a hop's key is checked under (and
// the host:port form the lookup takes): the
// HostKeyAlias, or the dialled host:port, as OpenSSH spells them
// ("name" for port 22, "[name]:port" otherwise; an alias as is).
func hostKeyName(h sshTarget) (name, lookup string) {
	if h.hostKeyAlias != "" {
		return h.hostKeyAlias, net.JoinHostPort(h.hostKeyAlias, "22")
	}
	return knownhosts.Normalize(h.addr()), h.addr()
}

// checkedIP returns the known_hosts name and the host:port of the address
// CheckHostIP checks for hop h reached at remote, or "" when there is none
// to check: CheckHostIP off, a hop reached through a ProxyJump (OpenSSH has
// no address there either), a loopback address (OpenSSH exempts those), or
// the same name as the host's own.
func checkedIP(h sshTarget, via *ssh.Client, remote net.Addr, name string) (ipName, ipAddr string) {
	tcp, ok := remote.(*net.TCPAddr)
	if !ok || !h.checkHostIP || via != nil || (tcp.IP.IsLoopback() && !checkLoopbackIP) {
		return "", ""
	}
	ipAddr = net.JoinHostPort(tcp.IP.String(), strconv.Itoa(h.port))
	if ipName = knownhosts.Normalize(ipAddr); ipName == name {
		return "", ""
	}
	return ipName, ipAddr
}

// keyCheck is the outcome of looking one known_hosts name up.
type keyCheck struct {
	ok, unknown, revoked bool
	want                 []xknownhosts.KnownKey // recorded keys that did not match
	err                  error                  // anything else (unreadable line…)
}

func classifyKey(err error) keyCheck {
	var rev *xknownhosts.RevokedError
	var ke *xknownhosts.KeyError
	switch {
	case err == nil:
		return keyCheck{ok: true}
	case errors.As(err, &rev):
		return keyCheck{revoked: true}
	case knownhosts.IsHostUnknown(err):
		return keyCheck{unknown: true}
	case errors.As(err, &ke):
		return keyCheck{want: ke.Want}
	}
	return keyCheck{err: err}
}

func (d *dialer) dialHop(ctx context.Context, via *ssh.Client, h sshTarget) (*ssh.Client, error) {
	addr := h.addr()
	fail := func(op string, err error) error { return &TransportError{Host: h.label, Op: op, Err: err} }
	auth, err := d.auth(h)
	if err != nil {
		return nil, fail("auth", err)
	}
	userKH, globalKH := d.knownHostsFiles(h)
	var existing []string
	for _, f := range append(append([]string(nil), userKH...), globalKH...) {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		}
	}
	db, err := knownhosts.NewDB(existing...)
	if err != nil {
		return nil, fail("known_hosts", err)
	}
	firstKH := ""
	if len(userKH) > 0 {
		firstKH = userKH[0]
	}
	name, lookup := hostKeyName(h)
	var hkErr *HostKeyError
	var pending ssh.PublicKey
	var pendingNames []string
	check := db.HostKeyCallback()
	// cb decides as OpenSSH's check_host_key does, with one difference
	// that only ever refuses more: the key is looked up under the alias or
	// host:port in every user and global file; with CheckHostIP, also
	// under the address the connection reached (not through a ProxyJump,
	// where there is none, not on loopback, and not when that is the same
	// name). A revoked key, or a name or address recorded with other keys,
	// is refused, with accept-new too; a name known nowhere is unknown,
	// which accept-new records under the name (and the address).
	cb := func(_ string, remote net.Addr, key ssh.PublicKey) error {
		e := &HostKeyError{Host: h.label, Addr: addr, Fingerprint: ssh.FingerprintSHA256(key), KeyType: key.Type(), KnownHosts: tildePath(firstKH)}
		if h.hostKeyAlias != "" {
			e.Name = name
		}
		changed := func(n string, want []xknownhosts.KnownKey) error {
			e.Changed, e.Name = true, n
			if len(want) > 0 {
				e.KnownHosts, e.Line = tildePath(want[0].Filename), want[0].Line
			}
			hkErr = e
			return e
		}
		res := classifyKey(check(lookup, remote, key))
		var ipRes keyCheck
		ipName, ipAddr := checkedIP(h, via, remote, name)
		if ipName != "" {
			ipRes = classifyKey(check(ipAddr, remote, key))
		}
		switch {
		case res.revoked || ipRes.revoked:
			e.Revoked = true
			hkErr = e
			return e
		case res.err != nil:
			return changed(name, nil)
		case !res.ok && !res.unknown:
			return changed(name, res.want)
		case ipName != "" && ipRes.err != nil:
			return changed(ipName, nil)
		case ipName != "" && !ipRes.ok && !ipRes.unknown:
			return changed(ipName, ipRes.want)
		case res.ok:
			if ipName != "" && ipRes.unknown && d.opts.AcceptNewHostKeys {
				pending, pendingNames = key, []string{ipName}
			}
			return nil
		case d.opts.AcceptNewHostKeys:
			pending, pendingNames = key, []string{name}
			if ipName != "" && ipRes.unknown {
				pendingNames = append(pendingNames, ipName)
			}
			return nil
		}
		hkErr = e
		return e
	}
	hctx, cancel := context.WithTimeout(ctx, d.opts.ConnectTimeout)
	defer cancel()
	var conn net.Conn
	if via == nil {
		conn, err = (&net.Dialer{}).DialContext(hctx, "tcp", addr)
	} else {
		conn, err = via.DialContext(hctx, "tcp", addr)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("host %s: connect %s: %w", h.label, addr, ctx.Err())
		}
		return nil, fail("connect "+addr, err)
	}
	// Bound the handshake: a deadline on real TCP conns, and a close on the
	// context for every conn (tunnelled conns do not support deadlines).
	if dl, ok := hctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(hctx, func() { _ = conn.Close() })
	// Offer the key types known_hosts has for the name; for a name it does
	// not know, those it has for the address CheckHostIP will check, so
	// that the address is compared with a key of a type recorded for it.
	algos := hostKeyAlgorithms(db, lookup)
	if len(db.HostKeyAlgorithms(lookup)) == 0 {
		if ipName, ipAddr := checkedIP(h, via, conn.RemoteAddr(), name); ipName != "" {
			algos = hostKeyAlgorithms(db, ipAddr)
		}
	}
	c, chans, reqs, err := ssh.NewClientConn(newReadBuffered(conn), addr, &ssh.ClientConfig{
		User:              h.user,
		Auth:              auth,
		HostKeyCallback:   cb,
		HostKeyAlgorithms: algos,
		Timeout:           d.opts.ConnectTimeout,
	})
	fired := !stop()
	if err == nil && fired {
		_ = c.Close()
		err = errors.New("handshake interrupted")
	}
	if err != nil {
		_ = conn.Close()
		switch {
		case hkErr != nil:
			return nil, hkErr
		case ctx.Err() != nil:
			return nil, fmt.Errorf("host %s: ssh handshake with %s: %w", h.label, addr, ctx.Err())
		case hctx.Err() != nil || isTimeout(err):
			return nil, fail("ssh handshake with "+addr, fmt.Errorf("no SSH handshake within %v (connect timeout): %w", d.opts.ConnectTimeout, context.DeadlineExceeded))
		}
		return nil, fail("ssh handshake with "+addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	if pending != nil {
		if err := appendKnownHost(firstKH, pendingNames, pending, d.hashKnownHosts(h, firstKH)); err != nil {
			_ = c.Close()
			return nil, fail("record host key", err)
		}
		d.opts.Logf("ssh %s: recorded new %s host key %s for %s in %s", h.label, pending.Type(), ssh.FingerprintSHA256(pending), strings.Join(pendingNames, ","), firstKH)
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// connReadBuffer is what one read from the connection may bring in.
const connReadBuffer = 256 << 10

// readBuffered is a connection whose reads go through a large buffer.
// x/crypto/ssh reads through a bufio.Reader of 4 KiB: a packet's first
// block fills it and the rest of a 32 KiB packet is read straight into
// the packet, two reads per packet, 65,000 per GiB received. Through this
// buffer one read takes whatever the socket holds, up to 256 KiB, for one
// more copy in memory: a fifth of this side's system calls on a download,
// where each costs far more than copying what it brings (on the VMs here
// most of all). Writes, deadlines and Close go to the connection.
type readBuffered struct {
	net.Conn
	r *bufio.Reader
}

func newReadBuffered(c net.Conn) net.Conn {
	return &readBuffered{Conn: c, r: bufio.NewReaderSize(c, connReadBuffer)}
}

func (c *readBuffered) Read(p []byte) (int, error) { return c.r.Read(p) }

// hostKeyAlgorithms offers only the algorithms known_hosts has for addr
// (golang/go#29286: otherwise x/crypto negotiates ECDSA first and fails
// against an ed25519-only entry). For an unknown host it uses OpenSSH's
// preference, ed25519 first, so the key reported or recorded is the one
// `ssh` would have recorded.
func hostKeyAlgorithms(db *knownhosts.HostKeyDB, addr string) []string {
	if algos := db.HostKeyAlgorithms(addr); len(algos) > 0 {
		return algos
	}
	return []string{
		ssh.KeyAlgoED25519,
		ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521,
		ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256,
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func tildePath(p string) string {
	home := homeDir()
	if home != "/" && strings.HasPrefix(p, home+"/") {
		return "~" + p[len(home):]
	}
	return p
}

// systemSSHConfig is OpenSSH's system-wide client config, read for
// HashKnownHosts only (Debian and Ubuntu set it there).
var systemSSHConfig = "/etc/ssh/ssh_config"

// hashKnownHosts decides, as ssh does, whether a key accept-new records
// for hop h goes into file under hashed names: HashKnownHosts from the
// user's ssh_config, else from the system's (unless SSHConfigFile is
// "none", which reads no ssh_config), else when file already holds hashed
// names (plain names added to a hashed file would give away the hosts it
// was hashed to hide).
func (d *dialer) hashKnownHosts(h sshTarget, file string) bool {
	v := h.hashKnownHosts
	if v == "" && d.opts.SSHConfigFile != "none" {
		if sys, err := loadSSHConfig(systemSSHConfig); err == nil {
			v = strings.ToLower(cfgGet(sys, h.alias, "HashKnownHosts"))
		}
	}
	if v != "" {
		return v == "yes"
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "|1|") {
			return true
		}
	}
	return false
}

var knownHostsMu sync.Mutex

// appendKnownHost records key for names (known_hosts names, as
// hostKeyName spells them) in file under a process mutex and an flock,
// creating the file (0600) and its directory (0700) as needed. With
// hash, each name gets a line of its own under its hashed form, as
// ssh-keygen -H writes them.
func appendKnownHost(file string, names []string, key ssh.PublicKey, hash bool) error {
	if file == "" {
		return errors.New("no known_hosts file to record the key in")
	}
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := filelock.Lock(f); err != nil {
		return fmt.Errorf("lock %s: %w", file, err)
	}
	defer filelock.Unlock(f) //nolint:errcheck
	lines := []string{knownhosts.Line(names, key)}
	if hash {
		lines = lines[:0]
		for _, n := range names {
			lines = append(lines, knownhosts.Line([]string{xknownhosts.HashHostname(xknownhosts.Normalize(n))}, key))
		}
	}
	old, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	for _, l := range strings.Split(string(old), "\n") {
		if !hash && strings.TrimSpace(l) == lines[0] {
			return nil
		}
	}
	prefix := ""
	if len(old) > 0 && old[len(old)-1] != '\n' {
		prefix = "\n"
	}
	if _, err := f.WriteString(prefix + strings.Join(lines, "\n") + "\n"); err != nil {
		return err
	}
	return f.Sync()
}

// auth builds the key-only auth method for a hop: explicit identity files
// (transcode.yml or ssh_config) alone, IdentitiesOnly-style, or else the
// agent's keys plus the default key files. Never a password.
func (d *dialer) auth(h sshTarget) ([]ssh.AuthMethod, error) {
	var signers []ssh.Signer
	seen := map[string]bool{}
	add := func(s ssh.Signer) {
		k := string(s.PublicKey().Marshal())
		if !seen[k] {
			seen[k] = true
			signers = append(signers, s)
		}
	}
	for _, f := range h.identities {
		s, err := d.loadIdentity(f)
		if err != nil {
			if !h.fromDef && errors.Is(err, os.ErrNotExist) {
				d.opts.Logf("ssh %s: IdentityFile %s: %v (skipped)", h.label, f, err)
				continue
			}
			return nil, err
		}
		add(s)
	}
	if len(signers) == 0 {
		for _, s := range d.agentSigners {
			add(s)
		}
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			f := filepath.Join(homeDir(), ".ssh", n)
			if _, err := os.Stat(f); err != nil {
				continue
			}
			s, err := d.loadIdentity(f)
			if err != nil {
				d.opts.Logf("ssh %s: %v (skipped)", h.label, err)
				continue
			}
			add(s)
		}
	}
	if len(signers) == 0 {
		return nil, errors.New("no usable SSH key: set identity_file, add IdentityFile to ~/.ssh/config, or load a key into ssh-agent (clustertx never uses passwords)")
	}
	return []ssh.AuthMethod{ssh.PublicKeys(signers...)}, nil
}

func (d *dialer) loadIdentity(file string) (ssh.Signer, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", file, err)
	}
	s, err := ssh.ParsePrivateKey(pem)
	if err == nil {
		return s, nil
	}
	var pm *ssh.PassphraseMissingError
	if !errors.As(err, &pm) {
		return nil, fmt.Errorf("identity file %s: %w", file, err)
	}
	pub := pm.PublicKey
	if pub == nil {
		if b, err := os.ReadFile(file + ".pub"); err == nil {
			pub, _, _, _, _ = ssh.ParseAuthorizedKey(b)
		}
	}
	if pub != nil {
		for _, as := range d.agentSigners {
			if string(as.PublicKey().Marshal()) == string(pub.Marshal()) {
				return as, nil
			}
		}
	}
	return nil, fmt.Errorf("identity file %s is encrypted; load it into ssh-agent (ssh-add %s) — clustertx never prompts for passphrases", file, QuotePOSIX(file))
}

// keepalive sends keepalive@openssh.com every interval and closes the
// client after KeepAliveMax consecutive requests got no reply within an
// interval. Closing the client fails every pending session and SFTP call.
func (t *SSHTransport) keepalive() {
	iv := t.opts.KeepAliveInterval
	tick := time.NewTicker(iv)
	defer tick.Stop()
	misses := 0
	var pending chan error
	for {
		select {
		case <-t.dead:
			return
		case <-tick.C:
		}
		if pending == nil {
			ch := make(chan error, 1)
			pending = ch
			go func() {
				_, _, err := t.client.SendRequest("keepalive@openssh.com", true, nil)
				ch <- err
			}()
		}
		timer := time.NewTimer(iv)
		select {
		case err := <-pending:
			pending = nil
			if err != nil {
				misses++
			} else {
				misses = 0
			}
		case <-timer.C:
			misses++
		case <-t.dead:
			timer.Stop()
			return
		}
		timer.Stop()
		if misses >= t.opts.KeepAliveMax {
			err := fmt.Errorf("no reply to %d keepalives (interval %v): connection dead", misses, iv)
			t.opts.Logf("ssh %s: %v", t.name, err)
			t.markDead(err)
			_ = t.client.Close()
			return
		}
	}
}
