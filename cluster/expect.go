package cluster

import (
	"strconv"
	"strings"

	"clustertx/media"
)

// expectedAudio is how many audio streams an output of args (a job's
// ffmpeg arguments) must have for a source with src's streams: all of them
// for `-map 0` or `-map 0:a`, the ones named by index or by audio position,
// none with -an, and one when nothing is mapped (ffmpeg's default picks one
// audio stream). Negative maps remove streams. A map it cannot read
// (metadata or program selectors) makes it settle for one audio stream, so
// it never demands more than the command asks for.
func expectedAudio(args []string, src *media.Info) int {
	if len(src.Audio) == 0 {
		return 0
	}
	var maps []string
	for i, a := range args {
		if a == "-an" {
			return 0
		}
		if a == "-map" && i+1 < len(args) {
			maps = append(maps, args[i+1])
		}
	}
	if len(maps) == 0 {
		return 1
	}
	// Audio streams by absolute index, and the absolute index of the Nth.
	isAudio := map[int]bool{}
	var byPos []int
	for _, s := range src.Audio {
		isAudio[s.Index] = true
		byPos = append(byPos, s.Index)
	}
	set := map[int]bool{}
	for _, m := range maps {
		neg := strings.HasPrefix(m, "-")
		m = strings.TrimSuffix(strings.TrimPrefix(m, "-"), "?")
		parts := strings.Split(m, ":")
		if parts[0] != "0" {
			continue // another input (e.g. an external audio file): not ours to count
		}
		var sel []int
		switch {
		case len(parts) == 1: // 0: every stream
			sel = byPos
		case parts[1] == "a" && len(parts) == 2:
			sel = byPos
		case parts[1] == "a" && len(parts) == 3:
			n, err := strconv.Atoi(parts[2])
			if err != nil {
				return 1
			}
			if n >= 0 && n < len(byPos) {
				sel = []int{byPos[n]}
			}
		case len(parts) == 2 && isDigits(parts[1]):
			n, _ := strconv.Atoi(parts[1])
			if isAudio[n] {
				sel = []int{n}
			}
		case len(parts) == 2 && strings.ContainsAny(parts[1], "vVst") && len(parts[1]) == 1:
			// video, subtitles, attachments: no audio
		default:
			return 1 // a selector we do not model
		}
		for _, idx := range sel {
			if neg {
				delete(set, idx)
			} else {
				set[idx] = true
			}
		}
	}
	return len(set)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
