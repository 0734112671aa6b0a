package encoder

import "strings"

// Which encoders an ffmpeg command line names. This is the one scanner of
// codec options: package hosts asks which encoders a host's ffmpeg must
// have (In), package profiles which option sets a section's video encoder
// (CodecOption), and the quality search which encoder a profile's video
// goes through (Video).

// Stream kinds a codec option applies to (CodecOption).
const (
	AllStreams = ""  // -c, -codec: every stream
	ByIndex    = "#" // -c:0: the stream with that index, of whatever kind
)

// CodecOption reports whether option word f chooses a codec (-c, -codec,
// -vcodec, -acodec, -scodec, -dcodec, with or without a stream specifier)
// and for which streams: "v" video (-c:v, -c:V, -codec:v:0, -vcodec), "a"
// audio, "s" subtitles, "d" data, "t" attachments, AllStreams or ByIndex.
func CodecOption(f string) (streams string, ok bool) {
	switch f {
	case "-vcodec":
		return "v", true
	case "-acodec":
		return "a", true
	case "-scodec":
		return "s", true
	case "-dcodec":
		return "d", true
	}
	base, spec, hasSpec := strings.Cut(f, ":")
	if base != "-c" && base != "-codec" {
		return "", false
	}
	if !hasSpec {
		return AllStreams, true
	}
	kind, rest, _ := strings.Cut(spec, ":")
	switch kind {
	case "v", "V":
		return "v", true
	case "a", "s", "d", "t":
		return kind, true
	}
	if kind != "" && rest == "" && strings.Trim(kind, "0123456789") == "" {
		return ByIndex, true
	}
	return "", false
}

// In returns the encoders an ffmpeg argv (a profile's output options, or
// a whole command) asks for: the values of every codec option
// (CodecOption) after the last -i (options before an input choose
// decoders), without "copy" and duplicates, in order.
func In(args []string) []string {
	lastInput := -1
	for i, a := range args {
		if a == "-i" {
			lastInput = i
		}
	}
	var out []string
	seen := map[string]bool{}
	for i := lastInput + 1; i < len(args)-1; i++ {
		if _, ok := CodecOption(args[i]); !ok {
			continue
		}
		i++
		v := args[i]
		if v == "copy" || v == "" || strings.HasPrefix(v, "-") || seen[v] {
			continue
		}
		seen[v] = true
		out = append(out, v)
	}
	return out
}

// Video returns the video encoders output options name, in order: the
// values of the options that choose the video encoder (-c:v, -vcodec…)
// and of those that choose every stream's (-c, -codec), "copy" left out.
// ffmpeg encodes the video with the last.
func Video(words []string) []string {
	var out []string
	for i := 0; i+1 < len(words); i++ {
		s, ok := CodecOption(words[i])
		if !ok || s != "v" && s != AllStreams {
			continue
		}
		i++
		if v := words[i]; v != "copy" && v != "" && !strings.HasPrefix(v, "-") {
			out = append(out, v)
		}
	}
	return out
}
