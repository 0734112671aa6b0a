// Package config loads transcode.yml, the same file pytranscoder reads. It
// owns finding the file (-y, $CLUSTERTX_CONFIG, ~/.transcode.yml, else the
// embedded default), the four top-level sections (config, profiles,
// templates, rules), the global keys of the config section and the clusters
// map, and the built-in default configuration. What a profile, template,
// rule or host definition means belongs to packages profiles and hosts,
// which decode their own sections; config only calls them in the right
// order and checks the references between sections.
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"clustertx/hosts"
	"clustertx/internal/textx"
	"clustertx/internal/yamlx"
	"clustertx/media"
	"clustertx/profiles"
	"clustertx/window"

	"go.yaml.in/yaml/v3"
)

// EnvVar names the environment variable that points at a config file.
const EnvVar = "CLUSTERTX_CONFIG"

// HomeFile is the config file looked for in the home directory.
const HomeFile = ".transcode.yml"

// EmbeddedName is Config.File for the built-in default.
const EmbeddedName = "(built-in default)"

//go:embed default.yml
var defaultYAML []byte

// DefaultYAML returns the built-in default configuration, for printing or
// as a starting point for a user's own file.
func DefaultYAML() []byte { return append([]byte(nil), defaultYAML...) }

// DefaultMediaExtensions are the extensions picked from a directory given on
// the command line when media_extensions is not set.
var DefaultMediaExtensions = []string{
	".mkv", ".mp4", ".m4v", ".avi", ".mov", ".wmv", ".ts", ".m2ts", ".mpg",
	".mpeg", ".webm", ".flv", ".vob", ".mts", ".3gp", ".ogv",
}

// LoadOptions says where to look for the config and how strict to be.
type LoadOptions struct {
	Path   string              // -y FILE; "" = search
	Strict bool                // --strict: unknown keys are fatal
	Getenv func(string) string // nil = os.Getenv (tests inject)
	Home   string              // "" = os.UserHomeDir()
}

// Config is a loaded transcode.yml.
type Config struct {
	File     string // path that was loaded, or EmbeddedName
	Embedded bool   // the built-in default was used: no file was found

	FFmpeg           string             // manager's ffmpeg (config.ffmpeg, default "ffmpeg")
	FFprobe          string             // ffprobe beside FFmpeg when it is there, else from PATH
	DefaultQueueFile string             // config.default_queue_file, ~/ expanded
	Queues           []hosts.QueueSlots // config.queues: local-mode concurrency per queue
	Automap          bool               // config.automap, default true
	FLSPath          string             // config.fls_path, ~/ expanded
	MediaExtensions  []string           // config.media_extensions: lower-case, with the dot
	// Notify lists where to send the end-of-run summary (config.notify:
	// notification URLs, see package notify); --notify adds to it.
	Notify []string
	// NotifyEachFailure also sends one notification per failed file, as it
	// fails (config.notify_each_failure, default no).
	NotifyEachFailure bool
	// Until ends the run's window (config.until, "HH:MM" local time, ""
	// for none; a time already past today means tomorrow): no job starts
	// that is predicted to end after it, and what still runs then is
	// stopped. --until overrides it.
	Until string
	// Grace lets a job still running when its window closes finish if it
	// does within this long (config.grace; default 0: stopped at once).
	Grace time.Duration

	Profiles *profiles.Set    // profiles and templates, one namespace
	Rules    []*profiles.Rule // in file order; first match wins
	Clusters []*Cluster       // in file order

	Warnings []*yamlx.Warning // everything non-fatal, positioned
}

// Cluster is one entry of config.clusters.
type Cluster struct {
	Mode    string  // "", local, remote or both (see applyMode)
	MaxLoad float64 // default max_load for its hosts (0: none)
	Name    string
	Hosts   []*hosts.Def // in file order
	Pos     string       // file:line
}

// Host returns the cluster's host of that name.
func (c *Cluster) Host(name string) (*hosts.Def, bool) {
	for _, h := range c.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return nil, false
}

// Cluster returns the cluster of that name.
func (c *Config) Cluster(name string) (*Cluster, bool) {
	for _, cl := range c.Clusters {
		if cl.Name == name {
			return cl, true
		}
	}
	return nil, false
}

// ClusterNames lists the clusters in file order.
func (c *Config) ClusterNames() []string {
	out := make([]string, 0, len(c.Clusters))
	for _, cl := range c.Clusters {
		out = append(out, cl.Name)
	}
	return out
}

// HostNames lists every host of every cluster once, in file order. A host
// that appears in several clusters is the same machine (Load checks that
// the definitions agree).
func (c *Config) HostNames() []string {
	var out []string
	seen := map[string]bool{}
	for _, cl := range c.Clusters {
		for _, h := range cl.Hosts {
			if !seen[h.Name] {
				seen[h.Name] = true
				out = append(out, h.Name)
			}
		}
	}
	return out
}

// Profile returns the profile or template of that name, or an error that
// lists the names the config defines.
func (c *Config) Profile(name string) (*profiles.Profile, error) {
	if c.Profiles != nil {
		if p, ok := c.Profiles.Get(name); ok {
			return p, nil
		}
	}
	var names []string
	if c.Profiles != nil {
		names = c.Profiles.Names()
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("unknown profile %q: %s defines no profiles or templates", name, c.File)
	}
	msg := fmt.Sprintf("unknown profile %q", name)
	if hint := textx.Suggest(name, names); hint != "" {
		msg += " (" + hint + ")"
	}
	return nil, fmt.Errorf("%s; %s defines: %s", msg, c.File, strings.Join(names, ", "))
}

// Load finds, reads and decodes the config. Errors and Warnings name
// file:line:column and the key.
func Load(opts LoadOptions) (*Config, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	home := opts.Home
	if home == "" {
		home, _ = os.UserHomeDir() // without a home, ~/ paths stay as written
	}
	path, data, err := find(opts.Path, getenv, home)
	if err != nil {
		return nil, err
	}
	c := &Config{File: path, Embedded: path == EmbeddedName}
	d := &yamlx.Decoder{File: path, Strict: opts.Strict}
	if err := decode(c, d, data, home); err != nil {
		return nil, err
	}
	c.Warnings = d.Warnings
	if c.Embedded {
		// The built-in default is written for clustertx: where it differs
		// from pytranscoder it means to.
		c.Warnings = slices.DeleteFunc(c.Warnings, func(w *yamlx.Warning) bool { return w.Compat })
	}
	return c, nil
}

// find applies the search order: -y, $CLUSTERTX_CONFIG, ~/.transcode.yml,
// the embedded default. A file named by -y or the variable must exist.
func find(flagPath string, getenv func(string) string, home string) (string, []byte, error) {
	read := func(p, via string) (string, []byte, error) {
		data, err := os.ReadFile(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return "", nil, fmt.Errorf("config file %s (%s) not found", p, via)
			}
			return "", nil, fmt.Errorf("read config file (%s): %w", via, err)
		}
		return p, data, nil
	}
	if flagPath != "" {
		return read(hosts.ExpandHome(flagPath, home), "given with -y")
	}
	if p := getenv(EnvVar); p != "" {
		return read(hosts.ExpandHome(p, home), "from $"+EnvVar)
	}
	if home != "" {
		p := filepath.Join(home, HomeFile)
		if _, err := os.Stat(p); err == nil {
			return read(p, "found in the home directory")
		}
	}
	return EmbeddedName, defaultYAML, nil
}

// loader carries the state of one Load.
type loader struct {
	c    *Config
	d    *yamlx.Decoder
	home string
	// hostPairs keeps each host's YAML for checks that need positions
	// after all sections are decoded.
	hostPairs map[*hosts.Def]yamlx.Pair
}

// Top-level sections, in the order they are decoded.
var sections = []string{"profiles", "templates", "rules", "config"}

func decode(c *Config, d *yamlx.Decoder, data []byte, home string) error {
	root, err := d.Parse(data)
	if err != nil {
		return err
	}
	top, err := d.Mapping(root, "")
	if err != nil {
		return err
	}
	l := &loader{c: c, d: d, home: home, hostPairs: map[*hosts.Def]yamlx.Pair{}}
	found := map[string]yamlx.Pair{}
	for _, p := range top {
		if slices.Contains(sections, p.Key) {
			found[p.Key] = p
			continue
		}
		if err := d.Unknown(p, textx.Suggest(p.Key, sections)); err != nil {
			return err
		}
	}

	c.FFmpeg = hosts.DefaultFFmpeg
	c.Automap = true
	c.MediaExtensions = append([]string(nil), DefaultMediaExtensions...)
	c.Profiles = profiles.NewSet()

	if p, ok := found["profiles"]; ok {
		if err := profiles.DecodeProfiles(d, p.Value, p.Path, c.Profiles); err != nil {
			return err
		}
	}
	if p, ok := found["templates"]; ok {
		if err := profiles.DecodeTemplates(d, p.Value, p.Path, c.Profiles); err != nil {
			return err
		}
	}
	if p, ok := found["rules"]; ok {
		if c.Rules, err = profiles.DecodeRules(d, p.Value, p.Path, c.Profiles); err != nil {
			return err
		}
	}
	if p, ok := found["config"]; ok {
		if err := l.configSection(p); err != nil {
			return err
		}
	} else {
		d.Warnf(root, "config", "no config: section (pytranscoder requires one); using the defaults: ffmpeg from PATH, no clusters")
	}
	c.FFprobe = media.FindFFprobe(c.FFmpeg)
	profiles.WarnProfileAutomap(d, c.Profiles, c.Automap)
	return l.checkHostProfiles()
}

// configKeys decodes the keys of the config section. Adding a global key is
// one line here plus a field in Config.
var configKeys = map[string]func(l *loader, p yamlx.Pair) error{
	"ffmpeg":              stringKey(func(c *Config) *string { return &c.FFmpeg }, false),
	"default_queue_file":  stringKey(func(c *Config) *string { return &c.DefaultQueueFile }, true),
	"fls_path":            stringKey(func(c *Config) *string { return &c.FLSPath }, true),
	"automap":             boolKey(func(c *Config) *bool { return &c.Automap }),
	"queues":              (*loader).queues,
	"media_extensions":    (*loader).mediaExtensions,
	"notify":              (*loader).notify,
	"notify_each_failure": boolKey(func(c *Config) *bool { return &c.NotifyEachFailure }),
	"clusters":            (*loader).clusters,
	"until":               (*loader).until,
	"grace":               (*loader).grace,

	// pytranscoder keys clustertx does not use: one warning each.
	"plex_server": legacyKey("pytranscoder 2.1 removed the Plex library refresh; refresh Plex after the run"),
	"hbcli":       legacyKey("HandBrakeCLI support was removed in pytranscoder 2.2.5; profiles run ffmpeg"),
	"colorize":    legacyKey("colour is used when the output is a terminal"),
	"docker":      legacyKey("pytranscoder never implemented it"),
	"ssh":         legacyKey("clustertx speaks SSH itself; put ssh options in ~/.ssh/config"),
}

func (l *loader) configSection(sec yamlx.Pair) error {
	pairs, err := l.d.Mapping(sec.Value, sec.Path)
	if err != nil {
		return err
	}
	for _, p := range pairs {
		decode, ok := configKeys[p.Key]
		if !ok {
			err = l.d.Unknown(p, textx.Suggest(p.Key, keysOf(configKeys)))
		} else {
			err = decode(l, p)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func stringKey(field func(*Config) *string, isPath bool) func(*loader, yamlx.Pair) error {
	return func(l *loader, p yamlx.Pair) error {
		s, err := l.d.String(p.Value, p.Path)
		if err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			return nil // `key:` with no value keeps the default
		}
		if isPath {
			s = hosts.ExpandHome(s, l.home)
		}
		*field(l.c) = s
		return nil
	}
}

func boolKey(field func(*Config) *bool) func(*loader, yamlx.Pair) error {
	return func(l *loader, p yamlx.Pair) error {
		if yamlx.IsNull(p.Value) {
			return nil
		}
		b, err := l.d.Bool(p.Value, p.Path)
		if err == nil {
			*field(l.c) = b
		}
		return err
	}
}

func legacyKey(why string) func(*loader, yamlx.Pair) error {
	return func(l *loader, p yamlx.Pair) error {
		l.d.Warnf(p.KeyN, p.Path, "%s is ignored by clustertx (%s)", p.Key, why)
		return nil
	}
}

func (l *loader) queues(p yamlx.Pair) error {
	q, err := hosts.DecodeQueues(l.d, p.Value, p.Path)
	l.c.Queues = q
	return err
}

func (l *loader) mediaExtensions(p yamlx.Pair) error {
	exts, err := l.d.Strings(p.Value, p.Path, true)
	if err != nil {
		return err
	}
	var out []string
	for _, e := range exts {
		for _, w := range strings.Fields(e) { // list items may hold several
			w = strings.ToLower(w)
			if !strings.HasPrefix(w, ".") {
				w = "." + w
			}
			if !slices.Contains(out, w) {
				out = append(out, w)
			}
		}
	}
	if len(out) == 0 {
		return l.d.Errorf(p.Value, p.Path, "lists no extensions; remove the key to use the defaults (%s)", strings.Join(DefaultMediaExtensions, " "))
	}
	l.c.MediaExtensions = out
	return nil
}

// until decodes config.until: "HH:MM", local time.
func (l *loader) until(p yamlx.Pair) error {
	s, err := l.d.String(p.Value, p.Path)
	if err != nil || strings.TrimSpace(s) == "" {
		return err
	}
	if _, err := window.ParseClock(s); err != nil {
		return l.d.Errorf(p.Value, p.Path, "until: %v", err)
	}
	l.c.Until = strings.TrimSpace(s)
	return nil
}

// grace decodes config.grace: a Go duration ("10m").
func (l *loader) grace(p yamlx.Pair) error {
	s, err := l.d.String(p.Value, p.Path)
	if err != nil || strings.TrimSpace(s) == "" {
		return err
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < 0 {
		return l.d.Errorf(p.Value, p.Path, "grace: %q is not a duration such as 10m or 1h30m", s)
	}
	l.c.Grace = d
	return nil
}

// notify decodes config.notify: one URL or a list of them.
func (l *loader) notify(p yamlx.Pair) error {
	urls, err := l.d.Strings(p.Value, p.Path, false)
	if err != nil {
		return err
	}
	for _, u := range urls {
		if u = strings.TrimSpace(u); u != "" {
			l.c.Notify = append(l.c.Notify, u)
		}
	}
	return nil
}

// clusters decodes config.clusters: cluster → host → hosts.DecodeHost.
func (l *loader) clusters(sec yamlx.Pair) error {
	cls, err := l.d.Mapping(sec.Value, sec.Path)
	if err != nil {
		return err
	}
	first := map[string]*hosts.Def{} // host name → its first definition
	for _, cp := range cls {
		cl := &Cluster{Name: cp.Key, Pos: fmt.Sprintf("%s:%d", l.d.File, cp.KeyN.Line)}
		hps, err := l.d.Mapping(cp.Value, cp.Path)
		if err != nil {
			return err
		}
		for _, hp := range hps {
			if hp.Key == "max_load" && hp.Value.Kind == yaml.ScalarNode {
				// Not a host: the cluster's default max_load.
				if cl.MaxLoad, err = l.d.Float(hp.Value, hp.Path); err != nil {
					return err
				}
				if cl.MaxLoad < 0 {
					return l.d.Errorf(hp.Value, hp.Path, "max_load must be 0 (no limit) or more")
				}
				continue
			}
			if hp.Key == "mode" && hp.Value.Kind == yaml.ScalarNode {
				// Not a host: the cluster's operating mode (a host is a mapping).
				mode, err := l.d.String(hp.Value, hp.Path)
				if err != nil {
					return err
				}
				switch mode = strings.ToLower(strings.TrimSpace(mode)); mode {
				case ModeLocal, ModeRemote, ModeBoth:
					cl.Mode = mode
				default:
					return l.d.Errorf(hp.Value, hp.Path, "mode must be local, remote or both, found %q", mode)
				}
				continue
			}
			h, err := hosts.DecodeHostHome(l.d, cp.Key, hp, l.home)
			if err != nil {
				return err
			}
			if prev, dup := first[h.Name]; dup {
				if diff := hostDiff(prev, h); diff != "" {
					return l.d.Errorf(hp.KeyN, hp.Path, "host %s is also defined at %s (cluster %s) with a different %s; "+
						"a host name is one machine in every cluster, so give this one another name or make the definitions agree",
						h.Name, prev.Pos, prev.Cluster, diff)
				}
			} else {
				first[h.Name] = h
			}
			l.hostPairs[h] = hp
			cl.Hosts = append(cl.Hosts, h)
		}
		if len(cl.Hosts) == 0 {
			l.d.Warnf(cp.KeyN, cp.Path, "cluster %s has no hosts; naming it with -c is an error", cp.Key)
		}
		cl.applyMode()
		l.c.Clusters = append(l.c.Clusters, cl)
	}
	return nil
}

// Cluster operating modes (ClusterPlex's TRANSCODE_OPERATING_MODE).
const (
	ModeLocal  = "local"  // only the cluster's local hosts encode
	ModeRemote = "remote" // local hosts are never used
	ModeBoth   = "both"   // remote hosts first; local hosts are fallbacks
)

// applyMode turns the cluster mode into host roles: with "local" the
// remote hosts are disabled, with "remote" the local ones are, and with
// "both" (the default when the cluster has a local host) local hosts become
// fallbacks unless they say `fallback: no` themselves.
func (c *Cluster) applyMode() {
	mode := c.Mode
	if mode == "" {
		mode = ModeBoth
	}
	for _, h := range c.Hosts {
		if !h.MaxLoadSet && c.MaxLoad > 0 {
			h.MaxLoad = c.MaxLoad
		}
		local := h.Type == hosts.Local
		switch {
		case mode == ModeLocal && !local, mode == ModeRemote && local:
			h.Enabled = false
			h.DisabledBy = "mode " + mode
		case mode == ModeBoth && local && !h.FallbackSet:
			h.Fallback = true
		}
	}
}

// hostDiff names what makes a and b different machines, or "".
func hostDiff(a, b *hosts.Def) string {
	switch {
	case a.Type != b.Type:
		return fmt.Sprintf("type (%s vs %s)", a.Type, b.Type)
	case a.Address != b.Address:
		return fmt.Sprintf("ip (%q vs %q)", a.Address, b.Address)
	case a.Port != b.Port:
		return fmt.Sprintf("port (%d vs %d)", a.Port, b.Port)
	case a.User != b.User:
		return fmt.Sprintf("user (%q vs %q)", a.User, b.User)
	}
	return ""
}

// checkHostProfiles checks the profile names hosts refer to. A host's fixed
// `profile:` must exist (every job there would fail otherwise); unknown
// names in `profiles:` only warn, since pytranscoder never read that list
// and old files carry stale names.
func (l *loader) checkHostProfiles() error {
	checked := map[*yaml.Node]bool{} // a YAML alias reuses one definition
	for _, cl := range l.c.Clusters {
		for _, h := range cl.Hosts {
			hp := l.hostPairs[h]
			if checked[hp.Value] {
				continue
			}
			checked[hp.Value] = true
			if h.Profile != "" {
				if _, ok := l.c.Profiles.Get(h.Profile); !ok {
					k, v := findKey(hp.Value, "profile")
					return l.d.Errorf(pos(v, k, hp.KeyN), hp.Path+".profile",
						"host %s uses profile %q, which is not defined%s", h.Name, h.Profile, l.defined(h.Profile))
				}
			}
			if len(h.Profiles) == 0 {
				continue
			}
			k, v := findKey(hp.Value, "profiles")
			for _, name := range h.Profiles {
				if _, ok := l.c.Profiles.Get(name); !ok {
					l.d.Warnf(pos(itemNode(v, name), k, hp.KeyN), hp.Path+".profiles",
						"profile %q is not defined; this host can run none of the jobs that use it%s", name, l.defined(name))
				}
			}
		}
	}
	return nil
}

func (l *loader) defined(name string) string {
	names := l.c.Profiles.Names()
	if len(names) == 0 {
		return " (the file defines no profiles)"
	}
	if hint := textx.Suggest(name, names); hint != "" {
		return "; " + hint
	}
	return " (defined: " + strings.Join(names, ", ") + ")"
}

// findKey returns the key and value nodes of key in mapping n, without
// the warnings a second yamlx.Mapping would repeat. The last one wins.
func findKey(n *yaml.Node, key string) (k, v *yaml.Node) {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			k, v = n.Content[i], n.Content[i+1]
		}
	}
	return k, v
}

// itemNode finds the list item or scalar word holding name, for its position.
func itemNode(n *yaml.Node, name string) *yaml.Node {
	if n == nil || n.Kind != yaml.SequenceNode {
		return n
	}
	for _, c := range n.Content {
		if slices.Contains(strings.Fields(c.Value), name) {
			return c
		}
	}
	return n
}

// pos returns the first non-nil node.
func pos(ns ...*yaml.Node) *yaml.Node {
	for _, n := range ns {
		if n != nil {
			return n
		}
	}
	return nil
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
