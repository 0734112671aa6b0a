package profiles

import (
	"errors"
	"slices"
	"strings"
)

// Options is one option section of a profile (input_options,
// output_options, output_options_audio/_video/_subtitle, or a template's cli
// entry) as argv words. The zero value is an absent section.
type Options struct {
	words []string
	set   bool // the key was present in the config (even if empty)
	// str records that the section was written as one string, so that an
	// include merge can warn that pytranscoder 2.2.7 mangled such merges.
	str bool
}

// NewOptions returns a present section holding words as they are.
func NewOptions(words ...string) Options {
	return Options{words: slices.Clone(words), set: true}
}

// ParseOptions splits s shell-style (see SplitShell) into a present section.
func ParseOptions(s string) (Options, error) {
	w, err := SplitShell(s)
	if err != nil {
		return Options{}, err
	}
	return Options{words: w, set: true, str: true}, nil
}

// Args returns the section as argv words (a copy: callers may append).
func (o Options) Args() []string { return slices.Clone(o.words) }

// IsSet reports whether the config defined the section, even as empty.
func (o Options) IsSet() bool { return o.set }

// Has reports whether flag (e.g. "-map") occurs in the section.
func (o Options) Has(flag string) bool {
	for _, g := range groupOptions(o.words) {
		if g.flag == flag {
			return true
		}
	}
	return false
}

func (o Options) clone() Options {
	o.words = slices.Clone(o.words)
	return o
}

// optGroup is one flag and the value words that follow it.
type optGroup struct {
	flag  string // "" for leading words that follow no flag
	words []string
}

// isFlag tells an ffmpeg option name from a value. A dash followed by a digit
// is a value: "-strict -2", "-map -0:s" (negative map), "volume=-3dB".
// A lone "-" is a value too (stdin/stdout).
func isFlag(w string) bool {
	if len(w) < 2 || w[0] != '-' {
		return false
	}
	c := w[1]
	return !(c >= '0' && c <= '9') && c != '.'
}

// groupOptions cuts words into flag groups: "-c:v libx264 -preset fast"
// becomes [-c:v libx264] [-preset fast].
func groupOptions(words []string) []optGroup {
	var gs []optGroup
	for _, w := range words {
		if isFlag(w) || len(gs) == 0 {
			f := ""
			if isFlag(w) {
				f = w
			}
			gs = append(gs, optGroup{flag: f, words: []string{w}})
			continue
		}
		last := &gs[len(gs)-1]
		last.words = append(last.words, w)
	}
	return gs
}

// mergeOptions is the include merge of one section: the parent's options,
// where every flag the child also sets is replaced (at the place of its
// first occurrence in the parent) by all of the child's occurrences of that
// flag, followed by the child's flags that the parent lacks. Replacing every
// occurrence lets a child's set of -map lines replace the parent's set.
func mergeOptions(parent, child Options) Options {
	if !child.set {
		return parent.clone()
	}
	if !parent.set {
		return child.clone()
	}
	pg, cg := groupOptions(parent.words), groupOptions(child.words)
	byFlag := map[string][]optGroup{}
	for _, g := range cg {
		byFlag[g.flag] = append(byFlag[g.flag], g)
	}
	var out []string
	emitted := map[string]bool{}
	for _, g := range pg {
		repl, overridden := byFlag[g.flag]
		switch {
		case !overridden:
			out = append(out, g.words...)
		case !emitted[g.flag]:
			emitted[g.flag] = true
			for _, r := range repl {
				out = append(out, r.words...)
			}
		}
	}
	for _, g := range cg {
		if !emitted[g.flag] { // emitted means it replaced a parent flag above
			out = append(out, g.words...)
		}
	}
	return Options{words: out, set: true, str: child.str}
}

var errUnterminated = errors.New("unterminated quote")

// SplitShell splits s into words the way a POSIX shell would for a simple
// command: blanks separate words, '…' is literal, "…" groups words and
// honours \" \\ \$ \` inside, and a backslash outside quotes escapes a blank,
// a quote or a backslash. A backslash before any other character is kept
// literally, so Windows paths such as C:\media\x.srt survive unquoted (a
// shell would silently eat those backslashes). No globbing, variables or
// operators: ';', '|', '$' are ordinary characters.
func SplitShell(s string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
		quote  byte // 0, '\'' or '"'
	)
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch quote {
		case '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
			continue
		case '"':
			switch {
			case c == '"':
				quote = 0
			case c == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`\n", s[i+1]) >= 0:
				i++
				if s[i] != '\n' {
					cur.WriteByte(s[i])
				}
			default:
				cur.WriteByte(c)
			}
			continue
		}
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			flush()
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == '\\' && i+1 < len(s) && strings.IndexByte(" \t\n'\"\\", s[i+1]) >= 0:
			i++
			inWord = true
			if s[i] != '\n' {
				cur.WriteByte(s[i])
			}
		default:
			inWord = true
			cur.WriteByte(c)
		}
	}
	if quote != 0 {
		return nil, errUnterminated
	}
	flush()
	return words, nil
}
