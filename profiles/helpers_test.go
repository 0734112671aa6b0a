package profiles

import (
	"slices"
	"strings"
	"testing"

	"clustertx/internal/yamlx"
	"clustertx/media"
)

// loaded is a decoded test config.
type loaded struct {
	set   *Set
	rules []*Rule
	d     *yamlx.Decoder
}

// load decodes the profiles, templates and rules sections of src as the
// config package does, in that order.
func load(src string, strict bool) (*loaded, error) {
	d := &yamlx.Decoder{File: "t.yml", Strict: strict}
	root, err := d.Parse([]byte(strings.TrimLeft(src, "\n")))
	if err != nil {
		return nil, err
	}
	pairs, err := d.Mapping(root, "")
	if err != nil {
		return nil, err
	}
	l := &loaded{set: NewSet(), d: d}
	for _, sec := range []string{"profiles", "templates", "rules"} {
		for _, pr := range pairs {
			if pr.Key != sec {
				continue
			}
			switch sec {
			case "profiles":
				err = DecodeProfiles(d, pr.Value, pr.Path, l.set)
			case "templates":
				err = DecodeTemplates(d, pr.Value, pr.Path, l.set)
			case "rules":
				l.rules, err = DecodeRules(d, pr.Value, pr.Path, l.set)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return l, nil
}

func mustLoad(t *testing.T, src string) *loaded {
	t.Helper()
	l, err := load(src, false)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return l
}

func (l *loaded) get(t *testing.T, name string) *Profile {
	t.Helper()
	p, ok := l.set.Get(name)
	if !ok {
		t.Fatalf("profile %q not found; have %v", name, l.set.Names())
	}
	return p
}

// warnings returns the decoder's warnings as strings.
func (l *loaded) warnings() []string {
	var ws []string
	for _, w := range l.d.Warnings {
		ws = append(ws, w.Error())
	}
	return ws
}

func hasWarning(ws []string, sub string) bool {
	return slices.ContainsFunc(ws, func(w string) bool { return strings.Contains(w, sub) })
}

// words splits s on blanks; "~" stands for a space inside a word.
func words(s string) []string {
	w := strings.Fields(s)
	for i := range w {
		w[i] = strings.ReplaceAll(w[i], "~", " ")
	}
	return w
}

func eqWords(t *testing.T, what string, got []string, want string) {
	t.Helper()
	if w := words(want); !slices.Equal(got, w) && !(len(got) == 0 && len(w) == 0) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, w)
	}
}

func stream(idx int, typ, codec, lang string, def bool) media.Stream {
	return media.Stream{Index: idx, Type: typ, Codec: codec, Language: lang, Default: def}
}

// mkInfo builds a probe result: a video stream at index 0, then the given
// streams, which must carry increasing indexes.
func mkInfo(streams ...media.Stream) *media.Info {
	v := media.Stream{Index: 0, Type: "video", Codec: "h264", Language: "und", Width: 1920, Height: 1080, FPS: 24}
	info := &media.Info{Path: "/media/x.mkv", Streams: append([]media.Stream{v}, streams...)}
	info.Video = &info.Streams[0]
	for _, s := range streams {
		switch s.Type {
		case "audio":
			info.Audio = append(info.Audio, s)
		case "subtitle":
			info.Subtitles = append(info.Subtitles, s)
		}
	}
	return info
}
