// Package media owns what clustertx knows about a media file: probing it
// with ffprobe's JSON output (never by scraping `ffmpeg -i`), concurrently
// with a bounded pool, and verifying an encoded output against its source.
// It runs ffprobe on the manager only; remote hosts are never probed here.
package media

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Stream is one stream of a file as ffprobe reports it.
type Stream struct {
	Index    int     // absolute stream index in the input (what -map 0:N uses)
	Type     string  // video, audio, subtitle, attachment, data
	Codec    string  // codec_name: h264, hevc, aac, subrip, mov_text…
	Language string  // tags.language, "und" when absent
	Default  bool    // disposition.default
	Title    string  // tags.title
	Width    int     // video only
	Height   int     // video only
	FPS      float64 // video only, from avg_frame_rate (r_frame_rate as fallback)
	Cover    bool    // video stream that is attached artwork (disposition.attached_pic)
	Channels int     // audio only
}

// Info is the probe result for one file.
type Info struct {
	Path      string
	Container string  // format_name, e.g. "matroska,webm"
	Duration  float64 // seconds
	StartTime float64 // seconds: the earliest timestamp of any stream
	Size      int64   // bytes
	BitRate   int64

	Video     *Stream // the main video stream (first that is not cover art); nil if none
	Audio     []Stream
	Subtitles []Stream
	Streams   []Stream // every stream, in index order
}

// VCodec is the main video codec name, "" without video.
func (i *Info) VCodec() string {
	if i.Video == nil {
		return ""
	}
	return i.Video.Codec
}

// Width of the main video stream.
func (i *Info) Width() int {
	if i.Video == nil {
		return 0
	}
	return i.Video.Width
}

// Height of the main video stream.
func (i *Info) Height() int {
	if i.Video == nil {
		return 0
	}
	return i.Video.Height
}

// FPS of the main video stream.
func (i *Info) FPS() float64 {
	if i.Video == nil {
		return 0
	}
	return i.Video.FPS
}

// MultiStream reports whether the file has more than one audio or more than
// one subtitle stream (pytranscoder's is_multistream, which gates automap).
func (i *Info) MultiStream() bool { return len(i.Audio) > 1 || len(i.Subtitles) > 1 }

// Summary is a one-line description for --dry-run and logs.
func (i *Info) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s, %s, %s", firstFormat(i.Container), FormatDuration(i.Duration), FormatBytes(i.Size))
	if v := i.Video; v != nil {
		fmt.Fprintf(&b, ", video %s %dx%d %.3g fps", v.Codec, v.Width, v.Height, v.FPS)
	}
	for _, a := range i.Audio {
		fmt.Fprintf(&b, ", audio %s(%s%s)", a.Codec, a.Language, defMark(a.Default))
	}
	for _, s := range i.Subtitles {
		fmt.Fprintf(&b, ", sub %s(%s%s)", s.Codec, s.Language, defMark(s.Default))
	}
	return b.String()
}

func defMark(d bool) string {
	if d {
		return ",default"
	}
	return ""
}

func firstFormat(f string) string {
	if i := strings.IndexByte(f, ','); i >= 0 {
		return f[:i]
	}
	return f
}

// FormatDuration renders seconds as h:mm:ss.
func FormatDuration(sec float64) string {
	s := int(sec + 0.5)
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}

// FormatBytes renders a size with binary units.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// ProbeError says why a file could not be probed. The run reports it and
// goes on with the other files.
type ProbeError struct {
	Path   string
	Reason string
}

func (e *ProbeError) Error() string { return fmt.Sprintf("%s: cannot probe: %s", e.Path, e.Reason) }

// Prober runs ffprobe on the manager.
type Prober struct {
	FFprobe string // path or name of ffprobe
}

// FindFFprobe returns ffprobe beside the given ffmpeg path, or from PATH.
func FindFFprobe(ffmpeg string) string {
	if ffmpeg != "" && strings.ContainsRune(ffmpeg, filepath.Separator) {
		cand := filepath.Join(filepath.Dir(ffmpeg), "ffprobe")
		if st, err := os.Stat(cand); err == nil && !st.IsDir() {
			return cand
		}
	}
	if p, err := exec.LookPath("ffprobe"); err == nil {
		return p
	}
	return "ffprobe"
}

type probeJSON struct {
	Streams []struct {
		Index        int               `json:"index"`
		CodecName    string            `json:"codec_name"`
		CodecType    string            `json:"codec_type"`
		Width        int               `json:"width"`
		Height       int               `json:"height"`
		AvgFrameRate string            `json:"avg_frame_rate"`
		RFrameRate   string            `json:"r_frame_rate"`
		Channels     int               `json:"channels"`
		Duration     string            `json:"duration"`
		Disposition  map[string]int    `json:"disposition"`
		Tags         map[string]string `json:"tags"`
	} `json:"streams"`
	Packets []struct {
		PtsTime      string `json:"pts_time"`
		DurationTime string `json:"duration_time"`
	} `json:"packets"`
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
		StartTime  string `json:"start_time"`
		Size       string `json:"size"`
		BitRate    string `json:"bit_rate"`
	} `json:"format"`
}

// Probe runs ffprobe on path. Errors are *ProbeError with a readable reason.
func (p *Prober) Probe(ctx context.Context, path string) (*Info, error) {
	info, _, err := p.probe(ctx, path, 0)
	return info, err
}

// probe runs one ffprobe on path. With tailFrom > 0 it also lists the
// packets from that time on, and returns when the last of them ends.
func (p *Prober) probe(ctx context.Context, path string, tailFrom float64) (*Info, float64, error) {
	st, err := os.Stat(path)
	switch {
	case err != nil:
		return nil, 0, &ProbeError{path, statReason(err)}
	case st.IsDir():
		return nil, 0, &ProbeError{path, "is a directory"}
	case !st.Mode().IsRegular():
		return nil, 0, &ProbeError{path, "not a regular file"}
	case st.Size() == 0:
		return nil, 0, &ProbeError{path, "empty file (0 bytes)"}
	}
	// "file:" stops ffprobe from reading a leading '-' as an option or a
	// "name:rest" as a protocol.
	args := []string{"-v", "error", "-print_format", "json", "-show_format", "-show_streams"}
	if tailFrom > 0 {
		args = append(args, "-show_entries", "packet=pts_time,duration_time",
			"-read_intervals", fmt.Sprintf("%.3f%%", tailFrom))
	}
	out, err := p.run(ctx, append(args, "file:"+path)...)
	if err != nil {
		if pe, ok := err.(*ProbeError); ok {
			pe.Path = path
		}
		return nil, 0, err
	}
	info, end, err := parseProbe([]byte(out))
	if err != nil {
		return nil, 0, &ProbeError{path, err.Error()}
	}
	info.Path = path
	info.Size = st.Size()
	return info, end, nil
}

// run runs ffprobe and returns its stdout. Failures are *ProbeError.
func (p *Prober) run(ctx context.Context, args ...string) (string, error) {
	bin := p.FFprobe
	if bin == "" {
		bin = "ffprobe"
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return "", &ProbeError{Reason: fmt.Sprintf("running %s: %v", bin, err)}
		}
		return "", &ProbeError{Reason: "ffprobe: " + LastLine(stderr.String())}
	}
	return out.String(), nil
}

func statReason(err error) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "no such file"
	case errors.Is(err, os.ErrPermission):
		return "permission denied"
	}
	return err.Error()
}

// LastLine returns the last non-empty line of s, trimmed.
func LastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return "no error output"
}

// parseProbe reads ffprobe's JSON; it also returns when the last listed
// packet ends (0 without packets).
func parseProbe(data []byte) (*Info, float64, error) {
	var pj probeJSON
	if err := json.Unmarshal(data, &pj); err != nil {
		return nil, 0, fmt.Errorf("unreadable ffprobe output: %v", err)
	}
	if pj.Format.FormatName == "" && len(pj.Streams) == 0 {
		return nil, 0, errors.New("ffprobe found no format and no streams")
	}
	var end float64
	for _, pk := range pj.Packets {
		t, err := strconv.ParseFloat(pk.PtsTime, 64)
		if err != nil {
			continue
		}
		d, _ := strconv.ParseFloat(pk.DurationTime, 64)
		end = max(end, t+d)
	}
	info := &Info{Container: pj.Format.FormatName}
	info.StartTime, _ = strconv.ParseFloat(pj.Format.StartTime, 64)
	info.Duration, _ = strconv.ParseFloat(pj.Format.Duration, 64)
	info.BitRate, _ = strconv.ParseInt(pj.Format.BitRate, 10, 64)
	var streamDur float64
	for _, s := range pj.Streams {
		lang := s.Tags["language"]
		if lang == "" {
			lang = "und"
		}
		st := Stream{
			Index: s.Index, Type: s.CodecType, Codec: s.CodecName, Language: lang,
			Default: s.Disposition["default"] == 1, Title: s.Tags["title"],
			Width: s.Width, Height: s.Height, Channels: s.Channels,
			Cover: s.Disposition["attached_pic"] == 1,
		}
		if st.Type == "video" {
			st.FPS = Rational(s.AvgFrameRate)
			if st.FPS == 0 {
				st.FPS = Rational(s.RFrameRate)
			}
		}
		if d, err := strconv.ParseFloat(s.Duration, 64); err == nil && d > streamDur {
			streamDur = d
		}
		info.Streams = append(info.Streams, st)
	}
	for i := range info.Streams {
		st := info.Streams[i]
		switch st.Type {
		case "video":
			if info.Video == nil && !st.Cover {
				info.Video = &info.Streams[i]
			}
		case "audio":
			info.Audio = append(info.Audio, st)
		case "subtitle":
			info.Subtitles = append(info.Subtitles, st)
		}
	}
	if info.Duration == 0 {
		info.Duration = streamDur
	}
	return info, end, nil
}

// Rational parses "30000/1001" or "25" into a float; 0 when invalid.
func Rational(s string) float64 {
	num, den, found := strings.Cut(s, "/")
	n, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0
	}
	if !found {
		return n
	}
	d, err := strconv.ParseFloat(den, 64)
	if err != nil || d == 0 {
		return 0
	}
	return n / d
}

// Result is one file's probe outcome.
type Result struct {
	Path string
	Info *Info
	Err  error
}

// ProbeEach probes paths, workers at a time, in the order given, and calls
// fn with each result as it comes (from several goroutines at once; i is
// the path's index). It returns when every path has had its call.
func (p *Prober) ProbeEach(ctx context.Context, paths []string, workers int, fn func(i int, r Result)) {
	if workers < 1 {
		workers = 1
	}
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for i, path := range paths {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			info, err := p.Probe(ctx, path)
			fn(i, Result{Path: path, Info: info, Err: err})
		}()
	}
	wg.Wait()
}
