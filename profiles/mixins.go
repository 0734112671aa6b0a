package profiles

import (
	"fmt"
	"slices"
	"strings"

	"clustertx/internal/yamlx"
)

// mixinSection is one of the three sections a mixin can replace.
type mixinSection struct {
	key  string // output_options_audio, …
	tkey string // the template's cli key for the same section
	get  func(*Profile) *Options
}

// setIn reports whether p sets the section; for video, an encoders: chain
// counts (a mixin's video section replaces it).
func (sec mixinSection) setIn(p *Profile) bool {
	return sec.get(p).set || (sec.key == "output_options_video" && p.chain != nil)
}

var mixinSections = []mixinSection{
	{"output_options_audio", "audio-codec", func(p *Profile) *Options { return &p.Audio }},
	{"output_options_video", "video-codec", func(p *Profile) *Options { return &p.Video }},
	{"output_options_subtitle", "subtitles", func(p *Profile) *Options { return &p.Subtitle }},
}

// MixinWarnings returns the warnings for applying mixins (in -m order) to
// p, one per deliberate difference from pytranscoder 2.2.7, each naming
// the mixin's or the profile's file:line, what pytranscoder did and what
// clustertx does:
//   - inCluster: pytranscoder dropped -m in cluster mode (-c); clustertx
//     applies mixins there too.
//   - several mixins set one section: pytranscoder used the first;
//     clustertx uses the last, as pytranscoder's docs say.
//   - a mixin sets a section p lacks: pytranscoder ignored it; clustertx
//     adds it (and says when p's other options set the same flag, which
//     ffmpeg then sees twice and takes the mixin's).
//   - p is a template: pytranscoder ignored mixins on templates; clustertx
//     replaces the template's cli entry (and names the words it drops,
//     such as -f matroska).
//
// Unknown mixin names are skipped here: the caller reports them.
func (s *Set) MixinWarnings(p *Profile, mixins []string, inCluster bool) []*yamlx.Warning {
	var ws []*yamlx.Warning
	warn := func(at *Profile, format string, args ...any) {
		w := at.errorf(format, args...)
		w.Compat = true
		ws = append(ws, w)
	}
	var ms []*Profile
	for _, name := range mixins {
		if m, ok := s.Get(name); ok && !slices.Contains(ms, m) {
			ms = append(ms, m)
		}
	}
	if inCluster {
		for _, m := range ms {
			warn(m, "mixin %s: pytranscoder 2.2.7 dropped -m in cluster mode (-c); clustertx applies it", m.Name)
		}
	}
	for _, sec := range mixinSections {
		var setters []*Profile
		for _, m := range ms {
			if sec.setIn(m) {
				setters = append(setters, m)
			}
		}
		if len(setters) == 0 {
			continue
		}
		last := setters[len(setters)-1]
		if len(setters) > 1 {
			warn(last, "mixins %s all set %s: pytranscoder 2.2.7 used the first (%s's); clustertx uses the last (%s's), as pytranscoder's docs say",
				names(setters), sec.key, setters[0].Name, last.Name)
		}
		have := sec.get(p)
		switch {
		case p.Template:
			msg := fmt.Sprintf("mixin %s with template %s: pytranscoder ignored mixins on templates; clustertx replaces its cli %s with %s's %s",
				last.Name, p.Name, sec.tkey, last.Name, sec.key)
			if lost := lostWords(have.words, sec.get(last).words); len(lost) > 0 {
				msg += fmt.Sprintf(", dropping %s", strings.Join(lost, " "))
			}
			warn(last, "%s", msg)
		case !sec.setIn(p):
			msg := fmt.Sprintf("mixin %s sets %s, which profile %s (line %d) lacks: pytranscoder ignored the mixin's section; clustertx adds it",
				last.Name, sec.key, p.Name, p.def.line)
			if dup := sharedFlags(p, sec.get(last).words); len(dup) > 0 {
				msg += fmt.Sprintf(", so ffmpeg gets %s twice and uses the mixin's", strings.Join(dup, " "))
			}
			warn(last, "%s", msg)
		}
	}
	return ws
}

// errorf is a warning positioned at p's definition.
func (p *Profile) errorf(format string, args ...any) *yamlx.Warning {
	return &yamlx.Warning{File: p.def.file, Line: p.def.line, Column: p.def.col, Key: p.def.path, Msg: fmt.Sprintf(format, args...)}
}

func names(ps []*Profile) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return strings.Join(out, ", ")
}

// lostWords lists the flag groups of old (e.g. "-f matroska") whose flag
// the replacement new does not set again.
func lostWords(old, new []string) []string {
	var lost []string
	newGroups := groupOptions(new)
	for _, g := range groupOptions(old) {
		if g.flag == "" || slices.ContainsFunc(newGroups, func(n optGroup) bool { return n.flag == g.flag }) {
			continue
		}
		lost = append(lost, g.words...)
	}
	return lost
}

// sharedFlags lists the flags of words that p's input, output and stream
// sections already set (a profile that keeps -c:a copy in output_options).
func sharedFlags(p *Profile, words []string) []string {
	var out []string
	for _, g := range groupOptions(words) {
		if g.flag == "" || slices.Contains(out, g.flag) {
			continue
		}
		for _, o := range []Options{p.Output, p.Audio, p.Video, p.Subtitle} {
			if o.Has(g.flag) {
				out = append(out, g.flag)
				break
			}
		}
	}
	return out
}
