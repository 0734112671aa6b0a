package profiles

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"clustertx/media"
)

// ArgPlan is the ffmpeg argv of one job, minus what the caller adds itself:
// ffmpeg, -nostdin, -y, -progress, -i <input> and the output path.
type ArgPlan struct {
	In    []string // words placed before -i
	Out   []string // words after the input, before the output path
	Notes []string // remarks for the log: where the plan deviates from the config
}

// Plan builds the argv for encoding a file described by info with p as the
// main profile. automap is the global config.automap; a profile-level
// automap overrides it, as the pytranscoder docs describe. The error is
// p.Validate()'s (a profile without an extension cannot be the main one),
// or says that p has encoders: and a variant must be chosen first
// (ForVariant): which one depends on the host.
func (p *Profile) Plan(info *media.Info, automap bool) (*ArgPlan, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if p.variants != nil {
		return nil, p.def.errorf("profile %s has encoders: (%s); its argv depends on the variant a host uses", p.Name, p.variantKeys())
	}
	return p.plan(info, automap), nil
}

// Args is Plan without the validation and notes. Callers that need the
// extension check call Validate (or use Plan). For a profile with
// encoders:, call it on ForVariant's copy: p itself has no video section.
func (p *Profile) Args(info *media.Info, automap bool) (in, out []string) {
	pl := p.plan(info, automap)
	return pl.In, pl.Out
}

func (p *Profile) plan(info *media.Info, automap bool) *ArgPlan {
	pl := &ArgPlan{In: p.Input.Args()}
	pl.Out = p.Output.Args()
	if p.videoFst {
		pl.Out = append(append(pl.Out, p.Video.words...), p.Audio.words...)
	} else {
		pl.Out = append(append(pl.Out, p.Audio.words...), p.Video.words...)
	}
	pl.Out = append(pl.Out, p.Subtitle.words...)
	pl.Out = append(pl.Out, p.streamMaps(info, automap, &pl.Notes)...)
	return pl
}

// mapsStreams reports whether -map arguments are generated. As in
// pytranscoder, automap must be on and the file must have several audio or
// subtitle streams; in addition, an audio/subtitle include or exclude list
// turns mapping on for single-stream files too, because the user asked for
// those languages to be dropped (pytranscoder silently ignored the lists).
func (p *Profile) mapsStreams(info *media.Info, automap bool) bool {
	if p.Automap != nil {
		automap = *p.Automap
	}
	if !automap || info == nil {
		return false
	}
	return info.MultiStream() || p.AudioSel.filters() || p.SubtitleSel.filters()
}

// userMaps reports whether the profile's own options already map streams;
// adding ours would duplicate every stream.
func (p *Profile) userMaps() bool {
	for _, o := range []Options{p.Output, p.Audio, p.Video, p.Subtitle} {
		if o.Has("-map") {
			return true
		}
	}
	return false
}

func (p *Profile) streamMaps(info *media.Info, automap bool, notes *[]string) []string {
	if !p.mapsStreams(info, automap) {
		return nil
	}
	if p.userMaps() {
		*notes = append(*notes, "the profile sets its own -map; automatic stream mapping is skipped")
		return nil
	}
	if !p.AudioSel.filters() && !p.SubtitleSel.filters() {
		// Everything is kept, so no default track is dropped and
		// default_language has nothing to replace.
		return []string{"-map", "0"}
	}
	var args []string
	if info.Video != nil {
		args = append(args, "-map", "0:"+strconv.Itoa(info.Video.Index))
	}
	audio := keepStreams(p.AudioSel, info.Audio)
	if len(audio) == 0 && len(info.Audio) > 0 {
		audio = info.Audio
		*notes = append(*notes, fmt.Sprintf("audio language selection %s matches none of the audio streams (%s); keeping all audio",
			describeSel(p.AudioSel), languages(info.Audio)))
	}
	subs := keepStreams(p.SubtitleSel, info.Subtitles)
	args = append(args, mapEach(audio)...)
	args = append(args, mapEach(subs)...)
	args = append(args, p.attachmentMaps(info, notes)...)
	args = append(args, dispositions("a", p.AudioSel, info.Audio, audio, notes)...)
	return append(args, dispositions("s", p.SubtitleSel, info.Subtitles, subs, notes)...)
}

func keepStreams(sel *LangSelect, streams []media.Stream) []media.Stream {
	var kept []media.Stream
	for _, s := range streams {
		if sel.keeps(strings.ToLower(s.Language)) {
			kept = append(kept, s)
		}
	}
	return kept
}

func mapEach(streams []media.Stream) []string {
	var args []string
	for _, s := range streams {
		args = append(args, "-map", "0:"+strconv.Itoa(s.Index))
	}
	return args
}

// attachmentMaps keeps MKV attachments (fonts for styled subtitles, cover
// images) that an explicit -map list would otherwise drop, when the output
// container can hold them.
func (p *Profile) attachmentMaps(info *media.Info, notes *[]string) []string {
	var att []media.Stream
	for _, s := range info.Streams {
		if s.Type == "attachment" {
			att = append(att, s)
		}
	}
	if len(att) == 0 {
		return nil
	}
	switch strings.ToLower(p.Extension) {
	case ".mkv", ".mka", ".mks":
		return mapEach(att)
	}
	*notes = append(*notes, fmt.Sprintf("%d attachment stream(s) dropped: %s output cannot hold them", len(att), p.Extension))
	return nil
}

// dispositions applies default_language as pytranscoder's docs and
// transcode.yml.example describe it: only when the selection dropped the
// stream that was the default of its type (all is every stream of the
// type, kept the ones mapped, in output order). The first kept stream in
// sel.Default's language then gets "default" and every other kept stream
// 0, so players do not pick a stale default. When no default was dropped
// the source's flags are left as they are (on main, default_language moved
// the default even then, turning on subtitles nobody asked for).
func dispositions(typ string, sel *LangSelect, all, kept []media.Stream, notes *[]string) []string {
	if sel == nil || sel.Default == "" || len(kept) == 0 || !droppedDefault(all, kept) {
		return nil
	}
	want := -1
	for i, s := range kept {
		if strings.EqualFold(s.Language, sel.Default) {
			if s.Default {
				return nil
			}
			if want < 0 {
				want = i
			}
		}
	}
	if want < 0 {
		*notes = append(*notes, fmt.Sprintf("default_language %s: the default %s stream is dropped and no kept one is in that language; no default is set",
			sel.Default, typeName(typ)))
		return nil
	}
	var args []string
	for i := range kept {
		val := "0"
		if i == want {
			val = "default"
		}
		args = append(args, fmt.Sprintf("-disposition:%s:%d", typ, i), val)
	}
	return args
}

// droppedDefault reports whether a stream of all that is not in kept had
// the default flag.
func droppedDefault(all, kept []media.Stream) bool {
	for _, s := range all {
		if s.Default && !slices.ContainsFunc(kept, func(k media.Stream) bool { return k.Index == s.Index }) {
			return true
		}
	}
	return false
}

func typeName(typ string) string {
	if typ == "a" {
		return "audio"
	}
	return "subtitle"
}

func describeSel(sel *LangSelect) string {
	var parts []string
	if len(sel.Include) > 0 {
		parts = append(parts, "include "+strings.Join(sel.Include, ","))
	}
	if len(sel.Exclude) > 0 {
		parts = append(parts, "exclude "+strings.Join(sel.Exclude, ","))
	}
	return "(" + strings.Join(parts, "; ") + ")"
}

func languages(streams []media.Stream) string {
	langs := make([]string, len(streams))
	for i, s := range streams {
		langs[i] = s.Language
	}
	return strings.Join(langs, ",")
}
