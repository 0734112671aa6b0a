package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"clustertx/hosts"
	"clustertx/media"
	"clustertx/split"
)

// printHostTable writes the host check table, with each host's role:
// normal, fallback (works only when no other host can) or disabled.
//
// The WINDOW column says when each host takes jobs (its window: key, in
// local time, and whether it is open now); a line after the table gives
// the run's own end (--until) and grace.
func printHostTable(w io.Writer, checks []hosts.CheckResult, hs *hostSet, o *Options) {
	reprobe, dryRun, now := o.ReprobeInterval, o.DryRun, o.Now()
	if len(checks) == 0 && len(hs.disabled) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tTYPE\tROLE\tSTATUS\tLATENCY\tFFMPEG\tWINDOW\tNOTE")
	for _, c := range checks {
		status := "up"
		note := ""
		if !c.Up {
			status = "DOWN"
			note = fmt.Sprintf("down since %s: %s", time.Now().Add(-c.Latency).Format("15:04:05"), c.Reason)
			if !dryRun {
				note += fmt.Sprintf("; next probe in %s", reprobe)
			}
		} else if c.Free >= 0 {
			note = media.FormatBytes(c.Free) + " free in working_dir"
		}
		role := "normal"
		d := hs.byName[c.Host]
		if d != nil && d.Fallback {
			role = "fallback"
		}
		if c.Up && c.Speed > 0 {
			note = strings.TrimSpace(fmt.Sprintf("est. speed %s (%s, calibration %s) %s", hosts.FormatSpeed(c.Speed), c.CalibProfile, c.CalibTime.Round(time.Millisecond), note))
		}
		if d != nil && d.MaxLoad > 0 && c.Load >= 0 {
			note = strings.TrimSpace(fmt.Sprintf("load %.2f (max_load %g) %s", c.Load, d.MaxLoad, note))
		}
		win := "always"
		if d != nil {
			win = d.Window.Cell(now)
			if open, next := d.Window.At(now); !d.Window.Always() && !next.IsZero() {
				verb := "opens"
				if open {
					verb = "closes"
				}
				if note != "" {
					note = "; " + note
				}
				note = fmt.Sprintf("window %s %s%s", verb, next.Format("15:04"), note)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Host, c.Type, role, status,
			c.Latency.Round(time.Millisecond), dash(c.FFmpeg), win, note)
	}
	for _, d := range hs.disabled {
		why := "status: disabled"
		if d.DisabledBy != "" {
			why = d.DisabledBy
		}
		fmt.Fprintf(tw, "%s\t%s\tdisabled\t-\t-\t-\t-\tnot contacted (%s)\n", d.Name, d.Type, why)
	}
	tw.Flush()
	if !o.Until.IsZero() {
		fmt.Fprintf(w, "run window: until %s (in %s); no job starts that is predicted to end later", o.Until.Format("Mon 15:04"), o.Until.Sub(now).Round(time.Second))
		if o.Grace > 0 {
			fmt.Fprintf(w, "; a job still running then may finish within %s", o.Grace)
		} else {
			fmt.Fprintf(w, "; a job still running then is stopped")
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// printPlan writes, per file, what --dry-run promises: probe summary, rule,
// profile and mixins, eligible hosts and the exact command each would run.
func (m *manager) printPlan(p *Plan) {
	w := m.opts.Out
	for _, j := range p.Jobs {
		fmt.Fprintf(w, "%s\n", displayPath(j.Item.Path))
		if j.Info != nil {
			fmt.Fprintf(w, "  probe:    %s\n", j.Info.Summary())
		}
		switch {
		case j.Item.Profile != "":
			fmt.Fprintf(w, "  rule:     none (profile forced with -p/-t)\n")
		case j.Rule != "" && m.cfg.Embedded:
			fmt.Fprintf(w, "  rule:     %s (built-in default rule; no config file found)\n", j.Rule)
		case j.Rule != "":
			fmt.Fprintf(w, "  rule:     %s\n", j.Rule)
		}
		if j.Outcome != "" {
			fmt.Fprintf(w, "  outcome:  %s: %s\n\n", j.Outcome, j.Reason)
			continue
		}
		prof := j.Profile.Name
		if len(j.Item.Mixins) > 0 {
			prof += " + mixins " + strings.Join(j.Item.Mixins, ",")
		}
		fmt.Fprintf(w, "  profile:  %s\n", prof)
		if out, err := outputPath(j.Item.Path, j.Profile.Extension, m.opts.Keep); err == nil {
			fmt.Fprintf(w, "  output:   %s\n", displayPath(out))
		}
		fmt.Fprintf(w, "  hosts:    %s\n", hostNames(j.Eligible))
		for _, h := range sortedKeys(j.Excluded) {
			fmt.Fprintf(w, "  not on:   %s: %s\n", h, j.Excluded[h])
		}
		m.printVariants(w, j)
		if j.Quality != nil {
			// The search reads the keyframes (read-only, like the probe).
			m.printSearch(context.Background(), w, j, j.Quality)
			fmt.Fprintf(w, "  (the commands below run at the level the search chooses)\n")
		}
		if j.SplitNote != "" {
			fmt.Fprintf(w, "  split:    %s\n", j.SplitNote)
		}
		if j.Split != nil {
			m.printSplit(w, j)
			fmt.Fprintln(w)
			continue
		}
		for _, h := range j.Eligible {
			m.printHostCommand(w, j, h)
		}
		fmt.Fprintln(w)
	}
}

func (m *manager) printHostCommand(w io.Writer, j *Job, h *hosts.Def) {
	prof, err := profileFor(m.cfg, j, h)
	if err != nil {
		fmt.Fprintf(w, "    %s: %v\n", h.Name, err)
		return
	}
	final, err := outputPath(j.Item.Path, prof.Extension, m.opts.Keep)
	if err != nil {
		fmt.Fprintf(w, "    %s: %v\n", h.Name, err)
		return
	}
	tok := "XXXXXXXXXXXX"
	tmp := tempPath(final, tok)
	var t hosts.Transport = joinOnly{h}
	variant := ""
	if variantsOf(prof) != nil {
		c, ok := m.standingVariant(h.Name, prof.Name, j.Item.Mixins)
		c.Unknown = c.Unknown || !ok
		variant = c.Key
		if c.Unknown || c.Key == "" {
			fmt.Fprintf(w, "    %s (%s): encoder variant %s\n", h.Name, h.Type, c.Describe())
			return
		}
	}
	argv, remoteIn, remoteOut, notes, err := m.commandFor(j, h, t, prof, variant, tmp, tok)
	if err != nil {
		fmt.Fprintf(w, "    %s: %v\n", h.Name, err)
		return
	}
	label := h.Name + " (" + string(h.Type)
	if h.Profile != "" {
		label += ", profile " + prof.Name
	}
	if variant != "" {
		label += ", variant " + variant
	}
	label += ")"
	fmt.Fprintf(w, "    %s:\n", label)
	for _, n := range notes {
		fmt.Fprintf(w, "      note     %s\n", n)
	}
	if h.Type == hosts.Streaming {
		fmt.Fprintf(w, "      upload   %s -> %s\n", displayPath(j.Item.Path), remoteIn)
	}
	fmt.Fprintf(w, "      run      %s\n", hostCommand(h, argv))
	if h.Type == hosts.Streaming {
		fmt.Fprintf(w, "      download %s -> %s\n", remoteOut, displayPath(tmp))
	}
}

// printSplit shows a split job's segments, cut points and commands: one
// segment's command per host (the others differ only in -ss and
// -frames:v), then what the manager runs: the rest and the join.
func (m *manager) printSplit(w io.Writer, j *Job) {
	sp := j.Split
	fmt.Fprintf(w, "  split:    %d segments, cut at keyframes (%d frames in all; video per segment, audio and subtitles once)\n", len(sp.Segments), sp.Frames)
	if j.PinWhy != "" {
		fmt.Fprintf(w, "  split:    variant %s\n", j.PinWhy)
	}
	for _, s := range sp.Segments {
		seek := "start"
		if s.Seek > 0 {
			seek = "-ss " + split.Seconds(s.Seek)
		}
		fmt.Fprintf(w, "    #%-3d at %s (%s)  %s long  %6d frames  (%s)\n", s.Index+1, media.FormatDuration(s.Start), split.Seconds(s.Start),
			media.FormatDuration(s.Duration), s.Frames, seek)
	}
	final, _ := outputPath(j.Item.Path, j.Profile.Extension, m.opts.Keep)
	f := &film{job: j, final: final, tok: "XXXXXXXXXXXX"}
	s := sp.Segments[min(1, len(sp.Segments)-1)]
	local := f.segmentLocal(s.Index, "YYYYYYYYYYYY")
	for _, h := range j.Eligible {
		argv, in, out, err := m.segmentArgv(j, h, joinOnly{h}, s, local, "YYYYYYYYYYYY")
		if err != nil {
			fmt.Fprintf(w, "    %s: %v\n", h.Name, err)
			continue
		}
		if v := j.Pinned.Key; v != "" {
			fmt.Fprintf(w, "    %s (%s, variant %s), segment #%d:\n", h.Name, h.Type, v, s.Index+1)
		} else {
			fmt.Fprintf(w, "    %s (%s), segment #%d:\n", h.Name, h.Type, s.Index+1)
		}
		if h.Type == hosts.Streaming {
			fmt.Fprintf(w, "      cut      %s\n", showArgv(append([]string{m.cfg.FFmpeg}, split.ExtractArgs(j.Item.Path, s, j.Info.Video.Index, "SEGMENT.mkv")...)))
			fmt.Fprintf(w, "      upload   SEGMENT.mkv -> %s\n", in)
		}
		fmt.Fprintf(w, "      run      %s\n", hostCommand(h, argv))
		if h.Type == hosts.Streaming {
			fmt.Fprintf(w, "      download %s -> %s\n", out, displayPath(local))
		}
	}
	if plan, err := m.sharedPlan(j.Profile, j.Info); err == nil {
		fmt.Fprintf(w, "    manager, once:\n      rest     %s\n", showArgv(append([]string{m.cfg.FFmpeg}, split.RestArgs(plan.In, plan.Out, j.Item.Path, "REST"+j.Profile.Extension)...)))
	}
	fmt.Fprintf(w, "      join     %s\n", showArgv(append([]string{m.cfg.FFmpeg}, j.Split.JoinArgs("SEGMENTS.txt", "REST"+j.Profile.Extension, j.Item.Path, "OUTPUT"+j.Profile.Extension, strings.EqualFold(j.Profile.Extension, ".mkv"))...)))
}

// printVariants shows, for a file whose profile has encoder variants,
// the variant each eligible host uses and why it passed over earlier ones.
func (m *manager) printVariants(w io.Writer, j *Job) {
	for _, h := range j.Eligible {
		prof, err := profileFor(m.cfg, j, h)
		if err != nil || variantsOf(prof) == nil {
			continue
		}
		c, ok := m.standingVariant(h.Name, prof.Name, j.Item.Mixins)
		if !ok {
			c.Unknown = true
		}
		fmt.Fprintf(w, "  variant:  %s: %s\n", h.Name, c.Describe())
	}
}

// hostCommand renders argv as host h receives it: for os: win10 hosts the
// exact cmd.exe line that is sent (hosts.QuoteCmd, what the SSH transport
// sends), elsewhere POSIX-quoted words.
func hostCommand(h *hosts.Def, argv []string) string {
	if h.Windows() {
		line, err := hosts.QuoteCmd(argv...)
		if err != nil {
			return fmt.Sprintf("(cannot be sent to cmd.exe: %v)", err)
		}
		return line
	}
	return showArgv(argv)
}

// showArgv renders argv for humans, one quoted word per element, with POSIX
// shell quoting (what a user would paste into a terminal).
func showArgv(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = shellWord(a)
	}
	return strings.Join(out, " ")
}

func shellWord(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("-_./:=,+@%", c)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// joinOnly is a Transport stand-in for --dry-run that can only join paths
// the way the host would; dry runs never touch a host's files.
type joinOnly struct{ def *hosts.Def }

func (j joinOnly) Join(elem ...string) string {
	if j.def.Windows() {
		return strings.Join(elem, `\`)
	}
	return filepath.ToSlash(filepath.Join(elem...))
}

type ctxT = context.Context

var errDry = errors.New("dry run: hosts are not touched")

func (joinOnly) Exec(_ ctxT, _ []string, _, _ io.Writer) error { return errDry }
func (joinOnly) Upload(_ ctxT, _, _ string) error              { return errDry }
func (joinOnly) Download(_ ctxT, _, _ string) error            { return errDry }
func (joinOnly) Remove(_ ctxT, _ string) error                 { return errDry }
func (joinOnly) FreeSpace(_ ctxT, _ string) (int64, error)     { return 0, errDry }
func (joinOnly) Close() error                                  { return nil }

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
