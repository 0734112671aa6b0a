// Package hosts owns everything about the machines that encode: host
// definitions (both pytranscoder generations), path substitution, quoting
// for remote shells, and the transports that run commands and move files on
// a host. All SSH and SFTP I/O lives here; nothing else imports
// x/crypto/ssh or pkg/sftp. The manager (package cluster) sees a host only
// through the Transport interface and does not know whether it is SSH or local.
//
// An SSH host runs its commands on an executor (ssh_executor.go): one
// long-lived session per connection whose Perl program starts each command
// in a process group of its own, so that the host's login shell, and the
// ~/.bashrc it reads, runs once per connection rather than once per command.
// Hosts without Perl and Windows hosts get one session per command.
package hosts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"clustertx/window"
)

// Type is how a host reaches the media.
type Type string

const (
	Local     Type = "local"     // the manager itself
	Mounted   Type = "mounted"   // sees the media over NFS/SMB; path substitution
	Streaming Type = "streaming" // shares nothing; files are copied to working_dir
)

// DefaultFFmpeg is the ffmpeg a host runs when its definition names none.
const DefaultFFmpeg = "ffmpeg"

// FFmpegHead is the fixed start of every ffmpeg command clustertx runs, on
// a host or on the manager: the binary (DefaultFFmpeg when ffmpeg is ""),
// no banner, no stdin (a remote ffmpeg must never wait for input), and the
// log level given.
func FFmpegHead(ffmpeg, loglevel string) []string {
	if ffmpeg == "" {
		ffmpeg = DefaultFFmpeg
	}
	return []string{ffmpeg, "-hide_banner", "-nostdin", "-loglevel", loglevel}
}

// DefaultQueue is the queue of profiles that name none (pytranscoder's _default).
const DefaultQueue = "_default"

// PathSub maps a manager path prefix to the host's view of it.
type PathSub struct {
	Src, Dst string
}

// QueueSlots is one entry of a host's `queues:` map, in file order.
type QueueSlots struct {
	Queue string
	Slots int
}

// Def is one host of a cluster as configured in transcode.yml.
type Def struct {
	Name    string // the label under config.clusters.<cluster>
	Cluster string
	Type    Type
	Enabled bool   // status: enabled (default) | disabled
	Address string // ip: address or ssh_config alias
	User    string
	Port    int    // 0: from ssh_config, else 22
	OS      string // linux (default), macos, win10
	FFmpeg  string // ffmpeg on that host; default "ffmpeg"

	IdentityFile string // private key; else agent and ~/.ssh defaults
	WorkingDir   string // streaming: where sources and outputs are staged

	PathSubs []PathSub    // mounted: manager path prefix → host path prefix
	Queues   []QueueSlots // queue name → slots; empty means {_default: Slots}
	Slots    int          // slots when Queues is empty (default 1)
	Weight   float64      // relative speed prior for scheduling (default 1); the speed observed replaces it

	MaxLoad     float64  // take new jobs only while the load average (less our own encodes) is below this; 0: no limit
	MaxLoadSet  bool     // max_load was given on the host (a cluster default does not override it)
	Fallback    bool     // takes a job only when no other eligible host is up, or it failed on them
	FallbackSet bool     // fallback was given explicitly (a cluster mode does not override it)
	DisabledBy  string   // why Enabled is false when not by status: (e.g. "mode remote")
	Profiles    []string // if set, only these profiles run here
	Profile     string   // seed-doc form: every job on this host uses this profile
	// Window is when the host takes jobs, in the manager's local time
	// (`window: "01:00-07:00"`, or a list of ranges; empty: always). A job
	// starts only if it is predicted to end before the window closes; one
	// still running when it closes is stopped (after the run's grace).
	Window window.Window

	// Encoders pins the encoder variants this host may use (`encoders:
	// [hevc_qsv, libx265]`): of a profile's variants only those whose
	// encoder is listed, in the profile's order. Empty: any.
	Encoders []string
	// ExcludeEncoders forbids variants whose encoder is listed here
	// (`exclude_encoders: [hevc_vaapi]`).
	ExcludeEncoders []string
	// Sessions caps the jobs that run at once per hardware family
	// (`sessions: {nvenc: 3, qsv: 2}`), whatever the slots: consumer NVIDIA
	// cards refuse a fourth (older drivers: third) NVENC session. Empty: no cap.
	Sessions []FamilyCap

	Pos string // file:line of the definition, for messages
}

// FamilyCap is one entry of a host's sessions: map, in file order.
type FamilyCap struct {
	Family string // hardware family: nvenc, qsv, vaapi, amf, videotoolbox…
	N      int
}

// EncoderAllowed says why the host's config keeps encoder enc out
// ("excluded by host config: …"), or "" when it may use it. Only
// profiles with encoder variants are subject to it.
func (d *Def) EncoderAllowed(enc string) string {
	for _, e := range d.ExcludeEncoders {
		if e == enc {
			return "excluded by host config (exclude_encoders)"
		}
	}
	if len(d.Encoders) == 0 {
		return ""
	}
	for _, e := range d.Encoders {
		if e == enc {
			return ""
		}
	}
	return "excluded by host config (not in its encoders: list)"
}

// FFmpegPath is the ffmpeg this host runs: its `ffmpeg:`, else DefaultFFmpeg.
func (d *Def) FFmpegPath() string {
	if d.FFmpeg == "" {
		return DefaultFFmpeg
	}
	return d.FFmpeg
}

// Windows reports whether the host runs Windows (os: win10).
func (d *Def) Windows() bool {
	return strings.EqualFold(d.OS, "win10") || strings.EqualFold(d.OS, "windows")
}

// SlotCount is how many encodes the host runs at once: the sum of its queue
// slots, or Slots, or 1.
func (d *Def) SlotCount() int {
	if len(d.Queues) > 0 {
		n := 0
		for _, q := range d.Queues {
			n += q.Slots
		}
		return n
	}
	if d.Slots > 0 {
		return d.Slots
	}
	return 1
}

// QueueNames lists the queues the host serves; {_default} when none is set.
func (d *Def) QueueNames() []string {
	if len(d.Queues) == 0 {
		return []string{DefaultQueue}
	}
	out := make([]string, 0, len(d.Queues))
	for _, q := range d.Queues {
		if q.Slots > 0 {
			out = append(out, q.Queue)
		}
	}
	return out
}

// Serves reports whether the host takes jobs of queue q ("" = _default).
func (d *Def) Serves(q string) bool {
	if q == "" {
		q = DefaultQueue
	}
	for _, name := range d.QueueNames() {
		if name == q {
			return true
		}
	}
	return false
}

// AllowsProfile reports whether a profile may run on this host: always when
// the host lists no profiles.
func (d *Def) AllowsProfile(name string) bool {
	if len(d.Profiles) == 0 {
		return true
	}
	for _, p := range d.Profiles {
		if p == name {
			return true
		}
	}
	return false
}

// MapPath rewrites a manager path into the host's view using the longest
// substitution source that is a prefix of p (not a substring anywhere, as
// pytranscoder did). Without substitutions the path is unchanged. ok is false
// when substitutions exist but none applies: the host cannot see that file.
// On Windows hosts forward slashes in the result become backslashes.
func (d *Def) MapPath(p string) (mapped string, ok bool) {
	mapped, _, ok = d.MapPathSub(p)
	return mapped, ok
}

// MapPathSub is MapPath that also returns the substitution used (zero
// without substitutions).
//
// On Windows hosts ok is also false when the part of p below the
// substitution names a file Windows cannot address (see PathProblem):
// such a path would name a different file there, never this one.
//
// A path that maps is translated as is, byte for byte; a Windows host
// sees the name only if its share presents Linux names unchanged
// (Samba's default for names without the characters PathProblem refuses).
func (d *Def) MapPathSub(p string) (mapped string, sub PathSub, ok bool) {
	if len(d.PathSubs) == 0 {
		return p, PathSub{}, true
	}
	s, rest, found := d.longestSub(p)
	if !found {
		return p, PathSub{}, false
	}
	if d.Windows() {
		if windowsNameProblem(rest) != "" {
			return p, PathSub{}, false
		}
		return strings.ReplaceAll(joinSub(s.Dst, rest), "/", `\`), s, true
	}
	return joinSub(s.Dst, rest), s, true
}

// Covers reports whether one of the host's path substitutions applies to
// p (always true without substitutions), whether or not the host can then
// address the file (PathProblem).
func (d *Def) Covers(p string) bool {
	if len(d.PathSubs) == 0 {
		return true
	}
	_, _, found := d.longestSub(p)
	return found
}

// PathProblem says why the host cannot be given p although a substitution
// covers it, or "" when there is no such problem. Only Windows hosts have
// one: the Linux name of a file or folder below the substitution contains
// a character Windows reads differently ('\' is a folder separator, ':'
// names an alternate data stream, '*' '?' are wildcards, and '"' '<' '>'
// '|' and control characters are refused), ends in a dot or a space
// (Windows drops them), or is a device name (CON, NUL, COM1…). Mapped,
// such a path names a different file on the host, or none, so the host is
// refused for that file rather than given a path to something else.
func (d *Def) PathProblem(p string) string {
	if !d.Windows() || len(d.PathSubs) == 0 {
		return ""
	}
	_, rest, found := d.longestSub(p)
	if !found {
		return ""
	}
	if why := windowsNameProblem(rest); why != "" {
		return "os: win10 host cannot address this name: " + why
	}
	return ""
}

// longestSub finds the longest substitution whose source is a prefix of
// p. When none is, p's folder is tried with its symbolic links resolved:
// a library named through a link (/mnt/media → /volume1/media) maps with
// the substitutions written for the real path.
func (d *Def) longestSub(p string) (PathSub, string, bool) {
	subs := append([]PathSub(nil), d.PathSubs...)
	sort.SliceStable(subs, func(i, j int) bool { return len(subs[i].Src) > len(subs[j].Src) })
	find := func(p string) (PathSub, string, bool) {
		for _, s := range subs {
			if rest, found := cutPrefixDir(p, s.Src); found {
				return s, rest, true
			}
		}
		return PathSub{}, "", false
	}
	if s, rest, found := find(p); found {
		return s, rest, true
	}
	if !filepath.IsAbs(p) {
		return PathSub{}, "", false
	}
	dir, ok := realDir(filepath.Dir(p))
	if !ok {
		return PathSub{}, "", false
	}
	return find(filepath.Join(dir, filepath.Base(p)))
}

// realDirs caches realDir: planning asks for every file of a folder and
// every host whose substitutions do not cover it, and a folder's links do
// not change during a run.
var realDirs sync.Map // dir → string ("" when it resolves to itself or not at all)

// realDir is dir with its symbolic links resolved; ok is false when that
// is dir itself or cannot be resolved.
func realDir(dir string) (string, bool) {
	if v, hit := realDirs.Load(dir); hit {
		r := v.(string)
		return r, r != ""
	}
	r, err := filepath.EvalSymlinks(dir)
	if err != nil || r == dir {
		r = ""
	}
	realDirs.Store(dir, r)
	return r, r != ""
}

// windowsNameProblem checks each '/'-separated element of a Linux relative
// path for what Windows cannot represent; "" when every element is fine.
func windowsNameProblem(rel string) string {
	for _, el := range strings.Split(rel, "/") {
		if el == "" {
			continue
		}
		for i := 0; i < len(el); i++ {
			c := el[i]
			switch {
			case c == '\\':
				return fmt.Sprintf("%q contains '\\', which Windows reads as a folder separator", el)
			case c == ':':
				return fmt.Sprintf("%q contains ':', which Windows reads as a drive or an alternate data stream", el)
			case c < 0x20 || strings.IndexByte(`*?"<>|`, c) >= 0:
				return fmt.Sprintf("%q contains %q, which Windows file names cannot contain", el, string(c))
			}
		}
		if el == "." || el == ".." {
			continue
		}
		if strings.HasSuffix(el, ".") || strings.HasSuffix(el, " ") {
			return fmt.Sprintf("%q ends in a dot or a space, which Windows drops", el)
		}
		base, _, _ := strings.Cut(el, ".")
		switch b := strings.ToUpper(strings.TrimRight(base, " ")); b {
		case "CON", "PRN", "AUX", "NUL":
			return fmt.Sprintf("%q is the Windows device name %s", el, b)
		default:
			if len(b) == 4 && (strings.HasPrefix(b, "COM") || strings.HasPrefix(b, "LPT")) && b[3] >= '1' && b[3] <= '9' {
				return fmt.Sprintf("%q is the Windows device name %s", el, b)
			}
		}
	}
	return ""
}

// cutPrefixDir cuts prefix from p only at a path boundary: "/media" matches
// "/media/x" and "/media" but not "/media2/x".
func cutPrefixDir(p, prefix string) (string, bool) {
	if prefix == "" || !strings.HasPrefix(p, prefix) {
		return "", false
	}
	rest := p[len(prefix):]
	if strings.HasSuffix(prefix, "/") || rest == "" || rest[0] == '/' {
		return rest, true
	}
	return "", false
}

func joinSub(dst, rest string) string {
	switch {
	case rest == "":
		return dst
	case strings.HasSuffix(dst, "/") || strings.HasSuffix(dst, `\`):
		return dst + strings.TrimPrefix(rest, "/")
	case strings.HasPrefix(rest, "/"):
		return dst + rest
	}
	return dst + "/" + rest
}

// Transport runs commands and moves files on one host. Implementations: the
// local transport (the manager itself) and SSH (exec sessions + SFTP over one
// connection shared by all the host's slots). Every method is safe for
// concurrent use.
//
// Errors: a command that ran and exited non-zero returns *ExitError (a job
// failure: the host is fine); so does a program the host cannot find (code
// 127, as a shell reports it) or run (126). A transfer that fails on the
// manager's side (the local file) returns *LocalError. Anything else that
// goes wrong with the host or the connection returns a *TransportError
// (the job goes back to the queue). A cancelled ctx returns an error
// wrapping ctx.Err(), and the command, with every process it started, is
// gone from the host when Exec returns.
//
// hoststest.RunConformance checks these promises on every implementation.
type Transport interface {
	// Exec runs argv (argv[0] is the program) and waits. stdout and stderr
	// receive the command's output as it arrives; either may be nil.
	Exec(ctx context.Context, argv []string, stdout, stderr io.Writer) error
	// Upload copies a local file to path on the host, creating or truncating
	// it, and verifies the byte count and SHA-256 of what arrived.
	Upload(ctx context.Context, local, remote string) error
	// Download copies path on the host to a local file, verifying size and
	// SHA-256 of what was read against what was written.
	Download(ctx context.Context, remote, local string) error
	// Remove deletes a file on the host; a missing file is not an error.
	Remove(ctx context.Context, remote string) error
	// FreeSpace reports the bytes available to us in dir on the host.
	FreeSpace(ctx context.Context, dir string) (int64, error)
	// Join joins path elements with the host's separator.
	Join(elem ...string) string
	// Close releases the connection. Running commands are stopped.
	Close() error
}

// ExitError is a command that ran on a reachable host and failed.
type ExitError struct {
	Code   int    // exit status; -1 when killed by a signal
	Signal string // signal name when killed by one
	Stderr string // last lines of stderr
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("exited %d", e.Code)
	if e.Signal != "" {
		msg = "killed by signal " + e.Signal
	}
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// TransportError is a failure of the host or the connection to it, not of the job.
type TransportError struct {
	Host string
	Op   string
	Err  error
}

func (e *TransportError) Error() string {
	return fmt.Sprintf("host %s: %s: %v", e.Host, e.Op, e.Err)
}

func (e *TransportError) Unwrap() error { return e.Err }

// LocalError is a failure on the manager's side of a transfer: opening,
// reading, writing or syncing its own file (a source that vanished or
// changed, a full or read-only local disk). It is not the host's fault, so
// it is never a TransportError: the host stays up and the file is not sent
// to another host for the same local problem.
type LocalError struct {
	Op  string
	Err error
}

func (e *LocalError) Error() string { return fmt.Sprintf("on the manager: %s: %v", e.Op, e.Err) }

func (e *LocalError) Unwrap() error { return e.Err }

// IsLocal reports whether err is the manager's own (see LocalError).
func IsLocal(err error) bool {
	var le *LocalError
	return errors.As(err, &le)
}

// IsTransport reports whether err is a host/connection failure.
func IsTransport(err error) bool {
	var te *TransportError
	return errors.As(err, &te)
}

// TailBuffer is an io.Writer that keeps the last Max lines written to it
// (for the last ffmpeg error lines of a failed job).
type TailBuffer struct {
	Max   int
	lines []string
	part  strings.Builder
}

// Write implements io.Writer.
func (t *TailBuffer) Write(p []byte) (int, error) {
	max := t.Max
	if max <= 0 {
		max = 20
	}
	for _, c := range p {
		if c == '\n' || c == '\r' {
			if t.part.Len() > 0 {
				t.lines = append(t.lines, t.part.String())
				t.part.Reset()
				if len(t.lines) > max {
					t.lines = t.lines[len(t.lines)-max:]
				}
			}
			continue
		}
		if t.part.Len() < 4096 {
			t.part.WriteByte(c)
		}
	}
	return len(p), nil
}

// String returns the kept lines joined by newlines.
func (t *TailBuffer) String() string {
	lines := t.lines
	if t.part.Len() > 0 {
		lines = append(lines[:len(lines):len(lines)], t.part.String())
	}
	return strings.Join(lines, "\n")
}

// Last returns the last n kept lines joined by " | ", for one-line messages.
func (t *TailBuffer) Last(n int) string {
	lines := strings.Split(t.String(), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, " | "))
}
