package profiles

import (
	"strings"

	"clustertx/internal/yamlx"

	"go.yaml.in/yaml/v3"
)

var (
	templateKeys = []string{"cli", "audio-lang", "subtitle-lang", keyThreshold, keyThresholdCheck, keyQueue, keyExtension}
	cliKeys      = []string{"input-options", "video-codec", "audio-codec", "subtitles"}
)

// DecodeTemplates decodes the templates: section (pytranscoder 2.2.6+) into
// set. Templates share the namespace of profiles: a template named like a
// profile replaces it, with a warning.
func DecodeTemplates(d *yamlx.Decoder, n *yaml.Node, path string, set *Set) error {
	pairs, err := d.Mapping(n, path)
	if err != nil {
		return err
	}
	for _, pr := range pairs {
		t, err := decodeTemplate(d, pr)
		if err != nil {
			return err
		}
		if old, dup := set.Get(t.Name); dup {
			d.Warnf(pr.KeyN, pr.Path, "template replaces the profile %q defined at %s (templates and profiles share one namespace)", t.Name, old.Pos)
		}
		set.Add(t)
	}
	return nil
}

func decodeTemplate(d *yamlx.Decoder, pr yamlx.Pair) (*Profile, error) {
	t := newProfile(d, pr)
	t.Template, t.videoFst = true, true
	pairs, err := d.Mapping(pr.Value, pr.Path)
	if err != nil {
		return nil, err
	}
	hasCLI := false
	for _, kv := range pairs {
		switch kv.Key {
		case "cli":
			hasCLI = true
			err = decodeCLI(d, kv, t)
		case "audio-lang":
			t.AudioSel, err = decodeTemplateLangs(d, kv)
		case "subtitle-lang":
			t.SubtitleSel, err = decodeTemplateLangs(d, kv)
			if err == nil && t.SubtitleSel != nil && t.SubtitleSel.Default != "" {
				d.Compatf(kv.KeyN, kv.Path, "pytranscoder 2.2.7 never moved the default subtitle (its probe read no subtitle default flags); "+
					"clustertx does: when the default subtitle is dropped, the first kept %s subtitle becomes the default", t.SubtitleSel.Default)
			}
		case keyThreshold, keyThresholdCheck, keyQueue, keyExtension:
			err = decodeProfileKey(d, kv, t)
		default:
			err = d.Unknown(kv, suggest(kv.Key, templateKeys))
		}
		if err != nil {
			return nil, err
		}
	}
	if !hasCLI {
		// pytranscoder exits at load too ("missing cli section").
		return nil, d.Errorf(pr.KeyN, pr.Path, "a template needs a cli: section (input-options, video-codec, audio-codec, subtitles)")
	}
	return t, nil
}

// decodeCLI maps cli: onto option sections. Empty keys contribute nothing
// (pytranscoder emitted empty argv words, which ffmpeg rejects).
func decodeCLI(d *yamlx.Decoder, kv yamlx.Pair, t *Profile) error {
	pairs, err := d.Mapping(kv.Value, kv.Path)
	if err != nil {
		return err
	}
	for _, c := range pairs {
		var dst *Options
		switch c.Key {
		case "input-options":
			dst = &t.Input
		case "video-codec":
			dst = &t.Video
		case "audio-codec":
			dst = &t.Audio
		case "subtitles":
			dst = &t.Subtitle
		default:
			if err := d.Unknown(c, suggest(strings.ReplaceAll(c.Key, "_", "-"), cliKeys)); err != nil {
				return err
			}
			continue
		}
		if *dst, err = decodeOptions(d, c.Value, c.Path); err != nil {
			return err
		}
	}
	return nil
}

// decodeTemplateLangs reads "eng *jpn": the languages to keep, "*" marking
// the default one (pytranscoder compared "*jpn" with "jpn" and so dropped
// that track). A single language is the default too, as pytranscoder did.
func decodeTemplateLangs(d *yamlx.Decoder, kv yamlx.Pair) (*LangSelect, error) {
	langs, err := decodeLangs(d, kv)
	if err != nil || len(langs) == 0 {
		return nil, err
	}
	sel := &LangSelect{}
	for _, l := range langs {
		name, star := strings.CutPrefix(l, "*")
		if name == "" {
			continue
		}
		if star {
			d.Compatf(kv.Value, kv.Path, "pytranscoder compared %q with the track languages, so it dropped the %s tracks (and with several languages set no default); "+
				"clustertx keeps them and makes %s the default when the default track is dropped", l, name, name)
			if sel.Default != "" {
				d.Warnf(kv.Value, kv.Path, "several languages marked with *; %s stays the default", sel.Default)
			} else {
				sel.Default = name
			}
		}
		sel.Include = append(sel.Include, name)
	}
	if sel.Default == "" && len(sel.Include) == 1 {
		sel.Default = sel.Include[0]
	}
	return sel, nil
}
