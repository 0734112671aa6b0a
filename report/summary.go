package report

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"clustertx/cluster"
)

// WriteSummary writes the end-of-run table, one line per file (file, host,
// profile, source size → output size, saving, encode time, speed in media
// seconds per second, outcome), then the totals: outcomes, bytes saved,
// media hours encoded and each host's share of the work.
func WriteSummary(w io.Writer, rep *cluster.Report) {
	if rep == nil || len(rep.Files) == 0 {
		fmt.Fprintln(w, "nothing to do")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tHOST\tPROFILE\tSIZE\tSAVED\tTIME\tSPEED\tOUTCOME")
	for _, f := range rep.Files {
		size := "-"
		switch {
		case f.SrcSize > 0 && f.OutSize > 0:
			size = fmtBytes(f.SrcSize) + " → " + fmtBytes(f.OutSize)
		case f.SrcSize > 0:
			size = fmtBytes(f.SrcSize)
		}
		saved := "-"
		if s, ok := savingPercent(f.SrcSize, f.OutSize); ok && encoded(f.Outcome) {
			saved = pct(s)
		}
		el := "-"
		if f.Elapsed > 0 {
			el = fmtDur(f.Elapsed)
		}
		speed := "-"
		if s, ok := speedOf(f); ok {
			speed = fmt.Sprintf("%.2fx", s)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", clean(base(f.Path)), dash(f.Host),
			dash(f.Profile), size, saved, el, speed, clean(outcomeText(f)))
	}
	tw.Flush()

	t := computeTotals(rep)
	var parts []string
	for _, o := range []cluster.Outcome{cluster.Done, cluster.Kept, cluster.Skipped, cluster.Changed, cluster.Failed, cluster.NotRun, cluster.Planned} {
		if n := rep.Count(o); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, o))
		}
	}
	fmt.Fprintf(w, "\n%s: %s\n", plural(len(rep.Files), "file"), strings.Join(parts, ", "))
	if t.done > 0 {
		fmt.Fprintf(w, "saved %s of %s (%.0f%%) over %s done\n",
			fmtBytes(t.savedBytes), fmtBytes(t.doneSource), t.savingPercent(), plural(t.done, "file"))
	}
	if t.mediaSeconds > 0 {
		fmt.Fprintf(w, "encoded %.2f media hours in %s of encode time", t.mediaSeconds/3600, fmtDur(t.encodedTime))
		if t.encodedTime > 0 {
			fmt.Fprintf(w, " (%.2fx realtime per slot)", t.mediaSeconds/t.encodedTime.Seconds())
		}
		fmt.Fprintln(w)
	}
	if rep.Interrupted {
		fmt.Fprintln(w, "the run was interrupted")
	}
	writeQuality(w, rep)
	shares := hostShares(rep)
	if len(shares) > 0 && t.mediaSeconds > 0 {
		fmt.Fprintln(w, "\nshare of the work:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, s := range shares {
			share := 0.0
			if t.mediaSeconds > 0 {
				share = 100 * s.mediaSeconds / t.mediaSeconds
			}
			failed := ""
			if s.failed > 0 {
				failed = fmt.Sprintf("\t%d failed", s.failed)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s media\t%.0f%%%s\n", s.host, plural(s.files, "file"), fmtSeconds(s.mediaSeconds), share, failed)
		}
		tw.Flush()
	}
}

// WriteHostEvents writes the hosts that left or (re)joined during the run,
// from rec; nothing if none did.
func WriteHostEvents(w io.Writer, rec *Recorder) {
	if rec == nil {
		return
	}
	start := rec.Started()
	var lines []string
	for _, e := range rec.Events() {
		if e.Check {
			continue
		}
		at := e.Time.Format("15:04:05")
		if !start.IsZero() {
			at += " (+" + fmtDur(e.Time.Sub(start)) + ")"
		}
		if e.Up {
			lines = append(lines, fmt.Sprintf("  host %s joined at %s", e.Host, at))
		} else {
			lines = append(lines, fmt.Sprintf("  host %s left at %s: %s", e.Host, at, dash(e.Reason)))
		}
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintln(w, "\nhost changes during the run:")
	for _, l := range lines {
		fmt.Fprintln(w, clean(l))
	}
}

type totals struct {
	files, done, kept       int
	sourceBytes, doneSource int64
	doneOutput, savedBytes  int64
	mediaSeconds            float64       // encoded to the end (done + kept)
	encodedTime             time.Duration // wall time of those encodes
	encodeTime              time.Duration // wall time of every file's last attempt
}

func (t totals) savingPercent() float64 {
	if t.doneSource <= 0 {
		return 0
	}
	return 100 * float64(t.savedBytes) / float64(t.doneSource)
}

func computeTotals(rep *cluster.Report) totals {
	var t totals
	for _, f := range rep.Files {
		t.files++
		if f.SrcSize > 0 {
			t.sourceBytes += f.SrcSize
		}
		t.encodeTime += f.Elapsed
		switch f.Outcome {
		case cluster.Done:
			t.done++
			t.doneSource += f.SrcSize
			t.doneOutput += f.OutSize
			t.savedBytes += f.SrcSize - f.OutSize
		case cluster.Kept:
			t.kept++
		}
		if encoded(f.Outcome) {
			t.mediaSeconds += f.Duration
			t.encodedTime += f.Elapsed
		}
	}
	return t
}

type hostShare struct {
	host         string
	files        int     // encoded to the end (done + kept)
	mediaSeconds float64 // of those files
	failed       int
}

// hostShares is each host's part of the work, in host-check order, then
// any other host named by a file.
func hostShares(rep *cluster.Report) []hostShare {
	idx := map[string]int{}
	var out []hostShare
	get := func(h string) *hostShare {
		i, ok := idx[h]
		if !ok {
			i = len(out)
			idx[h] = i
			out = append(out, hostShare{host: h})
		}
		return &out[i]
	}
	for _, c := range rep.Hosts {
		get(c.Host)
	}
	var extra []string
	for _, f := range rep.Files {
		if f.Host == "" {
			continue
		}
		if _, ok := idx[f.Host]; !ok {
			extra = append(extra, f.Host)
		}
	}
	sort.Strings(extra)
	for _, h := range extra {
		get(h)
	}
	for _, f := range rep.Files {
		if f.Host == "" {
			continue
		}
		s := get(f.Host)
		switch {
		case encoded(f.Outcome) && f.Split != nil && len(f.Split.HostSeconds) > 0:
			// A split file counts for the host that joined it; its media
			// for the hosts that encoded its segments.
			s.files++
			for h, secs := range f.Split.HostSeconds {
				get(h).mediaSeconds += secs
			}
		case encoded(f.Outcome):
			s.files++
			s.mediaSeconds += f.Duration
		case f.Outcome == cluster.Failed:
			s.failed++
		}
	}
	return out
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// writeQuality lists the files whose quality search ran: the level chosen,
// what it predicted, and what the search cost.
func writeQuality(w io.Writer, rep *cluster.Report) {
	first := true
	for _, f := range rep.Files {
		q := f.Quality
		if q == nil {
			continue
		}
		if first {
			fmt.Fprintln(w, "\nquality searches:")
			first = false
		}
		target := strings.ToUpper(q.Metric) + " " + strconv.FormatFloat(q.Target, 'f', -1, 64)
		if !q.Met {
			fmt.Fprintf(w, "  %s: %s not met within the size cap: original kept; %d sample encodes in %s\n",
				clean(base(f.Path)), target, q.SampleEncodes, fmtDur(q.Search))
			continue
		}
		measured := ""
		if q.Measured != nil {
			measured = fmt.Sprintf(" (measured %.4g)", *q.Measured)
		}
		fmt.Fprintf(w, "  %s: %s %s for %s: predicted %.4g%s, %s (%.0f%%); %d sample encodes in %s (%.0f%% of its time)\n",
			clean(base(f.Path)), q.Option, strconv.FormatFloat(q.Level, 'f', -1, 64), target, q.PredictedScore, measured,
			fmtBytes(q.PredictedBytes), q.PredictedPct, q.SampleEncodes, fmtDur(q.Search), 100*SearchShare(f))
	}
}

// SearchShare is the share of a file's time spent searching its quality
// level: the search's wall time over the search's and the encode's.
func SearchShare(f *cluster.FileResult) float64 {
	if f.Quality == nil || f.Quality.Search+f.Elapsed <= 0 {
		return 0
	}
	return f.Quality.Search.Seconds() / (f.Quality.Search + f.Elapsed).Seconds()
}
