package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"clustertx/internal/textx"
	"clustertx/internal/yamlx"
	"clustertx/profiles"
)

// Selection is what the sticky -c, -p/-t and -m flags chose for some of the
// files on the command line.
type Selection struct {
	Cluster string   // "" = the manager alone
	Profile string   // -p or -t; "" = rules decide
	Mixins  []string // -m, in order
}

// ErrUsage marks a CheckSelections error that is the command line's fault
// (exit 2), as opposed to the config's (exit 1).
var ErrUsage = errors.New("usage")

type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == ErrUsage }

// CheckSelections checks the command line's choices against the config
// before anything is probed or run: an unknown -p/-t profile or -m mixin is
// a usage error (errors.Is(err, ErrUsage)), a selected cluster with no
// hosts is a config error. It returns the warnings for deliberate
// differences from pytranscoder in how the mixins will apply (see
// profiles.Set.MixinWarnings), each once, for the -p profile or, without
// -p, for every profile a rule can choose.
func (c *Config) CheckSelections(sels []Selection) ([]*yamlx.Warning, error) {
	var ws []*yamlx.Warning
	seen := map[string]bool{}
	add := func(w *yamlx.Warning) {
		if k := w.Error(); !seen[k] {
			seen[k] = true
			ws = append(ws, w)
		}
	}
	done := map[string]bool{} // a batch of many files has few distinct selections
	for _, s := range sels {
		key := s.Cluster + "\x00" + s.Profile + "\x00" + strings.Join(s.Mixins, ",")
		if done[key] {
			continue
		}
		done[key] = true
		if s.Cluster != "" {
			if cl, ok := c.Cluster(s.Cluster); ok && len(cl.Hosts) == 0 {
				return nil, fmt.Errorf("%s: cluster %s has no hosts: define at least one under config.clusters.%s", cl.Pos, cl.Name, cl.Name)
			}
		}
		var targets []*profiles.Profile
		if s.Profile != "" {
			p, err := c.Profile(s.Profile)
			if err != nil {
				return nil, &usageError{"-p/-t: " + err.Error()}
			}
			targets = append(targets, p)
		}
		for _, m := range s.Mixins {
			if _, ok := c.Profiles.Get(m); !ok {
				msg := fmt.Sprintf("-m: unknown mixin %q (mixins are profiles of the config)", m)
				if hint := textx.Suggest(m, c.Profiles.Names()); hint != "" {
					msg += "; " + hint
				}
				return nil, &usageError{msg}
			}
		}
		if len(s.Mixins) == 0 {
			continue
		}
		if s.Profile == "" {
			for _, r := range c.Rules {
				if p, ok := c.Profiles.Get(r.Profile); ok && !r.Skip && !slices.Contains(targets, p) {
					targets = append(targets, p)
				}
			}
		}
		for _, p := range targets {
			for _, w := range c.Profiles.MixinWarnings(p, s.Mixins, s.Cluster != "") {
				add(w)
			}
		}
	}
	return ws, nil
}
