package media

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
)

// VideoIndex lists the packets of one video stream in presentation order:
// one entry per frame, with its timestamp and whether it is a keyframe.
// Split mode cuts at keyframes and counts the frames of every segment from
// it, so that each segment's output can be checked frame for frame.
type VideoIndex struct {
	PTS []float64 // seconds, ascending
	Key []bool
}

// Frames is the number of frames.
func (x *VideoIndex) Frames() int { return len(x.PTS) }

// Count returns how many frames have a timestamp in [from, to).
func (x *VideoIndex) Count(from, to float64) int {
	a := sort.SearchFloat64s(x.PTS, from)
	b := sort.SearchFloat64s(x.PTS, to)
	return b - a
}

// VideoIndex reads the packet list of the stream with absolute index
// stream (demuxing only, no decoding: about as fast as reading the file).
// Packets without a timestamp are left out.
func (p *Prober) VideoIndex(ctx context.Context, path string, stream int) (*VideoIndex, error) {
	bin := p.FFprobe
	if bin == "" {
		bin = "ffprobe"
	}
	cmd := exec.CommandContext(ctx, bin, "-v", "error", "-select_streams", strconv.Itoa(stream),
		"-show_entries", "packet=pts_time,flags", "-of", "csv=p=0", "file:"+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, &ProbeError{path, fmt.Sprintf("running %s: %v", bin, err)}
	}
	type pkt struct {
		t   float64
		key bool
	}
	var pkts []pkt
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		ts, flags, _ := strings.Cut(line, ",")
		t, err := strconv.ParseFloat(ts, 64)
		if err != nil {
			continue // N/A
		}
		pkts = append(pkts, pkt{t, strings.HasPrefix(flags, "K")})
	}
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &ProbeError{path, "ffprobe: " + LastLine(stderr.String())}
	}
	if len(pkts) == 0 {
		return nil, &ProbeError{path, fmt.Sprintf("stream %d has no timed packets", stream)}
	}
	sort.SliceStable(pkts, func(i, j int) bool { return pkts[i].t < pkts[j].t })
	x := &VideoIndex{PTS: make([]float64, len(pkts)), Key: make([]bool, len(pkts))}
	for i, k := range pkts {
		x.PTS[i], x.Key[i] = k.t, k.key
	}
	return x, nil
}

// StreamReport is what the last seconds of a file show, per stream.
type StreamReport struct {
	Info        *Info
	VideoFrames int             // packets of the main video stream, whole file
	Ends        map[int]float64 // stream index → end of its last packet
}

// Streams reads a file's streams, finds where each stream's packets end
// (reading the packets from tailFrom on) and, with count, counts the frames
// of its main video stream (which reads the whole file). Split mode uses it
// to check a joined output.
func (p *Prober) Streams(ctx context.Context, path string, tailFrom float64, count bool) (*StreamReport, error) {
	info, err := p.Probe(ctx, path)
	if err != nil {
		return nil, err
	}
	rep := &StreamReport{Info: info, Ends: map[int]float64{}}
	if info.Video != nil && count {
		if rep.VideoFrames, err = p.CountFrames(ctx, path, info.Video.Index); err != nil {
			return nil, err
		}
	}
	out, err := p.run(ctx, "-v", "error", "-print_format", "json", "-show_entries", "packet=stream_index,pts_time,duration_time",
		"-read_intervals", fmt.Sprintf("%.3f%%", max(0.001, tailFrom)), "file:"+path)
	if err != nil {
		return nil, err
	}
	var pj struct {
		Packets []struct {
			Stream   int    `json:"stream_index"`
			PTS      string `json:"pts_time"`
			Duration string `json:"duration_time"`
		} `json:"packets"`
	}
	if err := json.Unmarshal([]byte(out), &pj); err != nil {
		return nil, &ProbeError{path, "unreadable ffprobe output: " + err.Error()}
	}
	for _, pk := range pj.Packets {
		t, err := strconv.ParseFloat(pk.PTS, 64)
		if err != nil {
			continue
		}
		d, _ := strconv.ParseFloat(pk.Duration, 64)
		rep.Ends[pk.Stream] = max(rep.Ends[pk.Stream], t+d)
	}
	return rep, nil
}

// CountFrames counts the packets (frames) of the stream with absolute index
// stream, demuxing the whole file without decoding it.
func (p *Prober) CountFrames(ctx context.Context, path string, stream int) (int, error) {
	out, err := p.run(ctx, "-v", "error", "-count_packets", "-select_streams", strconv.Itoa(stream),
		"-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", "file:"+path)
	if err != nil {
		if pe, ok := err.(*ProbeError); ok {
			pe.Path = path
		}
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(out), ",")))
	if err != nil {
		return 0, &ProbeError{path, fmt.Sprintf("unreadable packet count %q", out)}
	}
	return n, nil
}
