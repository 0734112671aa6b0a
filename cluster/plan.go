// Package cluster is the manager: it turns the files a user named into a
// plan (file → rule → profile → eligible hosts), checks every host in
// parallel, runs one worker per host slot pulling from the shared queue,
// and carries each job through its lifecycle: stage, encode, fetch, verify,
// replace, report. It reaches hosts only through hosts.Transport and does
// not know whether a host is SSH or local. For a profile with encoder
// variants it decides which variant each host encodes with (variants.go).
package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"clustertx/config"
	"clustertx/hosts"
	"clustertx/internal/fileid"
	"clustertx/media"
	"clustertx/profiles"
	"clustertx/quality"
	"clustertx/queue"
	"clustertx/split"
)

// WorkItem is one file named by the user, with the sticky options in force
// where it appeared on the command line.
type WorkItem struct {
	Path    string
	Cluster string   // "" = run on the manager (pytranscoder's local mode)
	Profile string   // -p/-t: forced profile or template, bypasses rules
	Mixins  []string // -m
	Source  string   // queue file it came from, "" for the command line
	Line    string   // the line as written in that file
}

// LocalHostName is the host that stands for the manager when no -c is given.
const LocalHostName = "local"

// Job is a planned file: what will run, and where it may run.
type Job struct {
	ID       int
	Item     WorkItem
	Info     *media.Info
	Src      fileid.ID         // the version of the source that was probed
	Rule     string            // matching rule name, "" when forced or none
	Profile  *profiles.Profile // resolved, mixins applied
	Eligible []*hosts.Def      // enabled hosts that may take it
	Excluded map[string]string // host → why it cannot encode this file (missing encoder)
	Work     float64

	Quality *quality.Config // quality: key (rule's, else profile's, --target applied); nil = encode at the profile's level
	qstats  *QualityStats   // the search's result, once it chose a level
	// chain is a searched file's profile with its encoder variants, kept
	// when the search resolves Profile to its pinned variant at the level
	// chosen: a split film's rest is encoded on the manager with no
	// variant's input options.
	chain *profiles.Profile

	Split *split.Plan // split mode: its segments; nil when encoded whole
	// Pinned is the one encoder variant every encode of the file uses,
	// for a profile with variants: a split film's segments (parts from
	// different encoders would not join), a searched file's samples and
	// its final encode (a level found on one encoder means nothing on
	// another). Only hosts whose own choice it is take them. Zero: each
	// host uses its own. PinWhy says why that one.
	Pinned VariantChoice
	PinWhy string
	// hwFamily is the hardware family of a classic profile's encoder
	// (-c:v hevc_nvenc: "nvenc"), for hosts' sessions: caps.
	hwFamily string
	// firstLane is, per host, the lane of the first variant its config
	// allows: the queue's guess until the host's variant is known.
	firstLane map[string]queue.Lane
	SplitNote string // why split mode was asked for but not used
	splitTime time.Duration

	// Set when the job cannot run: skipped by a rule, no rule, probe error…
	Outcome     Outcome
	Reason      string
	fromJournal bool        // the outcome comes from an earlier run
	finish      *finishStep // an interrupted replace the run finishes (finishInterrupted)
}

// Plan is everything a run will do, built before anything is touched.
type Plan struct {
	Jobs  []*Job
	Hosts []*hosts.Def // every enabled host that some job may use, each once
}

// expandPaths turns arguments into files: directories are walked for media
// files with the configured extensions (sorted, hidden entries skipped);
// other paths are kept as given, even if missing (the probe reports them).
// Symbolic links to folders are followed, the arguments themselves too (a
// library at /mnt/media → /volume1/media), with loop detection; links to
// files met in a walk are not taken (replacing one would replace the link,
// not the film). A file reached by two paths (two links to one folder, a
// folder named twice) is taken once, under the first path met.
func expandPaths(items []WorkItem, exts []string) []WorkItem {
	want := map[string]bool{}
	for _, e := range exts {
		want[strings.ToLower(e)] = true
	}
	var out []WorkItem
	seen := map[string]bool{}  // paths
	inode := map[string]bool{} // dev:ino of files already taken
	add := func(it WorkItem) {
		abs, err := filepath.Abs(it.Path)
		if err == nil {
			it.Path = abs
		}
		if seen[it.Path] {
			return
		}
		seen[it.Path] = true
		if id, err := fileid.Of(it.Path); err == nil && id.HasInode() {
			k := fmt.Sprintf("%d:%d", id.Dev, id.Ino)
			if inode[k] {
				return
			}
			inode[k] = true
		}
		out = append(out, it)
	}
	for _, it := range items {
		// A directory is walked even when its name looks like a video
		// ("Film (2024).mkv/" holding the film and its extras).
		st, err := os.Stat(it.Path)
		if err != nil || !st.IsDir() {
			add(it)
			continue
		}
		var files []string
		walkMedia(it.Path, want, map[string]bool{}, &files)
		sort.Strings(files)
		for _, f := range files {
			sub := it
			sub.Path = f
			add(sub)
		}
	}
	return out
}

// walkMedia collects the media files under dir, following symbolic links
// to folders. onPath holds the folders (by device and inode) on the way
// down from the argument, so a link back up is not followed again.
func walkMedia(dir string, want map[string]bool, onPath map[string]bool, files *[]string) {
	key := dir
	if id, err := fileid.Of(dir); err == nil && id.HasInode() {
		key = fmt.Sprintf("%d:%d", id.Dev, id.Ino)
	}
	if onPath[key] {
		return // a loop
	}
	onPath[key] = true
	defer delete(onPath, key)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, e.Name())
		switch typ := e.Type(); {
		case typ.IsDir():
			walkMedia(p, want, onPath, files)
		case typ&os.ModeSymlink != 0:
			// A link to a folder is walked; a link to a file is not
			// taken (replacing it would replace the link, not the film).
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				walkMedia(p, want, onPath, files)
			}
		case typ.IsRegular() && want[strings.ToLower(filepath.Ext(p))]:
			*files = append(*files, p)
		}
	}
}

// hostSet resolves the hosts for a cluster name ("" = the manager as a local
// host serving the global queues). Disabled hosts and hosts excluded by
// --host are left out. A host in several clusters is one host.
type hostSet struct {
	cfg      *config.Config
	only     string
	byName   map[string]*hosts.Def
	order    []*hosts.Def
	local    *hosts.Def
	disabled []*hosts.Def // shown in the host table, never contacted
}

func newHostSet(cfg *config.Config, only string) *hostSet {
	return &hostSet{cfg: cfg, only: only, byName: map[string]*hosts.Def{}}
}

func (hs *hostSet) cluster(name string) ([]*hosts.Def, error) {
	if name == "" {
		if hs.local == nil {
			queues := []hosts.QueueSlots{{Queue: hosts.DefaultQueue, Slots: 1}}
			for _, q := range hs.cfg.Queues {
				if q.Queue != hosts.DefaultQueue {
					queues = append(queues, q)
				}
			}
			hs.local = &hosts.Def{Name: LocalHostName, Type: hosts.Local, Enabled: true,
				FFmpeg: hs.cfg.FFmpeg, Queues: queues, OS: "linux", Pos: "(manager)"}
		}
		return []*hosts.Def{hs.intern(hs.local)}, nil
	}
	c, ok := hs.cfg.Cluster(name)
	if !ok {
		var names []string
		for _, c := range hs.cfg.Clusters {
			names = append(names, c.Name)
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("cluster %q not found: %s defines no clusters", name, hs.cfg.File)
		}
		return nil, fmt.Errorf("cluster %q not found in %s (defined: %s)", name, hs.cfg.File, strings.Join(names, ", "))
	}
	var out []*hosts.Def
	for _, h := range c.Hosts {
		if hs.only != "" && h.Name != hs.only {
			continue
		}
		if !h.Enabled {
			if _, seen := hs.byName[h.Name]; !seen {
				hs.disabled = append(hs.disabled, h)
			}
			continue
		}
		out = append(out, hs.intern(h))
	}
	return out, nil
}

func (hs *hostSet) intern(h *hosts.Def) *hosts.Def {
	if have, ok := hs.byName[h.Name]; ok {
		return have
	}
	hs.byName[h.Name] = h
	hs.order = append(hs.order, h)
	return h
}

// profileFor returns the profile a host uses for a job: the host's fixed
// profile (seed-doc `profile:`) if it has one, else the job's, with the
// job's mixins applied either way.
func profileFor(cfg *config.Config, job *Job, h *hosts.Def) (*profiles.Profile, error) {
	if h.Profile == "" {
		return job.Profile, nil
	}
	p, err := cfg.Profile(h.Profile)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", h.Name, err)
	}
	if len(job.Item.Mixins) > 0 {
		if p, err = cfg.Profiles.WithMixins(p, job.Item.Mixins); err != nil {
			return nil, err
		}
	}
	return p, p.Validate()
}

// eligible reports whether host h may take job: its fixed profile takes
// anything; otherwise it must serve the profile's queue and allow the
// profile; and a mounted host must see the file through its substitutions.
func eligible(job *Job, h *hosts.Def) bool {
	if h.Profile == "" {
		if !h.Serves(job.Profile.Queue) || !h.AllowsProfile(job.Profile.Name) {
			return false
		}
	}
	if h.Type == hosts.Mounted {
		if !h.Covers(job.Item.Path) {
			return false
		}
	}
	return true
}

// workOf estimates a job's cost: media seconds × pixels, or bytes when the
// probe has no video.
func workOf(info *media.Info) float64 {
	if info == nil {
		return 0
	}
	if info.Video != nil && info.Duration > 0 {
		return info.Duration * float64(info.Width()*info.Height())
	}
	return float64(info.Size)
}

// planAll probes every item, then plans them (without the run: dry runs,
// the quality commands).
func (m *manager) planAll(ctx context.Context, items []WorkItem, clusterHosts map[string][]*hosts.Def) *Plan {
	return m.plan(ctx, items, collect(m.probeStream(ctx, items, false, 0), len(items)), clusterHosts)
}

// plan plans every item from its probe.
func (m *manager) plan(ctx context.Context, items []WorkItem, probes []probeResult, clusterHosts map[string][]*hosts.Def) *Plan {
	p := &Plan{}
	seen := map[string]bool{}
	for i, it := range items {
		j := m.planJob(ctx, i, it, probes[i], clusterHosts[it.Cluster])
		p.Jobs = append(p.Jobs, j)
		for _, h := range j.Eligible {
			if !seen[h.Name] {
				seen[h.Name] = true
				p.Hosts = append(p.Hosts, h)
			}
		}
	}
	return p
}

// planJob plans item it (index i of the run's items) from its probe: its
// rule, profile and eligible hosts (those of its cluster, defs), or the
// outcome decided now (skipped, failed, not run).
func (m *manager) planJob(ctx context.Context, i int, it WorkItem, pr probeResult, defs []*hosts.Def) *Job {
	j := &Job{ID: i + 1, Item: it, Info: pr.Info, Src: pr.src}
	if pr.skip != "" {
		j.Outcome, j.Reason, j.fromJournal, j.finish = pr.skip, pr.reason, true, pr.finish
		return j
	}
	if err := pr.Err; err != nil {
		if ctx.Err() != nil { // Ctrl-C while probing: not the file's failure
			j.Outcome, j.Reason = NotRun, "interrupted"
			return j
		}
		j.Outcome, j.Reason = Failed, reasonOf(err)
		return j
	}
	j.Work = workOf(j.Info)
	name := it.Profile
	var rule *profiles.Rule
	if name == "" {
		r := profiles.MatchRules(m.cfg.Rules, j.Info)
		rule = r
		switch {
		case r == nil:
			j.Outcome, j.Reason = Skipped, "no rule matched"
			return j
		case r.Skip:
			j.Rule = r.Name
			j.Outcome, j.Reason = Skipped, fmt.Sprintf("skipped by rule %q", r.Name)
			return j
		}
		j.Rule, name = r.Name, r.Profile
	}
	prof, err := m.cfg.Profile(name)
	if err == nil && len(it.Mixins) > 0 {
		prof, err = m.cfg.Profiles.WithMixins(prof, it.Mixins)
	}
	if err == nil {
		err = prof.Validate()
	}
	if err != nil {
		j.Outcome, j.Reason = Failed, err.Error()
		return j
	}
	j.Profile = prof
	m.notePlanProfile(prof, it.Mixins, j.Info)
	j.hwFamily = m.classicFamily(prof, j.Info)
	if vs := variantsOf(prof); vs != nil {
		j.firstLane = map[string]queue.Lane{}
		for _, h := range defs {
			for _, v := range vs {
				if h.EncoderAllowed(v.Encoder) == "" {
					j.firstLane[h.Name] = queue.Lane{Key: v.Key, Family: v.Family}
					break
				}
			}
		}
	}
	j.Quality = qualityOf(rule, prof, m.opts.QualityTarget)
	if m.opts.QualityOnly && j.Quality == nil {
		j.Outcome, j.Reason = Skipped, fmt.Sprintf("profile %s has no quality: key (give one, or --target METRIC=VALUE)", prof.Name)
		return j
	}
	for _, h := range defs {
		if !eligible(j, h) {
			continue
		}
		why := m.unseen(ctx, j, h)
		if why == "" {
			why = m.lacksEncoder(ctx, j, h)
		}
		if why != "" {
			if j.Excluded == nil {
				j.Excluded = map[string]string{}
			}
			j.Excluded[h.Name] = why
			continue
		}
		j.Eligible = append(j.Eligible, h)
	}
	if len(j.Eligible) == 0 && len(j.Excluded) > 0 {
		var why []string
		for h, r := range j.Excluded {
			why = append(why, h+": "+r)
		}
		sort.Strings(why)
		j.Outcome, j.Reason = NotRun, "no host can take it: "+strings.Join(why, "; ")
	} else if len(j.Eligible) == 0 {
		q := prof.Queue
		if q == "" {
			q = hosts.DefaultQueue
		}
		j.Outcome, j.Reason = NotRun, fmt.Sprintf("no enabled host serves queue %q for profile %s (or can see the file)", q, prof.Name)
	} else {
		m.planSplit(ctx, j, rule)
		if j.Quality != nil {
			m.pinSearch(j) // after the split: a split film's variant stands
		}
	}
	return j
}
