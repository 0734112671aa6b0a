package hosts

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"clustertx/internal/encoder"
	"clustertx/internal/textx"
	"clustertx/internal/yamlx"
	"clustertx/window"

	"go.yaml.in/yaml/v3"
)

// Host keys, for "did you mean" hints on unknown keys.
var hostKeys = []string{
	"type", "status", "ip", "user", "port", "identity_file", "os", "ffmpeg",
	"working_dir", "path-substitutions", "path-substitution", "queues", "slots", "weight", "fallback", "max_load",
	"profiles", "profile", "window", "encoders", "exclude_encoders", "sessions",
}

// deadHostKeys are keys of older pytranscoder versions that nothing reads
// any more; they load with a warning.
var deadHostKeys = map[string]string{
	"templates":       "pytranscoder never read it either",
	"hbcli":           "HandBrakeCLI support was removed in pytranscoder 2.2.5; profiles run ffmpeg",
	"remote_copy_cmd": "files are copied over SFTP on the SSH connection",
}

// unknownInHost says why an unknown key in a host is an error, not a
// warning: a misspelt key changes which files the host takes or where.
const unknownInHost = "an unknown key in a host is an error: ignoring a misspelt key could change which files this host touches and where"

// validOS are the values of `os:`.
var validOS = []string{"linux", "macos", "win10"}

// DecodeHost decodes one host definition, config.clusters.<cluster>.<host>,
// in either pytranscoder generation: the 2.2.x form (type, status, ip, user,
// os, ffmpeg, working_dir, path-substitutions, queues, profiles) and the
// older form of the cluster docs (path-substitution: {src, dest}, profile:).
// clustertx adds port, identity_file and slots. A leading ~/ in
// identity_file expands to the current user's home directory.
//
// user and port are optional: when absent the SSH layer takes them from
// ~/.ssh/config for that address, else the current user and port 22. ip may
// therefore be an ssh_config Host alias.
func DecodeHost(d *yamlx.Decoder, cluster string, p yamlx.Pair) (*Def, error) {
	return DecodeHostHome(d, cluster, p, "")
}

// DecodeHostHome is DecodeHost with the directory a leading ~/ expands to;
// "" means os.UserHomeDir().
func DecodeHostHome(d *yamlx.Decoder, cluster string, p yamlx.Pair, home string) (*Def, error) {
	def := &Def{
		Name:    p.Key,
		Cluster: cluster,
		Enabled: true,
		FFmpeg:  DefaultFFmpeg,
		Pos:     fmt.Sprintf("%s:%d", d.File, p.KeyN.Line),
	}
	if yamlx.IsNull(p.Value) {
		return nil, d.Errorf(p.KeyN, p.Path, "empty host definition; a host needs at least type: (local, mounted or streaming)")
	}
	pairs, err := d.Mapping(p.Value, p.Path)
	if err != nil {
		return nil, err
	}
	var (
		typeN, slotsN       *yaml.Node
		subsN               []yamlx.Pair
		haveQueues, haveSlo bool
		encodersN, excludeN yamlx.Pair
	)
	for _, kv := range pairs {
		var err error
		switch kv.Key {
		case "type":
			var t string
			if t, err = d.String(kv.Value, kv.Path); err == nil {
				def.Type, err = decodeType(d, kv, t)
				typeN = kv.KeyN
			}
		case "status":
			var s string
			if s, err = d.String(kv.Value, kv.Path); err == nil {
				s = strings.TrimSpace(s)
				def.Enabled = strings.EqualFold(s, "enabled")
				switch {
				case def.Enabled && s != "enabled":
					// pytranscoder compared with "enabled" exactly.
					d.Compatf(kv.Value, kv.Path, "pytranscoder disabled this host (only the exact word enabled enables one); "+
						"clustertx reads %q as enabled and uses it: write enabled, or disabled to keep it out", s)
				case !def.Enabled && !strings.EqualFold(s, "disabled"):
					d.Warnf(kv.Value, kv.Path, "status %q is neither enabled nor disabled; the host is disabled (as in pytranscoder)", s)
				}
			}
		case "ip":
			def.Address, err = d.String(kv.Value, kv.Path)
			def.Address = strings.TrimSpace(def.Address)
		case "user":
			def.User, err = d.String(kv.Value, kv.Path)
			def.User = strings.TrimSpace(def.User)
		case "port":
			if def.Port, err = d.Int(kv.Value, kv.Path); err == nil && (def.Port < 1 || def.Port > 65535) {
				err = d.Errorf(kv.Value, kv.Path, "port must be between 1 and 65535, found %d", def.Port)
			}
		case "identity_file":
			var f string
			if f, err = d.String(kv.Value, kv.Path); err == nil {
				def.IdentityFile = ExpandHome(strings.TrimSpace(f), home)
			}
		case "os":
			var s string
			if s, err = d.String(kv.Value, kv.Path); err == nil {
				def.OS = strings.ToLower(strings.TrimSpace(s))
				if !slices.Contains(validOS, def.OS) {
					err = d.Errorf(kv.Value, kv.Path, "unknown os %q; use linux, macos or win10", s)
				}
			}
		case "ffmpeg":
			var s string
			if s, err = d.String(kv.Value, kv.Path); err == nil && strings.TrimSpace(s) != "" {
				def.FFmpeg = strings.TrimSpace(s)
			}
		case "working_dir":
			def.WorkingDir, err = d.String(kv.Value, kv.Path)
			def.WorkingDir = strings.TrimSpace(def.WorkingDir)
		case "path-substitutions", "path-substitution":
			var subs []PathSub
			if subs, err = decodePathSubs(d, kv); err == nil {
				def.PathSubs = append(def.PathSubs, subs...)
				subsN = append(subsN, kv)
			}
		case "queues":
			haveQueues = true
			def.Queues, err = DecodeQueues(d, kv.Value, kv.Path)
		case "slots":
			haveSlo, slotsN = true, kv.KeyN
			if def.Slots, err = d.Int(kv.Value, kv.Path); err == nil && def.Slots < 0 {
				err = d.Errorf(kv.Value, kv.Path, "slots must be 0 or more, found %d", def.Slots)
			}
		case "max_load":
			if def.MaxLoad, err = d.Float(kv.Value, kv.Path); err == nil && def.MaxLoad < 0 {
				err = d.Errorf(kv.Value, kv.Path, "max_load must be 0 (no limit) or more, found %g", def.MaxLoad)
			}
			def.MaxLoadSet = true
		case "fallback":
			def.FallbackSet = true
			def.Fallback, err = d.Bool(kv.Value, kv.Path)
		case "weight":
			if def.Weight, err = d.Float(kv.Value, kv.Path); err == nil && def.Weight <= 0 {
				err = d.Errorf(kv.Value, kv.Path, "weight must be more than 0, found %g", def.Weight)
			}
		case "profiles":
			var items []string
			items, err = d.Strings(kv.Value, kv.Path, true)
			for _, it := range items { // "- hevc h264" holds two names
				def.Profiles = append(def.Profiles, strings.Fields(it)...)
			}
			if len(def.Profiles) > 0 {
				d.Compatf(kv.KeyN, kv.Path, "pytranscoder 2.2.5-2.2.7 never read a host's profiles: list and sent it any job of its queues; "+
					"clustertx enforces it: this host only takes jobs whose profile is %s", strings.Join(def.Profiles, ", "))
			}
		case "window":
			var items []string
			if items, err = d.Strings(kv.Value, kv.Path, false); err == nil {
				for _, it := range items {
					var w window.Window
					if w, err = window.Parse(it); err != nil {
						err = d.Errorf(kv.Value, kv.Path, "window: %v", err)
						break
					}
					def.Window = append(def.Window, w...)
				}
			}
		case "encoders", "exclude_encoders":
			var items []string
			if items, err = d.Strings(kv.Value, kv.Path, true); err == nil {
				var names []string
				for _, it := range items {
					names = append(names, strings.Fields(it)...)
				}
				if len(names) == 0 {
					err = d.Errorf(kv.Value, kv.Path, "%s: needs at least one encoder name (ffmpeg's, e.g. hevc_nvenc, libx265)", kv.Key)
				} else if kv.Key == "encoders" {
					def.Encoders, encodersN = names, kv
				} else {
					def.ExcludeEncoders, excludeN = names, kv
				}
			}
		case "sessions":
			def.Sessions, err = decodeSessions(d, kv)
		case "profile":
			var s string
			if s, err = d.String(kv.Value, kv.Path); err == nil {
				def.Profile = strings.TrimSpace(s)
			}
		default:
			if why, dead := deadHostKeys[kv.Key]; dead {
				d.Warnf(kv.KeyN, kv.Path, "%s is ignored (%s)", kv.Key, why)
				continue
			}
			err = d.UnknownFatal(kv, textx.Suggest(kv.Key, hostKeys), unknownInHost)
		}
		if err != nil {
			return nil, err
		}
	}

	switch {
	case typeN == nil:
		return nil, d.Errorf(p.KeyN, p.Path, "host %s has no type: (local, mounted or streaming)", p.Key)
	case def.Type != Local && def.Address == "":
		return nil, d.Errorf(p.KeyN, p.Path+".ip", "%s host %s needs ip: (an address, host name or ~/.ssh/config alias)", def.Type, p.Key)
	case def.Type == Streaming && def.WorkingDir == "":
		return nil, d.Errorf(p.KeyN, p.Path+".working_dir", "streaming host %s needs working_dir: (the directory on %s where files are staged)", p.Key, p.Key)
	}
	for _, e := range def.ExcludeEncoders {
		if slices.Contains(def.Encoders, e) {
			return nil, d.Errorf(excludeN.Value, excludeN.Path, "%s is both in encoders: (%s) and in exclude_encoders:; keep it in one", e, encodersN.Path)
		}
	}
	if def.Type != Streaming {
		def.WorkingDir = "" // samples set it on mounted and local hosts; pytranscoder ignores it there too
	}
	if def.Type != Mounted && len(def.PathSubs) > 0 {
		d.Warnf(subsN[0].KeyN, subsN[0].Path, "path substitution applies only to mounted hosts; ignored on this %s host", def.Type)
		def.PathSubs = nil
	}
	if def.OS == "" {
		def.OS = "linux"
		if def.Type == Local {
			def.OS = localOS()
		}
	}
	switch {
	case haveQueues && haveSlo:
		d.Warnf(slotsN, p.Path+".slots", "slots is ignored when queues: is set (the host runs the sum of its queue slots)")
		def.Slots = 0
	case !haveQueues && !haveSlo:
		def.Slots = 1
	}
	return def, nil
}

func decodeType(d *yamlx.Decoder, kv yamlx.Pair, s string) (Type, error) {
	switch t := Type(strings.ToLower(strings.TrimSpace(s))); t {
	case Local, Mounted, Streaming:
		return t, nil
	case "agent":
		return "", d.Errorf(kv.Value, kv.Path, "type agent is refused: pytranscoder's agent protocol (TCP port 9567) "+
			"is plain text and unauthenticated, so anyone on the network can run commands on that machine; "+
			"use type: streaming instead (files are copied to working_dir over SSH and encoded there)")
	case "":
		return "", d.Errorf(kv.Value, kv.Path, "empty type; use local, mounted or streaming")
	default:
		return "", d.Errorf(kv.Value, kv.Path, "unknown host type %q; valid types are local (this machine), "+
			"mounted (sees the media over a shared filesystem) and streaming (files are copied over SSH)", s)
	}
}

// decodePathSubs accepts, for path-substitutions and path-substitution:
// a list whose items are "src dst" strings, [src, dst] lists or
// {src:, dest:} maps; or a single such item on its own.
func decodePathSubs(d *yamlx.Decoder, kv yamlx.Pair) ([]PathSub, error) {
	n := kv.Value
	if yamlx.IsNull(n) {
		return nil, nil
	}
	items := []*yaml.Node{n}
	paths := []string{kv.Path}
	if n.Kind == yaml.SequenceNode && !isPairList(n) {
		items, paths = n.Content, nil
		for i := range n.Content {
			paths = append(paths, fmt.Sprintf("%s[%d]", kv.Path, i))
		}
	}
	var out []PathSub
	for i, it := range items {
		s, err := decodePathSub(d, it, paths[i])
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// isPairList reports whether n is a bare [src, dst] list of two scalars
// that are not themselves "src dst" strings.
func isPairList(n *yaml.Node) bool {
	if len(n.Content) != 2 {
		return false
	}
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode || len(strings.Fields(c.Value)) != 1 {
			return false
		}
	}
	return true
}

const pathSubForms = `write "/manager/prefix/ /host/prefix/", [src, dst] or {src: …, dest: …}`

func decodePathSub(d *yamlx.Decoder, n *yaml.Node, path string) (PathSub, error) {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	var s PathSub
	switch n.Kind {
	case yaml.ScalarNode:
		f := strings.Fields(n.Value)
		if len(f) != 2 {
			return s, d.Errorf(n, path, "path substitution %q must be two paths separated by a space "+
				"(neither may contain spaces; use {src: …, dest: …} for paths with spaces)", n.Value)
		}
		s = PathSub{Src: f[0], Dst: f[1]}
	case yaml.SequenceNode:
		if len(n.Content) != 2 {
			return s, d.Errorf(n, path, "a path substitution list must have exactly two items, src and dst; %s", pathSubForms)
		}
		var err error
		if s.Src, err = d.String(n.Content[0], path+"[0]"); err != nil {
			return s, err
		}
		if s.Dst, err = d.String(n.Content[1], path+"[1]"); err != nil {
			return s, err
		}
	case yaml.MappingNode:
		pairs, err := d.Mapping(n, path)
		if err != nil {
			return s, err
		}
		for _, kv := range pairs {
			switch kv.Key {
			case "src":
				s.Src, err = d.String(kv.Value, kv.Path)
			case "dest", "dst":
				s.Dst, err = d.String(kv.Value, kv.Path)
			default:
				err = d.UnknownFatal(kv, textx.Suggest(kv.Key, []string{"src", "dest"}), unknownInHost)
			}
			if err != nil {
				return s, err
			}
		}
	default:
		return s, d.Errorf(n, path, "unexpected path substitution; %s", pathSubForms)
	}
	if s.Src == "" || s.Dst == "" {
		return s, d.Errorf(n, path, "a path substitution needs both src and dest; %s", pathSubForms)
	}
	return s, nil
}

// decodeSessions decodes `sessions: {nvenc: 3, qsv: 2}`: a hardware
// family (as package encoder names them) → the most jobs of that family the
// host runs at once (1 or more).
func decodeSessions(d *yamlx.Decoder, kv yamlx.Pair) ([]FamilyCap, error) {
	pairs, err := d.Mapping(kv.Value, kv.Path)
	if err != nil {
		return nil, err
	}
	var out []FamilyCap
	for _, p := range pairs {
		if !slices.Contains(encoder.Families(), p.Key) {
			hint := textx.Suggest(p.Key, encoder.Families())
			if hint != "" {
				hint = " (" + hint + ")"
			}
			return nil, d.Errorf(p.KeyN, p.Path, "unknown hardware family %q%s; sessions: takes %s",
				p.Key, hint, strings.Join(encoder.Families(), ", "))
		}
		n, err := d.Int(p.Value, p.Path)
		if err != nil {
			return nil, err
		}
		if n < 1 {
			return nil, d.Errorf(p.Value, p.Path, "sessions for %s must be 1 or more, found %d (to keep a family off this host, use exclude_encoders:)", p.Key, n)
		}
		out = append(out, FamilyCap{Family: p.Key, N: n})
	}
	return out, nil
}

// DecodeQueues decodes a `queues: {name: slots}` mapping in file order.
// Slots must be 0 or more (0 keeps the queue defined but idle).
func DecodeQueues(d *yamlx.Decoder, n *yaml.Node, path string) ([]QueueSlots, error) {
	pairs, err := d.Mapping(n, path)
	if err != nil {
		return nil, err
	}
	out := make([]QueueSlots, 0, len(pairs))
	for _, q := range pairs {
		slots, err := d.Int(q.Value, q.Path)
		if err != nil {
			return nil, err
		}
		if slots < 0 {
			return nil, d.Errorf(q.Value, q.Path, "queue slots must be 0 or more, found %d", slots)
		}
		out = append(out, QueueSlots{Queue: q.Key, Slots: slots})
	}
	return out, nil
}

// ExpandHome replaces a leading "~/" (or a lone "~") with home; "" means
// os.UserHomeDir(). Other paths, including ~user/…, are returned unchanged.
func ExpandHome(p, home string) string {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p
	}
	if home == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return p
		}
		home = h
	}
	return filepath.Join(home, strings.TrimPrefix(p[1:], "/"))
}

func localOS() string {
	switch runtime.GOOS {
	case "darwin":
		return "macos"
	case "windows":
		return "win10"
	}
	return "linux"
}
