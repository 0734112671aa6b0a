package hosts

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// The executor: one long-lived session per host whose command is a small
// Perl program that runs the host's commands, so that the login shell (and
// with it the user's ~/.bashrc, which Debian's bash reads for every SSH
// command) starts once per connection instead of once per command. On a
// host whose dotfiles take 0.3 s (conda, pyenv, nvm init), a job used to
// pay that once per command: the encode, and on streaming hosts the
// remote SHA-256 checks of its transfers.
//
// Why not keep the sessions and skip the dotfiles instead: bash decides to
// read ~/.bashrc from SSH_CLIENT and SHLVL, and sshd lets a client set
// neither (AcceptEnv is LANG and LC_* on Debian); the login shell is the
// user's, not ours. Why not pipeline commands through one shell: a shell
// cannot carry several commands' stdout and stderr apart, binary-safe,
// while they run.
//
// Why Perl: it is on every Debian, Ubuntu and Raspberry Pi OS (perl-base,
// essential) and on macOS, and it has fork, setpgrp, pipes, select and
// waitpid without any module but POSIX (also in perl-base). A shell loop
// could not frame binary output or watch several pipes at once; a helper
// binary would have to be uploaded per architecture. Hosts without Perl,
// Windows hosts, and hosts where the executor does not start fall back to
// one session per command (posixWrapper), as before.
//
// The protocol runs over the session's stdin and stdout; every frame is a
// text header line, length-framed where bytes follow, so any output is
// carried as is:
//
//	manager → executor   start ID LEN\n<argv joined by NUL bytes>
//	                     kill ID 0\n
//	executor → manager   clustertx-exec 1\n      (ready; anything before it is dotfile noise)
//	                     ID started PID\n
//	                     ID out LEN\n<bytes>      (the command's stdout, as read)
//	                     ID err LEN\n<bytes>      (its stderr)
//	                     ID exit CODE\n           (128+N for signal N, as a shell reports it)
//	                     ID error LEN\n<message>  (pipe or fork failed: nothing ran)
//
// Each command runs as the POSIX wrapper runs it: execvp of argv (what
// setsid(1) or the wrapper's perl did; no shell word is interpreted), in a
// process group of its own, stdin /dev/null, stdout and stderr on pipes of
// their own; 127 when the program is not there, 126 when it cannot run.
// kill sends the group SIGTERM and, a second later, SIGKILL (a forked
// helper sleeps that second). When a command exits while its group still
// has members, they get the same. The exit frame comes after both pipes
// reached EOF (or 2 to 3 s after the exit, should something outside the
// group hold them), so all of a command's output precedes its status.
//
// When the executor's stdin reaches EOF (the manager closed it, or the
// connection died and sshd closed the session), or on SIGHUP/SIGTERM, it
// sends every group SIGTERM, then SIGKILL a second later, and exits: a
// lost manager leaves nothing running, as with the per-command watchdog.
const executorScript = `use strict;
use POSIX ();
my (%job, %bypid, %fd);
my $in = "";
$SIG{PIPE} = "IGNORE";
$SIG{CHLD} = sub {};
$SIG{HUP} = $SIG{TERM} = sub { quit() };
binmode STDIN;
binmode STDOUT;
sub put {
	my $s = shift;
	while (length $s) {
		my $n = syswrite STDOUT, $s;
		if (!defined $n) { next if $!{EINTR}; quit() }
		substr($s, 0, $n, "");
	}
}
sub quit {
	my @g = map { $_->{pid} } values %job;
	kill "TERM", -$_ for @g;
	select undef, undef, undef, 1 if @g;
	kill "KILL", -$_ for @g;
	POSIX::_exit(0);
}
sub stop {
	my $pg = shift;
	kill "TERM", -$pg;
	my $k = fork;
	return if !defined $k || $k;
	close STDIN;
	close STDOUT;
	select undef, undef, undef, 1;
	kill "KILL", -$pg;
	POSIX::_exit(0);
}
sub shut {
	my ($j, $k) = @_;
	my $fh = $j->{$k} or return;
	delete $fd{fileno $fh};
	close $fh;
	$j->{$k} = undef;
}
sub finish {
	my $j = shift;
	return if !defined $j->{st} || $j->{out} || $j->{err};
	my $st = $j->{st};
	delete $job{$j->{id}};
	delete $bypid{$j->{pid}};
	put("$j->{id} exit " . (($st & 127) ? 128 + ($st & 127) : $st >> 8) . "\n");
}
sub reap {
	while ((my $pid = waitpid(-1, POSIX::WNOHANG())) > 0) {
		my $j = $bypid{$pid} or next;
		$j->{st} = $?;
		$j->{end} = time + 3;
		stop($pid) if kill 0, -$pid;
		finish($j);
	}
}
sub fail {
	my ($id, $m) = @_;
	put("$id error " . length($m) . "\n$m");
}
sub start {
	my ($id, @argv) = @_;
	my ($or, $ow, $er, $ew);
	pipe($or, $ow) && pipe($er, $ew) or return fail($id, "pipe: $!");
	my $pid = fork;
	return fail($id, "fork: $!") if !defined $pid;
	if (!$pid) {
		setpgrp 0, 0;
		$SIG{$_} = "DEFAULT" for qw(PIPE CHLD HUP TERM);
		open STDIN, "<", "/dev/null";
		open STDOUT, ">&", $ow;
		open STDERR, ">&", $ew;
		exec { $argv[0] } @argv;
		my $e = $! + 0;
		print STDERR "$argv[0]: $!\n";
		POSIX::_exit($e == POSIX::ENOENT() ? 127 : 126);
	}
	setpgrp $pid, $pid;
	close $ow;
	close $ew;
	my $j = { id => $id, pid => $pid, out => $or, err => $er };
	$job{$id} = $bypid{$pid} = $j;
	$fd{fileno $or} = [$j, "out"];
	$fd{fileno $er} = [$j, "err"];
	put("$id started $pid\n");
}
sub requests {
	while ((my $nl = index $in, "\n") >= 0) {
		my ($op, $id, $n) = split / /, substr($in, 0, $nl);
		if ($op eq "start") {
			return if length($in) < $nl + 1 + $n;
			my $argv = substr $in, $nl + 1, $n;
			substr($in, 0, $nl + 1 + $n, "");
			start($id, split /\0/, $argv, -1);
			next;
		}
		substr($in, 0, $nl + 1, "");
		my $j = $job{$id};
		stop($j->{pid}) if $op eq "kill" && $j && !defined $j->{st};
	}
}
put("clustertx-exec 1\n");
while (1) {
	reap();
	my $now = time;
	my $wait = 1;
	for my $j (values %job) {
		if (defined $j->{st} && $now >= $j->{end}) {
			shut($j, "out");
			shut($j, "err");
			finish($j);
		} elsif (!defined $j->{st} && !$j->{out} && !$j->{err}) {
			$wait = 0.005;
		}
	}
	my $rin = "";
	vec($rin, $_, 1) = 1 for 0, keys %fd;
	my $n = select(my $rout = $rin, undef, undef, $wait);
	next if $n <= 0;
	if (vec($rout, 0, 1)) {
		my $r = sysread STDIN, $in, 65536, length $in;
		if (!defined $r) { next if $!{EINTR}; quit() }
		quit() if !$r;
		requests();
	}
	for my $f (keys %fd) {
		next if !vec($rout, $f, 1) || !$fd{$f};
		my ($j, $k) = @{$fd{$f}};
		my $r = sysread $j->{$k}, my $buf, 65536;
		next if !defined $r && ($!{EINTR} || $!{EAGAIN});
		if (!$r) {
			shut($j, $k);
			finish($j);
			next;
		}
		put("$j->{id} $k " . length($buf) . "\n" . $buf);
	}
}
`

// executorHello is the executor's first line.
const executorHello = "clustertx-exec 1"

// executorCommand is the session command that starts the executor (through
// the login shell, once). The script goes on one line: every statement
// ends with ; or }, and a quoted newline upsets csh-family shells.
func executorCommand() string {
	lines := strings.Split(executorScript, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSpace(l)
	}
	return "exec perl -e " + QuotePOSIX(strings.TrimSpace(strings.Join(lines, " ")))
}

// execStartTimeout bounds the executor's start: the login shell's dotfiles
// plus Perl's start-up.
const execStartTimeout = 20 * time.Second

// execMaxDeaths is how many executors may end under running commands
// before the transport stops restarting them and uses one session per
// command.
const execMaxDeaths = 3

// executor is the manager's side of one running executor.
type executor struct {
	t     *SSHTransport
	sess  *ssh.Session
	stdin io.WriteCloser
	diag  *syncTail // the executor's own stderr

	wmu sync.Mutex // one request at a time on stdin

	mu   sync.Mutex
	jobs map[uint64]*execJob // nil once the executor is gone
	next uint64
	gone chan struct{}
	err  error // why it is gone
}

// execJob is one command running on the executor.
type execJob struct {
	pid  int           // its process group, once started (under executor.mu)
	exit chan execExit // its end, sent once

	mu             sync.Mutex // held while its output is written
	stdout, stderr io.Writer
	closed         bool // its caller has returned: no more writes
}

type execExit struct {
	code int
	err  error // the command could not start (pipe, fork)
}

func (j *execJob) write(w io.Writer, p []byte) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.closed && w != nil {
		_, _ = w.Write(p)
	}
}

func (j *execJob) close() {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
}

// syncTail is a TailBuffer that one goroutine writes while another reads.
type syncTail struct {
	mu sync.Mutex
	tb TailBuffer
}

func (s *syncTail) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tb.Write(p)
}

func (s *syncTail) Last(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tb.Last(n)
}

// getExecutor returns the host's running executor, starting it on first
// use, or nil when commands go in sessions of their own (Windows, the
// PerCommandSessions option, an executor that could not start, or too many
// that died). Callers arriving while it starts wait for that start; an
// error is only ctx's.
func (t *SSHTransport) getExecutor(ctx context.Context) (*executor, error) {
	for {
		t.execMu.Lock()
		if t.execOff {
			t.execMu.Unlock()
			return nil, nil
		}
		if e := t.exe; e != nil {
			select {
			case <-e.gone:
				t.exe = nil
				t.execDeaths++
				if t.execDeaths >= execMaxDeaths {
					t.opts.Logf("ssh %s: executor ended %d times; one session per command from now on", t.name, t.execDeaths)
					t.execOff = true
				}
				t.execMu.Unlock()
				continue
			default:
				t.execMu.Unlock()
				return e, nil
			}
		}
		wait := t.execStart
		if wait == nil {
			wait = make(chan struct{})
			t.execStart = wait
			go func() {
				e, err := t.startExecutor()
				t.execMu.Lock()
				if err != nil {
					t.opts.Logf("ssh %s: no executor (%v); one session per command", t.name, err)
					t.execOff = true
				} else {
					t.exe = e
				}
				t.execStart = nil
				t.execMu.Unlock()
				close(wait)
			}()
		}
		t.execMu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// startExecutor opens the executor's session and waits for its hello.
func (t *SSHTransport) startExecutor() (*executor, error) {
	ctx, cancel := context.WithTimeout(context.Background(), execStartTimeout)
	defer cancel()
	sess, err := t.newSession(ctx, "start executor")
	if err != nil {
		return nil, err
	}
	e := &executor{t: t, sess: sess, diag: &syncTail{tb: TailBuffer{Max: 5}}, jobs: map[uint64]*execJob{}, gone: make(chan struct{})}
	stdout, err := sess.StdoutPipe()
	if err == nil {
		e.stdin, err = sess.StdinPipe()
	}
	if err != nil {
		_ = sess.Close()
		return nil, err
	}
	sess.Stderr = e.diag
	if err := sess.Start(executorCommand()); err != nil {
		_ = sess.Close()
		return nil, err
	}
	r := bufio.NewReaderSize(stdout, 64<<10)
	hello := make(chan error, 1)
	go func() { hello <- skipToHello(r) }()
	select {
	case err = <-hello:
	case <-ctx.Done():
		err = fmt.Errorf("no answer within %v", execStartTimeout)
	case <-t.dead:
		err = t.deadErr
	}
	if err != nil {
		_ = sess.Close()
		if errors.Is(err, io.EOF) { // it exited: say how (perl missing: 127)
			waited := make(chan error, 1)
			go func() { waited <- sess.Wait() }()
			select {
			case werr := <-waited:
				err = fmt.Errorf("executor exited before it started: %v", werr)
			case <-time.After(time.Second):
			}
		}
		if d := e.diag.Last(2); d != "" {
			err = fmt.Errorf("%w: %s", err, d)
		}
		return nil, err
	}
	go e.readLoop(r)
	t.opts.Logf("ssh %s: executor started", t.name)
	return e, nil
}

// skipToHello reads up to the executor's hello line. Whatever comes before
// it is what the login shell's dotfiles printed; more than 64 KiB of that
// is not an executor.
func skipToHello(r *bufio.Reader) error {
	skipped := 0
	for skipped < 64<<10 {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		if strings.TrimRight(line, "\r\n") == executorHello {
			return nil
		}
		skipped += len(line)
	}
	return errors.New("no executor hello in the first 64 KiB of output")
}

// readLoop dispatches the executor's frames until its stdout ends.
func (e *executor) readLoop(r *bufio.Reader) {
	e.fail(e.read(r))
}

func (e *executor) read(r *bufio.Reader) error {
	var buf []byte
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return err
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return fmt.Errorf("executor protocol: bad frame %q", line)
		}
		id, err1 := strconv.ParseUint(f[0], 10, 64)
		n, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || n < 0 {
			return fmt.Errorf("executor protocol: bad frame %q", line)
		}
		switch f[1] {
		case "out", "err", "error":
			if n > 1<<20 {
				return fmt.Errorf("executor protocol: frame of %d bytes", n)
			}
			if n > cap(buf) {
				buf = make([]byte, n)
			}
			b := buf[:n]
			if _, err := io.ReadFull(r, b); err != nil {
				return err
			}
			j := e.job(id)
			switch {
			case j == nil:
			case f[1] == "out":
				j.write(j.stdout, b)
			case f[1] == "err":
				j.write(j.stderr, b)
			default:
				e.end(id, execExit{code: -1, err: errors.New(string(b))})
			}
		case "started":
			e.mu.Lock()
			if j := e.jobs[id]; j != nil {
				j.pid = n
			}
			e.mu.Unlock()
		case "exit":
			e.end(id, execExit{code: n})
		default:
			return fmt.Errorf("executor protocol: bad frame %q", line)
		}
	}
}

func (e *executor) job(id uint64) *execJob {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.jobs[id]
}

// end delivers a command's end and forgets it.
func (e *executor) end(id uint64, x execExit) {
	e.mu.Lock()
	j := e.jobs[id]
	delete(e.jobs, id)
	e.mu.Unlock()
	if j != nil {
		j.exit <- x
	}
}

// forget drops a command whose end is no longer awaited.
func (e *executor) forget(id uint64) {
	e.mu.Lock()
	delete(e.jobs, id)
	e.mu.Unlock()
}

// fail ends the executor: the commands it ran get a TransportError from
// run. When the connection is still up, the executor itself may have been
// killed, leaving its commands running without anyone to report them:
// their groups are stopped from a session of their own.
func (e *executor) fail(err error) {
	e.mu.Lock()
	if e.jobs == nil {
		e.mu.Unlock()
		return
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = errors.New("executor ended")
	} else {
		err = fmt.Errorf("executor ended: %w", err)
	}
	e.err = err
	var pids []int
	for _, j := range e.jobs {
		if j.pid > 0 {
			pids = append(pids, j.pid)
		}
	}
	e.jobs = nil
	close(e.gone)
	e.mu.Unlock()
	_ = e.sess.Close()
	t := e.t
	if t.Err() != nil {
		return
	}
	if d := e.diag.Last(2); d != "" {
		t.opts.Logf("ssh %s: %v: %s", t.name, err, d)
	} else {
		t.opts.Logf("ssh %s: %v", t.name, err)
	}
	if len(pids) > 0 {
		go func() {
			// A host loaded enough to lose its executor may also be slow
			// to start the kill's session: each signal is tried again
			// (for up to about 40 s) rather than given up after one try.
			for _, sig := range []string{"TERM", "KILL"} {
				for _, pid := range pids {
					for try := 0; try < 5 && t.Err() == nil && !t.killPID(pid, sig); try++ {
					}
				}
				time.Sleep(time.Second)
			}
		}()
	}
}

// lost is the error of a command whose executor ended under it.
func (e *executor) lost(op string) error {
	<-e.gone
	err := fmt.Errorf("%v; the command's end is unknown", e.err)
	if derr := e.t.Err(); derr != nil {
		err = fmt.Errorf("%w (%v)", err, derr)
	}
	return e.t.terr(op, err)
}

func (e *executor) send(req string) error {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	_, err := io.WriteString(e.stdin, req)
	return err
}

// close asks the executor to stop every command and exit (stdin EOF).
// Not under wmu: a request blocked on a full channel must not hold it up.
func (e *executor) close() {
	_ = e.stdin.Close()
}

// run runs argv on the executor and returns its exit status. stdout and
// stderr are written from the executor's reader, which serves every
// command of the host: they must not block. Nothing is written to them
// once run has returned. When ctx ends, the command's group gets SIGTERM,
// then SIGKILL a second later, and run returns ctx's error once the
// command ended (or after killGrace).
func (e *executor) run(ctx context.Context, op string, argv []string, stdout, stderr io.Writer) (int, error) {
	payload := strings.Join(argv, "\x00")
	if strings.Count(payload, "\x00") != len(argv)-1 {
		return -1, fmt.Errorf("host %s: %s: an argument contains a NUL byte", e.t.name, op)
	}
	j := &execJob{stdout: stdout, stderr: stderr, exit: make(chan execExit, 1)}
	defer j.close()
	e.mu.Lock()
	if e.jobs == nil {
		e.mu.Unlock()
		return -1, e.lost(op)
	}
	e.next++
	id := e.next
	e.jobs[id] = j
	e.mu.Unlock()
	if err := e.send("start " + strconv.FormatUint(id, 10) + " " + strconv.Itoa(len(payload)) + "\n" + payload); err != nil {
		e.fail(fmt.Errorf("sending a command: %w", err))
		return -1, e.lost(op)
	}
	select {
	case x := <-j.exit:
		if x.err != nil {
			return -1, e.t.terr(op+": start", x.err)
		}
		return x.code, nil
	case <-e.gone:
		return -1, e.lost(op)
	case <-ctx.Done():
	}
	// The executor sends SIGKILL a second after SIGTERM; a second request
	// after killGrace covers a group that was still forming (a process
	// forked between the two signals) and bounds the wait.
	for _, wait := range []time.Duration{e.t.killGrace, 3 * time.Second} {
		_ = e.send("kill " + strconv.FormatUint(id, 10) + " 0\n")
		timer := time.NewTimer(wait)
		select {
		case <-j.exit:
			timer.Stop()
			return -1, ctx.Err()
		case <-e.gone:
			timer.Stop()
			return -1, ctx.Err()
		case <-timer.C:
		}
		e.mu.Lock()
		pid := j.pid
		e.mu.Unlock()
		e.t.opts.Logf("ssh %s: %s (group %d) still running %v after kill", e.t.name, op, pid, wait)
	}
	e.forget(id)
	return -1, ctx.Err()
}
