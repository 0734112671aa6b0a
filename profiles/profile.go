package profiles

import (
	"fmt"
	"slices"

	"clustertx/internal/yamlx"
	"clustertx/quality"

	"go.yaml.in/yaml/v3"
)

// LangSelect is an audio:/subtitle: language selection. Languages are
// lower-case ISO 639-2 codes as ffprobe reports them ("eng", "und").
type LangSelect struct {
	Include, Exclude []string
	Default          string
}

// filters reports whether the selection drops anything (include or exclude
// set), as opposed to only naming a default language.
func (l *LangSelect) filters() bool {
	return l != nil && (len(l.Include) > 0 || len(l.Exclude) > 0)
}

// keeps applies the filter to one stream language. The include list, when
// not empty, decides alone; languages in both lists were already removed
// from Exclude at load time ("include wins").
func (l *LangSelect) keeps(lang string) bool {
	if l == nil {
		return true
	}
	if len(l.Include) > 0 {
		return slices.Contains(l.Include, lang)
	}
	return !slices.Contains(l.Exclude, lang)
}

func (l *LangSelect) clone() *LangSelect {
	if l == nil {
		return nil
	}
	return &LangSelect{Include: slices.Clone(l.Include), Exclude: slices.Clone(l.Exclude), Default: l.Default}
}

// Profile is a resolved profile or template: includes are already merged
// into it.
type Profile struct {
	Name     string
	Template bool

	// Input goes before -i; the others follow the input in the order
	// Output, Audio, Video, Subtitle (templates: Output, Video, Audio,
	// Subtitle, as pytranscoder emitted them).
	Input, Output, Audio, Video, Subtitle Options

	Extension      string // with its leading dot; "" = missing (see Validate)
	Queue          string // "" = the default queue
	Threshold      int    // minimum saving in %, 0 = off
	ThresholdCheck int    // % done at which to check the threshold early, 100 = off

	AudioSel, SubtitleSel *LangSelect
	Automap               *bool           // profile-level automap; nil = use the global one
	automapAt             *yaml.Node      // where Automap was set (for WarnProfileAutomap)
	Split                 *Split          // split mode (clustertx key); nil = off
	Quality               *quality.Config // quality-targeted encoding (clustertx key, quality.go); nil = off

	// VariantKey is the variant a ForVariant copy was made for; "" for a
	// profile as the config defines it.
	VariantKey string

	Pos string // "file:line" where defined

	// The encoders: chain (clustertx key): as written (chain) and resolved
	// against crf (variants). Both nil for a profile with one video
	// section; see Variants.
	chain    []variantSpec
	variants []Variant
	crf      *float64 // crf: the level mapped onto every variant without its own
	crfAt    defSite

	def      defSite
	has      map[string]bool // scalar keys the config set (for include merging)
	videoFst bool            // template: video-codec is emitted before audio-codec
}

// defSite is where a profile was defined, for positioned errors at use time.
type defSite struct {
	file      string
	line, col int
	path      string // e.g. profiles.hevc
}

// Validate reports whether p can be used as the main profile of a job. The
// only check is the extension, which pytranscoder also required only at use
// time: mixin-only fragments (e.g. an mp3_hq holding output_options_audio)
// legitimately lack one.
func (p *Profile) Validate() error {
	if p.Extension != "" {
		return nil
	}
	const msg = "extension is required (e.g. extension: .mkv)"
	if p.def.file == "" {
		return fmt.Errorf("profile %q: %s", p.Name, msg)
	}
	return &yamlx.Error{File: p.def.file, Line: p.def.line, Column: p.def.col, Key: p.def.path, Msg: msg}
}

// Clone returns a deep copy of p: editing the copy never changes p.
func (p *Profile) Clone() *Profile {
	c := *p
	c.Input, c.Output = p.Input.clone(), p.Output.clone()
	c.Audio, c.Video, c.Subtitle = p.Audio.clone(), p.Video.clone(), p.Subtitle.clone()
	c.AudioSel, c.SubtitleSel = p.AudioSel.clone(), p.SubtitleSel.clone()
	c.Quality = p.Quality.Clone()
	if p.Automap != nil {
		v := *p.Automap
		c.Automap = &v
	}
	if p.crf != nil {
		v := *p.crf
		c.crf = &v
	}
	c.chain = slices.Clone(p.chain) // specs are never modified after decoding
	if p.variants != nil {
		c.variants = p.Variants()
	}
	c.has = make(map[string]bool, len(p.has))
	for k, v := range p.has {
		c.has[k] = v
	}
	return &c
}

// Set is the profiles and templates of a config. They share one namespace,
// as in pytranscoder.
type Set struct {
	byName map[string]*Profile
	order  []string
}

// NewSet returns an empty set.
func NewSet() *Set { return &Set{byName: map[string]*Profile{}} }

// Add stores p under p.Name, replacing any profile of that name; the name
// then moves to the end of Names, which is file order for decoded configs.
func (s *Set) Add(p *Profile) {
	if _, dup := s.byName[p.Name]; dup {
		s.order = slices.DeleteFunc(s.order, func(n string) bool { return n == p.Name })
	}
	s.byName[p.Name] = p
	s.order = append(s.order, p.Name)
}

// Get returns the named profile or template. The result is shared: use
// Clone or WithMixins before changing it.
func (s *Set) Get(name string) (*Profile, bool) {
	p, ok := s.byName[name]
	return p, ok
}

// Names lists the profile and template names in file order.
func (s *Set) Names() []string { return slices.Clone(s.order) }

// WithMixins returns a copy of p whose audio, video and subtitle sections
// are replaced by those the named mixins define. Mixins apply in order, so
// when several define the same section the last one wins (what the
// pytranscoder docs promise; 2.2.7 let the first win). A mixin section
// replaces the profile's even when the profile has no such section
// (pytranscoder then ignored the mixin). input_options and output_options
// are never touched. An unknown mixin is an error naming it.
//
// The video section and an encoders: chain are one section: a mixin's
// output_options_video replaces p's chain (p then has one encoder, the
// mixin's), and a mixin's chain replaces p's video section or chain.
func (s *Set) WithMixins(p *Profile, mixins []string) (*Profile, error) {
	c := p.Clone()
	for _, name := range mixins {
		m, ok := s.Get(name)
		if !ok {
			return nil, fmt.Errorf("unknown mixin %q (not a profile or template)", name)
		}
		for _, sec := range []struct{ dst, src *Options }{
			{&c.Audio, &m.Audio}, {&c.Video, &m.Video}, {&c.Subtitle, &m.Subtitle},
		} {
			if sec.src.set {
				*sec.dst = sec.src.clone()
			}
		}
		switch {
		case m.Video.set:
			c.chain, c.variants, c.crf = nil, nil, nil
		case m.chain != nil:
			mc := m.Clone()
			c.chain, c.variants, c.crf, c.crfAt = mc.chain, mc.variants, mc.crf, mc.crfAt
			c.Video = Options{}
		}
	}
	return c, nil
}
