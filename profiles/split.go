package profiles

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"clustertx/internal/yamlx"

	"go.yaml.in/yaml/v3"
)

// Split says when and how a long file is cut into segments encoded on
// several hosts at once (split mode). It is a clustertx key (pytranscoder
// has none), set on a profile or a rule:
//
//	split:                  # or: split: yes (the defaults below), split: no
//	  min_duration: 30m     # files shorter than this are encoded whole
//	  segment: 5m           # target segment length (cut at keyframes)
//
// Durations are Go durations ("1h30m", "90s"), h:mm:ss, or bare seconds.
type Split struct {
	Enabled     bool
	MinDuration float64 // seconds
	Segment     float64 // seconds
}

// Defaults for split: yes and --split.
const (
	DefaultSplitMin     = 30 * 60
	DefaultSplitSegment = 5 * 60
)

// DefaultSplit is split mode with the default lengths.
func DefaultSplit() *Split {
	return &Split{Enabled: true, MinDuration: DefaultSplitMin, Segment: DefaultSplitSegment}
}

// Applies reports whether a file of this duration is split.
func (s *Split) Applies(duration float64) bool {
	return s != nil && s.Enabled && duration >= s.MinDuration && duration >= 2*s.Segment
}

var splitKeys = []string{"min_duration", "segment"}

// decodeSplit decodes a split key: a boolean, or a mapping of min_duration
// and segment.
func decodeSplit(d *yamlx.Decoder, n *yaml.Node, path string) (*Split, error) {
	if n.Kind == yaml.ScalarNode {
		on, err := d.Bool(n, path)
		if err != nil {
			return nil, d.Errorf(n, path, "expected yes/no or a mapping with min_duration and segment, found %q", n.Value)
		}
		s := DefaultSplit()
		s.Enabled = on
		return s, nil
	}
	pairs, err := d.Mapping(n, path)
	if err != nil {
		return nil, err
	}
	s := DefaultSplit()
	for _, kv := range pairs {
		var v float64
		switch kv.Key {
		case "min_duration", "segment":
			str, err := d.String(kv.Value, kv.Path)
			if err != nil {
				return nil, err
			}
			if v, err = ParseSeconds(str); err != nil {
				return nil, d.Errorf(kv.Value, kv.Path, "%v", err)
			}
		default:
			if err := d.Unknown(kv, suggest(kv.Key, splitKeys)); err != nil {
				return nil, err
			}
			continue
		}
		if kv.Key == "segment" {
			if v < 1 {
				return nil, d.Errorf(kv.Value, kv.Path, "segment must be at least 1s, found %q", kv.Value.Value)
			}
			s.Segment = v
		} else {
			s.MinDuration = v
		}
	}
	return s, nil
}

// ParseSeconds parses a duration: a Go duration ("5m", "1h30m", "90s"),
// h:mm:ss or m:ss, or a bare number of seconds.
func ParseSeconds(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if v, err := strconv.ParseFloat(s, 64); err == nil && v >= 0 {
		return v, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return d.Seconds(), nil
	}
	if parts := strings.Split(s, ":"); len(parts) >= 2 && len(parts) <= 3 {
		var total float64
		ok := true
		for _, p := range parts {
			v, err := strconv.ParseFloat(p, 64)
			if err != nil || v < 0 {
				ok = false
				break
			}
			total = total*60 + v
		}
		if ok {
			return total, nil
		}
	}
	return 0, fmt.Errorf("expected a duration such as 30m, 1h30m, 01:30:00 or a number of seconds, found %q", s)
}
