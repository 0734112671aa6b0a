package encoder

import (
	"reflect"
	"strings"
	"testing"
)

func TestCodecOption(t *testing.T) {
	for f, want := range map[string]string{
		"-c": AllStreams, "-codec": AllStreams, "-c:v": "v", "-c:V": "v", "-codec:v:0": "v", "-vcodec": "v",
		"-c:v:m:lang:eng": "v", "-c:a": "a", "-acodec": "a", "-c:s": "s", "-scodec": "s", "-dcodec": "d",
		"-c:t": "t", "-c:0": ByIndex, "-codec:12": ByIndex,
	} {
		if got, ok := CodecOption(f); !ok || got != want {
			t.Errorf("CodecOption(%s) = %q %v, want %q", f, got, ok, want)
		}
	}
	for _, f := range []string{"-cv", "-crf", "-cq", "-c:x", "-codecs", "-c:", "-copyts", "libx264"} {
		if got, ok := CodecOption(f); ok {
			t.Errorf("CodecOption(%s) = %q, want not a codec option", f, got)
		}
	}
}

func TestIn(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{strings.Fields("-f matroska -map 0:V -c copy -c:v libx265 -crf 24 -c:a copy -c:s copy"), []string{"libx265"}},
		{strings.Fields("-vcodec hevc_nvenc -acodec aac -scodec srt"), []string{"hevc_nvenc", "aac", "srt"}},
		{strings.Fields("-codec:v h264_qsv -codec:a:1 libopus -c:V:0 libx264 -c:0 libsvtav1"), []string{"h264_qsv", "libopus", "libx264", "libsvtav1"}},
		{strings.Fields("-c libx264 -c:v libx264"), []string{"libx264"}},
		// decoders before the input are not encoders
		{strings.Fields("-hwaccel cuda -c:v h264_cuvid -i in.mkv -c:v hevc_nvenc out.mkv"), []string{"hevc_nvenc"}},
		{strings.Fields("-crf 20 -preset slow -c:v"), nil},
		{strings.Fields("-cv libx264 -vf scale=-2:720"), nil},
	}
	for _, c := range cases {
		if got := In(c.args); !reflect.DeepEqual(got, c.want) {
			t.Errorf("In(%v) = %v, want %v", c.args, got, c.want)
		}
	}
}

func TestVideo(t *testing.T) {
	for in, want := range map[string][]string{
		"-c:v libx265 -preset medium -crf 24 -c:a copy": {"libx265"},
		"-c:a aac -vcodec libx264":                      {"libx264"},
		"-c copy -c:v hevc_nvenc":                       {"hevc_nvenc"},
		"-c libx264 -c:v:0 libx265":                     {"libx264", "libx265"},
		"-c:v copy -c:a aac -c:0 libx264":               nil, // by index: not known to be the video
		"-crf 20 -c:v":                                  nil,
	} {
		if got := Video(strings.Fields(in)); !reflect.DeepEqual(got, want) {
			t.Errorf("Video(%q) = %v, want %v", in, got, want)
		}
	}
}
