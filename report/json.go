package report

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"

	"clustertx/cluster"
)

// Schema is the version string of the JSON report; see SCHEMA.md for the
// fields and the version policy.
const Schema = "clustertx.report/v1"

// Document is the JSON report (schema clustertx.report/v1). Every field is
// always present; unknown values are null.
type Document struct {
	Schema      string     `json:"schema"`
	Started     *time.Time `json:"started"`
	Finished    *time.Time `json:"finished"`
	Interrupted bool       `json:"interrupted"`
	Files       []File     `json:"files"`
	Hosts       []Host     `json:"hosts"`
	Totals      Totals     `json:"totals"`
}

// File is one file's entry.
type File struct {
	Path          string   `json:"path"`
	Output        string   `json:"output"`
	Host          string   `json:"host"`
	Profile       string   `json:"profile"`
	Variant       string   `json:"variant"`
	Rule          string   `json:"rule"`
	Outcome       string   `json:"outcome"`
	Reason        string   `json:"reason"`
	SourceBytes   int64    `json:"source_bytes"`
	OutputBytes   int64    `json:"output_bytes"`
	SavingPercent *float64 `json:"saving_percent"`
	MediaSeconds  float64  `json:"media_seconds"`
	EncodeSeconds float64  `json:"encode_seconds"`
	Speed         *float64 `json:"speed"`
	Attempts      int      `json:"attempts"`
	Split         *Split   `json:"split"`
	Quality       *Quality `json:"quality"`
}

// Quality is the quality search of a file with a quality: key (see
// cluster.QualityStats).
type Quality struct {
	Metric         string       `json:"metric"`
	Target         float64      `json:"target"`
	Encoder        string       `json:"encoder"`
	Option         string       `json:"option"`
	Value          *float64     `json:"value"`
	PredictedScore *float64     `json:"predicted_score"`
	PredictedBytes *int64       `json:"predicted_bytes"`
	Samples        int          `json:"samples"`
	SampleEncodes  int          `json:"sample_encodes"`
	SamplesAt      [][2]float64 `json:"samples_at"`
	Hosts          []string     `json:"hosts"`
	MeasuredScore  *float64     `json:"measured_score"`
	SearchSeconds  float64      `json:"search_seconds"`
	SearchShare    float64      `json:"search_share"`
}

// Split is a split file's entry: how it was split and where the split-mode
// time went (see cluster.SplitStats).
type Split struct {
	Segments     int                `json:"segments"`
	Hosts        int                `json:"hosts"`
	HostSeconds  map[string]float64 `json:"host_media_seconds"`
	IndexSeconds float64            `json:"index_seconds"`
	CutSeconds   float64            `json:"cut_seconds"`
	RestSeconds  float64            `json:"rest_seconds"`
	WaitSeconds  float64            `json:"rest_wait_seconds"`
	JoinSeconds  float64            `json:"join_seconds"`
	CheckSeconds float64            `json:"check_seconds"`
}

// Host is one host's entry.
type Host struct {
	Name            string  `json:"name"`
	Type            string  `json:"type"`
	Up              bool    `json:"up"`
	LatencyMS       float64 `json:"latency_ms"`
	FFmpeg          string  `json:"ffmpeg"`
	Reason          string  `json:"reason"`
	FreeBytes       *int64  `json:"free_bytes"`
	Files           int     `json:"files"`
	MediaSeconds    float64 `json:"media_seconds"`
	Failed          int     `json:"failed"`
	UploadedBytes   int64   `json:"uploaded_bytes"`
	DownloadedBytes int64   `json:"downloaded_bytes"`
	Events          []Event `json:"events"`
}

// Event is a host's state at the start of the run (kind "check") or a
// change during it (kind "change").
type Event struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Up     bool      `json:"up"`
	Reason string    `json:"reason"`
}

// Totals sums the run.
type Totals struct {
	Files         int      `json:"files"`
	Done          int      `json:"done"`
	Kept          int      `json:"kept"`
	Skipped       int      `json:"skipped"`
	Failed        int      `json:"failed"`
	NotRun        int      `json:"not_run"`
	Changed       int      `json:"changed"`
	Planned       int      `json:"planned"`
	SourceBytes   int64    `json:"source_bytes"`
	DoneSource    int64    `json:"done_source_bytes"`
	OutputBytes   int64    `json:"output_bytes"`
	SavedBytes    int64    `json:"saved_bytes"`
	SavingPercent *float64 `json:"saving_percent"`
	MediaSeconds  float64  `json:"media_seconds"`
	EncodeSeconds float64  `json:"encode_seconds"`
	WallSeconds   *float64 `json:"wall_seconds"`
}

// NewDocument builds the JSON report of rep; rec (may be nil) adds the
// start and finish times, host events and transfer totals.
func NewDocument(rep *cluster.Report, rec *Recorder) *Document {
	if rep == nil {
		rep = &cluster.Report{}
	}
	d := &Document{Schema: Schema, Interrupted: rep.Interrupted, Files: []File{}, Hosts: []Host{}}
	if rec != nil {
		if t := rec.Started(); !t.IsZero() {
			d.Started = &t
		}
		if t := rec.Finished(); !t.IsZero() {
			d.Finished = &t
		}
	}
	for _, f := range rep.Files {
		e := File{
			Path: f.Path, Output: f.Output, Host: f.Host, Profile: f.Profile, Variant: f.Variant, Rule: f.Rule,
			Outcome: string(f.Outcome), Reason: f.Reason,
			SourceBytes: f.SrcSize, OutputBytes: f.OutSize,
			MediaSeconds: round(f.Duration, 3), EncodeSeconds: round(f.Elapsed.Seconds(), 3),
			Attempts: f.Attempts,
		}
		if s, ok := savingPercent(f.SrcSize, f.OutSize); ok && encoded(f.Outcome) {
			e.SavingPercent = ptr(round(s, 1))
		}
		if s, ok := speedOf(f); ok {
			e.Speed = ptr(round(s, 3))
		}
		if sp := f.Split; sp != nil {
			e.Split = &Split{Segments: sp.Segments, Hosts: sp.Hosts, HostSeconds: map[string]float64{},
				IndexSeconds: round(sp.Index.Seconds(), 3), CutSeconds: round(sp.Extract.Seconds(), 3),
				RestSeconds: round(sp.Rest.Seconds(), 3), WaitSeconds: round(sp.RestWait.Seconds(), 3),
				JoinSeconds: round(sp.Join.Seconds(), 3), CheckSeconds: round(sp.Verify.Seconds(), 3)}
			for h, v := range sp.HostSeconds {
				e.Split.HostSeconds[h] = round(v, 3)
			}
		}
		if q := f.Quality; q != nil {
			e.Quality = &Quality{Metric: q.Metric, Target: q.Target, Encoder: q.Encoder, Option: q.Option,
				Samples: q.Samples, SampleEncodes: q.SampleEncodes, Hosts: append([]string{}, q.Hosts...),
				SearchSeconds: round(q.Search.Seconds(), 3), SearchShare: round(SearchShare(f), 3)}
			if q.Measured != nil {
				e.Quality.MeasuredScore = ptr(*q.Measured)
			}
			if q.Met {
				e.Quality.Value, e.Quality.PredictedScore, e.Quality.PredictedBytes = ptr(q.Level), ptr(q.PredictedScore), &q.PredictedBytes
			}
			for _, s := range q.SamplesAt {
				e.Quality.SamplesAt = append(e.Quality.SamplesAt, [2]float64{round(s.Start, 3), round(s.Duration, 3)})
			}
		}
		d.Files = append(d.Files, e)
	}

	checks := map[string]int{}
	for i, c := range rep.Hosts {
		checks[c.Host] = i
	}
	var events []HostEvent
	if rec != nil {
		events = rec.Events()
	}
	for _, s := range hostNames(rep, events) {
		h := Host{Name: s.host, Files: s.files, MediaSeconds: round(s.mediaSeconds, 3), Failed: s.failed, Events: []Event{}}
		if i, ok := checks[s.host]; ok {
			c := rep.Hosts[i]
			h.Type, h.Up, h.FFmpeg, h.Reason = string(c.Type), c.Up, c.FFmpeg, c.Reason
			h.LatencyMS = round(float64(c.Latency)/float64(time.Millisecond), 1)
			if c.Free >= 0 {
				h.FreeBytes = ptr(c.Free)
			}
		}
		if rec != nil {
			x := rec.transfers(s.host)
			h.UploadedBytes, h.DownloadedBytes = x.upBytes, x.downBytes
		}
		for _, e := range events {
			if e.Host != s.host {
				continue
			}
			kind := "change"
			if e.Check {
				kind = "check"
			}
			h.Events = append(h.Events, Event{Time: e.Time, Kind: kind, Up: e.Up, Reason: e.Reason})
		}
		d.Hosts = append(d.Hosts, h)
	}

	t := computeTotals(rep)
	d.Totals = Totals{
		Files: len(rep.Files), Done: t.done, Kept: t.kept,
		Skipped: rep.Count(cluster.Skipped), Failed: rep.Count(cluster.Failed),
		NotRun: rep.Count(cluster.NotRun), Changed: rep.Count(cluster.Changed), Planned: rep.Count(cluster.Planned),
		SourceBytes: t.sourceBytes, DoneSource: t.doneSource, OutputBytes: t.doneOutput,
		SavedBytes: t.savedBytes, MediaSeconds: round(t.mediaSeconds, 3),
		EncodeSeconds: round(t.encodeTime.Seconds(), 3),
	}
	if t.doneSource > 0 {
		d.Totals.SavingPercent = ptr(round(t.savingPercent(), 1))
	}
	if d.Started != nil && d.Finished != nil {
		d.Totals.WallSeconds = ptr(round(d.Finished.Sub(*d.Started).Seconds(), 3))
	}
	return d
}

// hostNames is every host of the run: checked hosts in check order, then
// hosts named only by files or events, sorted.
func hostNames(rep *cluster.Report, events []HostEvent) []hostShare {
	shares := hostShares(rep)
	seen := map[string]bool{}
	for _, s := range shares {
		seen[s.host] = true
	}
	var extra []string
	for _, e := range events {
		if !seen[e.Host] {
			seen[e.Host] = true
			extra = append(extra, e.Host)
		}
	}
	sort.Strings(extra)
	for _, h := range extra {
		shares = append(shares, hostShare{host: h})
	}
	return shares
}

// WriteJSON writes the JSON report of rep (schema clustertx.report/v1,
// see SCHEMA.md), indented, to w. rec may be nil.
func WriteJSON(w io.Writer, rep *cluster.Report, rec *Recorder) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(NewDocument(rep, rec)); err != nil {
		return fmt.Errorf("writing JSON report: %w", err)
	}
	return nil
}

// WriteJSONFile writes the JSON report to path atomically: a temporary
// file in the same directory, synced, then renamed over path. Readers see
// the old file or the whole new one, never a part.
func WriteJSONFile(path string, rep *cluster.Report, rec *Recorder) (err error) {
	dir, name := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+name+cluster.TempMarker+"*")
	if err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = WriteJSON(tmp, rep, rec); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("report %s: syncing: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func round(x float64, places int) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}
