// Package app is the command line: it parses pytranscoder-compatible
// arguments (sticky -c/-p/-t/-m that apply to the files after them, global
// flags anywhere), loads the config, runs the manager and turns the outcome
// into an exit code. It owns no transcoding logic; main only wires signals
// and calls Run.
package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"clustertx/cluster"
	"clustertx/config"
	"clustertx/hosts"
	"clustertx/journal"
	"clustertx/metrics"
	"clustertx/report"
	"clustertx/window"
)

// Exit codes, documented in the README.
const (
	ExitOK          = 0
	ExitFatal       = 1   // config error, no usable host
	ExitUsage       = 2   // bad command line
	ExitIncomplete  = 3   // some files failed or were not run
	ExitLocked      = 4   // another run holds the journal lock
	ExitWindow      = 5   // a window closed with work left (--until, hosts' window:); nothing failed
	ExitInterrupted = 130 // Ctrl-C / SIGTERM
)

// ExitError carries the exit code main should use.
type ExitError struct {
	Code int
	Err  error // nil: nothing more to print
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// onUsageError reports a bad command line as an exit-2 error, without the
// whole help text (main prints the error and a pointer to --help).
func onUsageError(_ context.Context, _ *cli.Command, err error, _ bool) error {
	return usageErr("%v", err)
}

func usageErr(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// Code returns the exit code for err (nil → 0).
func Code(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if errors.Is(err, context.Canceled) {
		return ExitInterrupted
	}
	return ExitFatal
}

// sticky flags: they change the state for the files that follow them.
var stickyFlags = map[string]string{
	"-c": "cluster", "--cluster": "cluster",
	"-p": "profile", "--profile": "profile",
	"-t": "template", "--template": "template",
	"-m": "mixins", "--mixins": "mixins",
}

func globalFlags() []cli.Flag {
	flags := []cli.Flag{
		&cli.BoolFlag{Name: "version", Usage: "print the version, commit and Go version, and exit"},
		&cli.StringFlag{Name: "config", Aliases: []string{"y"}, Usage: "config `FILE` (default $CLUSTERTX_CONFIG, then ~/.transcode.yml, then the built-in default)"},
		&cli.BoolFlag{Name: "keep", Aliases: []string{"k"}, Usage: "keep the source file; the output is written beside it"},
		&cli.BoolFlag{Name: "dry-run", Usage: "show the plan, host checks and exact commands; change nothing"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "more detail on stderr"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only errors and the summary"},
		&cli.StringFlag{Name: "host", Usage: "use only the host `NAME`"},
		&cli.StringSliceFlag{Name: "from-file", Usage: "read files to process from `FILE`, one per line (finished entries are removed at the end)"},
		&cli.BoolFlag{Name: "strict", Usage: "unknown keys in the config are errors, not warnings"},
		&cli.BoolFlag{Name: "accept-new-host-keys", Usage: "trust and record SSH host keys of hosts not yet in known_hosts (like StrictHostKeyChecking=accept-new); changed keys are always refused"},
		&cli.StringSliceFlag{Name: "known-hosts", Usage: "user known_hosts `FILE` to verify host keys against (default UserKnownHostsFile, else ~/.ssh/known_hosts); the global files are always checked too"},
		&cli.StringFlag{Name: "ssh-config", Usage: "ssh client config `FILE` (default ~/.ssh/config; \"none\" to ignore)"},
		&cli.IntFlag{Name: "max-attempts", Value: 2, Usage: "encode attempts per file (on different hosts when possible) before it is failed"},
		&cli.DurationFlag{Name: "check-timeout", Value: 15 * time.Second, Usage: "time allowed to connect to and check each host"},
		&cli.DurationFlag{Name: "reprobe-interval", Value: 30 * time.Second, Usage: "first re-probe of a host that is down (it then backs off up to 5m); a host that answers joins the run"},
		&cli.DurationFlag{Name: "host-wait", Value: 5 * time.Minute, Usage: "how long files wait for a host to come back when every host that can take them is down"},
		&cli.DurationFlag{Name: "stall-timeout", Value: 5 * time.Minute, Usage: "an encode that reports no progress for this long is stopped and moved to another host"},
		&cli.BoolFlag{Name: "split", Usage: "split mode: encode each long file in segments on several hosts at once, then join them (lengths from the rule's or profile's split: key, else files of 30m or more in 5m segments)"},
		&cli.BoolFlag{Name: "no-split", Usage: "never split a file, even where the config's split: key asks for it"},
		&cli.BoolFlag{Name: "no-speculation", Usage: "never start a second copy of a job that runs much slower than an idle host would (the first verified copy wins)"},
		&cli.BoolFlag{Name: "calibrate", Usage: "run a calibration encode on each host at check time (about 1.5 s, overlapped): its speed is the first guess for a host with no journal speed and no weight"},
		&cli.StringFlag{Name: "until", Usage: "end the run at `HH:MM` local time (a time past today means tomorrow): no job starts that would end later, and one still running then is stopped (config until:); exit 5 if work remains"},
		&cli.DurationFlag{Name: "grace", Usage: "let a job running when its window (--until, a host's window:) closes finish if it does within this long (config grace:)"},
		&cli.BoolFlag{Name: "no-prefetch", Usage: "one file at a time per slot: a streaming host never uploads the next file while one encodes, and no host starts its next encode while a result is downloaded or checked"},
		&cli.StringFlag{Name: "journal", Usage: "resume journal `FILE` (default $XDG_STATE_HOME/clustertx/journal.jsonl)"},
		&cli.BoolFlag{Name: "no-journal", Usage: "do not read or write the resume journal (and take no lock)"},
		&cli.BoolFlag{Name: "force", Usage: "redo files the journal says are already done or kept"},
		&cli.IntFlag{Name: "max-failed-runs", Value: 3, Usage: "skip files that failed in this many earlier runs (0: always retry)"},
		&cli.StringFlag{Name: "report", Usage: "write a machine-readable JSON report of the run to `FILE` (schema clustertx.report/v1)"},
		&cli.StringFlag{Name: "metrics-file", Usage: "write Prometheus metrics to `FILE` (node_exporter textfile collector), periodically and at the end"},
		&cli.StringFlag{Name: "metrics-addr", Usage: "serve /metrics and /health on `ADDR` (e.g. :9464) during the run"},
		&cli.StringSliceFlag{Name: "notify", Usage: "send the end-of-run summary to `URL` (repeatable; http(s):// JSON webhook, ntfy://host/topic, gotify://host/TOKEN, discord://TOKEN@ID, apprise://host/KEY; adds to config notify:)"},
		&cli.BoolFlag{Name: "notify-each-failure", Usage: "also notify once per failed file, as it fails (config notify_each_failure)"},
		// Sticky flags, shown for --help; they are consumed by splitArgs.
		&cli.StringFlag{Name: "cluster", Aliases: []string{"c"}, Usage: "run the files that follow on cluster `NAME` (repeatable: -c A f1 -c B f2)"},
		&cli.StringFlag{Name: "profile", Aliases: []string{"p"}, Usage: "encode the files that follow with profile `NAME`, bypassing rules"},
		&cli.StringFlag{Name: "template", Aliases: []string{"t"}, Usage: "like -p, for a template `NAME`"},
		&cli.StringFlag{Name: "mixins", Aliases: []string{"m"}, Usage: "apply mixin profiles `A,B` to the files that follow"},
	}
	batchOnly(flags)
	return flags
}

// hostsFlags are the global flags that subcommands (`clustertx hosts`) also
// read, so they may be given before or after the subcommand's name.
var hostsFlags = map[string]bool{
	"config": true, "strict": true, "known-hosts": true, "ssh-config": true, "accept-new-host-keys": true,
	"check-timeout": true, "verbose": true, "quiet": true, "cluster": true,
}

// batchOnly marks the flags that only a batch reads as local, so that they
// are neither accepted after a subcommand nor listed in its help.
func batchOnly(flags []cli.Flag) {
	for _, f := range flags {
		if hostsFlags[f.Names()[0]] {
			continue
		}
		switch f := f.(type) {
		case *cli.BoolFlag:
			f.Local = true
		case *cli.StringFlag:
			f.Local = true
		case *cli.StringSliceFlag:
			f.Local = true
		case *cli.IntFlag:
			f.Local = true
		case *cli.DurationFlag:
			f.Local = true
		}
	}
}

// sticky is the state the sticky flags build up.
type sticky struct {
	cluster, profile string
	mixins           []string
}

func (s *sticky) set(kind, val string) {
	switch kind {
	case "cluster":
		s.cluster = val
	case "profile", "template":
		s.profile = val
	case "mixins":
		s.mixins = nil
		for _, m := range strings.Split(val, ",") {
			if m = strings.TrimSpace(m); m != "" {
				s.mixins = append(s.mixins, m)
			}
		}
	}
}

func (s sticky) item(path string) cluster.WorkItem {
	return cluster.WorkItem{Path: path, Cluster: s.cluster, Profile: s.profile, Mixins: append([]string(nil), s.mixins...)}
}

// parsed is the command line after splitArgs.
type parsed struct {
	global    []string // for urfave/cli
	items     []cluster.WorkItem
	fromFiles []fromFile
	final     sticky // state at the end (for default_queue_file)
}

type fromFile struct {
	path  string
	state sticky
}

// splitArgs walks the arguments left to right as pytranscoder does: sticky
// flags change the state for the files after them, --from-file takes the
// state where it appears, global flags go to urfave/cli. "--" ends flags.
func splitArgs(args []string, flags []cli.Flag) (*parsed, error) {
	takesValue := map[string]bool{}
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			name := "--" + n
			if len(n) == 1 {
				name = "-" + n
			}
			takesValue[name] = !isBool
		}
	}
	p := &parsed{}
	var st sticky
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			for _, f := range args[i+1:] {
				p.items = append(p.items, st.item(f))
			}
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			p.items = append(p.items, st.item(a))
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		if kind, ok := stickyFlags[name]; ok || name == "--from-file" {
			if !hasVal {
				if i+1 >= len(args) {
					return nil, usageErr("%s needs a value", name)
				}
				i++
				val = args[i]
			}
			if name == "--from-file" {
				p.fromFiles = append(p.fromFiles, fromFile{path: val, state: st})
				continue
			}
			st.set(kind, val)
			continue
		}
		p.global = append(p.global, a)
		if takesValue[name] && !hasVal && i+1 < len(args) {
			i++
			p.global = append(p.global, args[i])
		}
	}
	p.final = st
	return p, nil
}

// isSubcommand reports whether the first positional argument names a
// subcommand (flag values are skipped, so "-c hosts" is a cluster name).
func isSubcommand(args []string, flags []cli.Flag, cmds []*cli.Command) bool {
	takesValue := map[string]bool{}
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			takesValue["-"+n], takesValue["--"+n] = !isBool, !isBool
		}
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return false
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			if takesValue[a] {
				i++
			}
			continue
		}
		for _, c := range cmds {
			if c.HasName(a) {
				return true
			}
		}
		return false
	}
	return false
}

// Run runs clustertx with args (args[0] is the program name).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := globalFlags()
	var runErr error
	a := &cli.Command{
		Name:  "clustertx",
		Usage: "batch-transcode a media library across every machine you own, over SSH",
		UsageText: "clustertx [flags] [-c CLUSTER] [-p PROFILE] [-m MIXINS] FILE|DIR... [-c CLUSTER2 FILE...]\n" +
			"clustertx hosts [-c CLUSTER] [--json]\n" +
			"clustertx quality [-c CLUSTER] [-p PROFILE] [--target METRIC=VALUE] [--json] [--dry-run] FILE...\n" +
			"clustertx completion bash|zsh|fish|pwsh",
		Description: "Reads pytranscoder's transcode.yml (without one, a built-in default encodes on this machine: " +
			"HEVC and AV1 sources are skipped, everything else goes to HEVC). " +
			"Exit codes: 0 all done (skips included), 1 fatal, 2 usage, 3 some files failed or were not run, " +
			"4 another run holds the journal lock, 5 a window closed with work left (--until, a host's window:; nothing failed), 130 interrupted.",
		Flags:                           flags,
		Commands:                        commands(),
		HideHelpCommand:                 true,
		HideVersion:                     true, // our --version: urfave/cli's takes -v, which is --verbose here
		EnableShellCompletion:           true,
		ConfigureShellCompletionCommand: configureCompletion,
		Writer:                          stdout,
		ErrWriter:                       stderr,
		ExitErrHandler:                  func(context.Context, *cli.Command, error) {}, // no os.Exit inside urfave/cli
		OnUsageError:                    onUsageError,
		Action: func(context.Context, *cli.Command) error {
			return nil
		},
	}
	if len(args) == 0 {
		args = []string{"clustertx"}
	}
	// `completion` is added by urfave/cli itself; it routes like a subcommand.
	cmds := append(commands(), &cli.Command{Name: "completion"})
	if args[len(args)-1] == completeFlag {
		complete(args, flags, cmds, stdout)
		return nil
	}
	if isSubcommand(args[1:], flags, cmds) {
		a.Action = nil
		if err := a.Run(ctx, args); err != nil {
			if Code(err) != ExitFatal || errors.As(err, new(*ExitError)) {
				return err
			}
			return usageErr("%v", err)
		}
		return nil
	}
	p, err := splitArgs(args[1:], flags)
	if err != nil {
		return err
	}
	var cctx *cli.Command
	a.Action = func(_ context.Context, c *cli.Command) error {
		if c.NArg() > 0 {
			return usageErr("unexpected argument %q", c.Args().First())
		}
		cctx = c
		return nil
	}
	if err := a.Run(ctx, append([]string{args[0]}, p.global...)); err != nil {
		return usageErr("%v", err)
	}
	if cctx == nil { // --help was handled
		return nil
	}
	if cctx.Bool("version") {
		printVersion(stdout)
		return nil
	}
	runErr = run(ctx, cctx, p, stdout, stderr)
	return runErr
}

// loadConfig loads -y/--config (--strict) for a command and prints its
// warnings unless -q; a config that cannot be loaded is exit 1.
func loadConfig(c *cli.Command, stderr io.Writer) (*config.Config, error) {
	cfg, err := config.Load(config.LoadOptions{Path: c.String("config"), Strict: c.Bool("strict")})
	if err != nil {
		return nil, &ExitError{Code: ExitFatal, Err: err}
	}
	if !c.Bool("quiet") {
		for _, w := range cfg.Warnings {
			fmt.Fprintf(stderr, "clustertx: warning: %s\n", w.Error())
		}
	}
	return cfg, nil
}

func run(ctx context.Context, c *cli.Command, p *parsed, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(c, stderr)
	if err != nil {
		return err
	}
	nt, err := newNotifier(c, cfg, stderr)
	if err != nil {
		return &ExitError{Code: ExitFatal, Err: err}
	}
	items := p.items
	for _, ff := range p.fromFiles {
		more, err := readQueueFile(ff.path, ff.state)
		if err != nil {
			return &ExitError{Code: ExitFatal, Err: err}
		}
		items = append(items, more...)
	}
	if len(items) == 0 && len(p.fromFiles) == 0 {
		if cfg.DefaultQueueFile == "" {
			fmt.Fprintln(stdout, "nothing to do: no files given and no default_queue_file configured")
			return nil
		}
		if items, err = readQueueFile(cfg.DefaultQueueFile, p.final); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				fmt.Fprintf(stdout, "nothing to do: default_queue_file %s does not exist\n", cfg.DefaultQueueFile)
				return nil
			}
			return &ExitError{Code: ExitFatal, Err: err}
		}
	}
	if len(items) == 0 {
		fmt.Fprintln(stdout, "nothing to do")
		return nil
	}
	if err := checkSelections(cfg, items, c.Bool("quiet"), stderr); err != nil {
		return err
	}

	sshOpts := hosts.SSHOptions{
		KnownHostsFiles:   c.StringSlice("known-hosts"),
		AcceptNewHostKeys: c.Bool("accept-new-host-keys") && !c.Bool("dry-run"),
		SSHConfigFile:     c.String("ssh-config"),
		ConnectTimeout:    c.Duration("check-timeout"),
	}
	if c.Bool("verbose") {
		sshOpts.Logf = func(format string, args ...any) {
			fmt.Fprintf(stderr, "clustertx: debug: "+format+"\n", args...)
		}
	}
	logw := stderr
	if c.Bool("quiet") {
		logw = io.Discard
	}

	// The journal: what earlier runs finished, and the lock that keeps two
	// runs (last night's cron still going) apart. A dry run reads it (so it
	// shows what a real run would skip) without locking or writing it.
	var jr *journal.Journal
	if !c.Bool("no-journal") {
		path := c.String("journal")
		if path == "" {
			path = journal.DefaultPath()
		}
		if c.Bool("dry-run") {
			jr, err = journal.OpenReadOnly(expandHome(path))
		} else {
			jr, err = journal.Open(expandHome(path))
		}
		if err != nil {
			code := ExitFatal
			var le *journal.LockedError
			if errors.As(err, &le) {
				code = ExitLocked
			}
			result := &ExitError{Code: code, Err: err}
			if nt != nil && !c.Bool("dry-run") {
				// Unattended runs learn this way that none of them can
				// start: last night's run still holds the journal (stuck,
				// or simply still going), or the journal is unreadable.
				nctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				nt.RunFinished(nctx, summary(nil, result, time.Now(), items))
				cancel()
			}
			return result
		}
		defer jr.Close()
		for _, w := range jr.Warnings() {
			fmt.Fprintf(stderr, "clustertx: warning: journal: %s\n", w)
		}
	}

	console := report.NewConsole(stderr, report.ConsoleOptions{Quiet: c.Bool("quiet"), Verbose: c.Bool("verbose")})
	defer console.Close()
	rec := report.NewRecorder()
	observers := cluster.Observers{rec}
	if !c.Bool("dry-run") {
		observers = append(observers, console)
		logw = console.Log()
	}
	if nt != nil && !c.Bool("dry-run") {
		observers = append(observers, failureNotifier{nt: nt, ctx: ctx})
	}
	if c.String("metrics-file") != "" || c.String("metrics-addr") != "" {
		mc := metrics.New()
		observers = append(observers, mc)
		if f := c.String("metrics-file"); f != "" {
			stop := mc.StartTextfile(ctx, expandHome(f), 15*time.Second)
			defer stop()
		}
		if a := c.String("metrics-addr"); a != "" {
			addr, stop, err := mc.Serve(ctx, a)
			if err != nil {
				return &ExitError{Code: ExitFatal, Err: fmt.Errorf("metrics: %w", err)}
			}
			defer stop()
			fmt.Fprintf(stderr, "clustertx: metrics on http://%s/metrics\n", addr)
		}
	}
	opts := cluster.Options{
		Config: cfg,
		Connect: func(ctx context.Context, def *hosts.Def) (hosts.Transport, error) {
			return hosts.Connect(ctx, def, sshOpts)
		},
		Keep:         c.Bool("keep"),
		DryRun:       c.Bool("dry-run"),
		Verbose:      c.Bool("verbose"),
		OnlyHost:     c.String("host"),
		MaxAttempts:  c.Int("max-attempts"),
		CheckTimeout: c.Duration("check-timeout"),
		Out:          stdout,
		Log:          logw,
		Observer:     observers,

		ReprobeInterval: c.Duration("reprobe-interval"),
		HostWait:        c.Duration("host-wait"),
		StallTimeout:    c.Duration("stall-timeout"),
		NoSpeculation:   c.Bool("no-speculation"),
		NoPrefetch:      c.Bool("no-prefetch"),
		Calibrate:       c.Bool("calibrate"),
		Split:           c.Bool("split"),
		NoSplit:         c.Bool("no-split"),
		Journal:         jr,
		Force:           c.Bool("force"),
		MaxFailedRuns:   c.Int("max-failed-runs"),
	}
	if opts.Until, opts.Grace, err = runWindow(c, cfg, time.Now()); err != nil {
		return err
	}
	started := time.Now()
	rep, err := cluster.Run(ctx, opts, items)
	console.Close()
	result := runResult(ctx, rep, err)
	if nt != nil && !opts.DryRun {
		// On a fresh context: an interrupted run is worth a notification too.
		nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		nt.RunFinished(nctx, summary(rep, result, started, items))
		cancel()
	}
	if rep != nil {
		report.WriteSummary(stdout, rep)
		if !opts.DryRun {
			report.WriteHostEvents(stdout, rec)
			if cerr := cleanQueueFiles(rep); cerr != nil {
				fmt.Fprintf(stderr, "clustertx: warning: %v\n", cerr)
			}
		}
		if path := c.String("report"); path != "" {
			if werr := report.WriteJSONFile(expandHome(path), rep, rec); werr != nil {
				fmt.Fprintf(stderr, "clustertx: error: writing report: %v\n", werr)
			}
		}
	}
	return result
}

// runWindow is the run's end (--until, else config until:; zero: none)
// and grace (--grace, else config grace:).
func runWindow(c *cli.Command, cfg *config.Config, now time.Time) (time.Time, time.Duration, error) {
	grace := cfg.Grace
	if c.IsSet("grace") {
		if grace = c.Duration("grace"); grace < 0 {
			return time.Time{}, 0, usageErr("--grace %s: must not be negative", grace)
		}
	}
	s := cfg.Until
	if c.IsSet("until") {
		s = c.String("until")
	}
	if s == "" {
		return time.Time{}, grace, nil
	}
	m, err := window.ParseClock(s)
	if err != nil {
		return time.Time{}, 0, usageErr("--until: %v", err)
	}
	return window.Until(m, now), grace, nil
}

// runResult turns the manager's outcome into the error Run returns.
func runResult(ctx context.Context, rep *cluster.Report, err error) error {
	switch {
	case ctx.Err() != nil:
		return &ExitError{Code: ExitInterrupted, Err: errors.New("interrupted; originals are untouched, temporary files removed")}
	case err != nil:
		return &ExitError{Code: ExitFatal, Err: err}
	case rep.Incomplete() && rep.Count(cluster.Failed) == 0 && rep.WindowClosed() == rep.Count(cluster.NotRun):
		return &ExitError{Code: ExitWindow, Err: fmt.Errorf("window closed: %d not run; the next run takes them", rep.WindowClosed())}
	case rep.Incomplete():
		return &ExitError{Code: ExitIncomplete, Err: fmt.Errorf("%d failed, %d not run", rep.Count(cluster.Failed), rep.Count(cluster.NotRun))}
	}
	return nil
}

// checkSelections validates the -c/-p/-t/-m choices before anything is
// probed or run (unknown -p/-t/-m: exit 2; a cluster with no hosts: exit
// 1) and prints the warnings for how the mixins will apply.
func checkSelections(cfg *config.Config, items []cluster.WorkItem, quiet bool, stderr io.Writer) error {
	var sels []config.Selection
	for _, it := range items {
		sels = append(sels, config.Selection{Cluster: it.Cluster, Profile: it.Profile, Mixins: it.Mixins})
	}
	ws, err := cfg.CheckSelections(sels)
	if errors.Is(err, config.ErrUsage) {
		return &ExitError{Code: ExitUsage, Err: err}
	} else if err != nil {
		return &ExitError{Code: ExitFatal, Err: err}
	}
	for _, w := range ws {
		if !quiet {
			fmt.Fprintf(stderr, "clustertx: warning: %s\n", w.Error())
		}
	}
	return nil
}

// readQueueFile reads one path per line (blank lines and # comments
// skipped, trailing whitespace trimmed).
func readQueueFile(path string, st sticky) ([]cluster.WorkItem, error) {
	path = expandHome(path)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("queue file: %w", err)
	}
	defer f.Close()
	var out []cluster.WorkItem
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \t\r")
		if line == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		it := st.item(expandHome(line))
		it.Source, it.Line = path, line
		out = append(out, it)
	}
	return out, sc.Err()
}

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, p[2:])
		}
	}
	return p
}

// cleanQueueFiles removes finished entries (done, kept by threshold,
// skipped by rule) from the queue files they came from. Failed and not-run
// entries stay, and lines appended during the run are kept: the file is
// re-read now and replaced atomically.
func cleanQueueFiles(rep *cluster.Report) error {
	finished := map[string]map[string]bool{} // queue file → lines/paths to drop
	for _, f := range rep.Files {
		if f.Item.Source == "" {
			continue
		}
		switch f.Outcome {
		case cluster.Done, cluster.Kept, cluster.Skipped:
			m := finished[f.Item.Source]
			if m == nil {
				m = map[string]bool{}
				finished[f.Item.Source] = m
			}
			m[f.Item.Line] = true
			m[f.Path] = true
		}
	}
	for file, drop := range finished {
		data, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("updating queue file: %w", err)
		}
		var keep []string
		for _, line := range strings.Split(string(data), "\n") {
			t := strings.TrimRight(line, " \t\r")
			abs, _ := filepath.Abs(expandHome(t))
			if t != "" && (drop[t] || drop[abs]) {
				continue
			}
			keep = append(keep, line)
		}
		out := strings.Join(keep, "\n")
		if strings.TrimSpace(out) == "" {
			out = ""
		}
		if err := writeAtomic(file, []byte(out)); err != nil {
			return fmt.Errorf("updating queue file: %w", err)
		}
	}
	return nil
}

func writeAtomic(path string, data []byte) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".clustertx-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(st.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
