package cluster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"clustertx/hosts"
	"clustertx/internal/encoder"
	"clustertx/journal"
	"clustertx/media"
	"clustertx/profiles"
	"clustertx/queue"
)

// Encoder variants (issue 16). A profile may list an ordered chain of
// encoder variants (hevc_nvenc, hevc_qsv, libx265…); each host encodes with
// the first variant that works there, and this file decides which one:
//
//   - a variant works on a host when the host's config allows its encoder
//     (encoders:, exclude_encoders:), the host's ffmpeg lists it, and a
//     short test encode with the variant's real input and video options
//     (hosts.TestEncode, to the null muxer) succeeds there;
//   - each (host, variant) is tested once: the result is kept for the run
//     and in the journal (journal.EncoderTest), which answers again only
//     for the same ffmpeg version; later variants of the chain are tested
//     only when the earlier ones fail;
//   - a host where no variant works is not eligible for the profile's
//     files (plan), and --dry-run and `clustertx hosts` say why each
//     variant before the chosen one was passed over;
//   - at run time a hardware variant that fails with a driver's error
//     (driverFailure) retries the file on the same host with its next
//     working variant, or elsewhere; a host whose variant failed so twice
//     in a run is demoted to its next variant for the rest of the run;
//   - a split film uses one variant for all its segments, and a searched
//     file (quality:) one for its samples and its final encode
//     (variantByCapacity, Job.Pinned): only hosts whose chosen variant it
//     is take them.
//
// The queue sees the variants as lanes (queue.Lane): its speed estimates
// are per host and variant, and a host's sessions: caps the copies of a
// hardware family it runs at once.

// variantsOf lists p's encoder variants in chain order (profiles.Variant);
// nil for a classic single-encoder profile.
func variantsOf(p *profiles.Profile) []profiles.Variant { return p.Variants() }

// forVariant is p with variant key's input and video sections
// (profiles.ForVariant); p itself for key "" (a classic profile) and for
// a profile already resolved to that variant.
func forVariant(p *profiles.Profile, key string) (*profiles.Profile, error) {
	if key == "" || variantsOf(p) == nil && p.VariantKey == key { // already resolved (a searched file at its level)
		return p, nil
	}
	return p.ForVariant(key)
}

// sharedPlan is p's argument plan without choosing a variant: for a
// profile with encoder variants, its argv with no video section (maps,
// audio, subtitles, container: what every variant shares) and the
// profile's own input options, without any variant's.
func (m *manager) sharedPlan(p *profiles.Profile, info *media.Info) (*profiles.ArgPlan, error) {
	if variantsOf(p) == nil {
		return p.Plan(info, m.automap(p))
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	in, out := p.Args(info, m.automap(p))
	return &profiles.ArgPlan{In: in, Out: out}, nil
}

// VariantChoice is, for one host and one profile with encoder variants,
// the variant the host uses and why each earlier one was passed over.
type VariantChoice struct {
	Host    string       `json:"host,omitempty"`
	Profile string       `json:"profile"`
	Key     string       `json:"variant"` // "" when none works
	Encoder string       `json:"encoder,omitempty"`
	Family  string       `json:"family,omitempty"` // hardware family, "" for software
	Passed  []PassedOver `json:"passed_over,omitempty"`
	// Unknown: the host could not be asked (down at plan time); its
	// variant is chosen when it joins.
	Unknown bool `json:"unknown,omitempty"`
	// Retry: a test could not run (the connection failed), so a later
	// look may choose differently; not remembered.
	retry bool
}

// PassedOver is a variant before the chosen one, and why it was not used.
type PassedOver struct {
	Key     string `json:"variant"`
	Encoder string `json:"encoder"`
	Why     string `json:"why"`
}

// Describe is the choice on one line: "hevc_qsv (passed over: hevc_nvenc:
// not in ffmpeg -encoders)".
func (c VariantChoice) Describe() string {
	s := c.Key
	switch {
	case c.Unknown:
		return "not known yet (the host is down; chosen when it joins)"
	case s == "":
		s = "none works"
	}
	if len(c.Passed) > 0 {
		var why []string
		for _, p := range c.Passed {
			why = append(why, p.Key+": "+p.Why)
		}
		s += " (passed over " + strings.Join(why, "; ") + ")"
	}
	return s
}

// variantState is the run's knowledge of variants, shared by the plan,
// the workers and the queue's lanes.
type variantState struct {
	mu       sync.Mutex
	ffmpeg   map[string]string        // host → its ffmpeg version (the check's)
	tests    map[string]*variantTest  // host \x00 signature → the test
	chosen   map[string]VariantChoice // host \x00 profile identity → the standing choice
	failures map[string]int           // host \x00 variant → driver failures at run time
	demoted  map[string]string        // host \x00 variant → why it is out for the rest of the run
}

type variantTest struct {
	once sync.Once
	why  string    // "" works
	soft bool      // the test could not run: not in the journal, tried again after softRetry
	at   time.Time // when it ran
}

// softRetry is how long a test that could not run (a connection failure, a
// host that did not answer) stands before it is tried again: long enough
// that planning many files does not wait on a dead host once per file.
const softRetry = time.Minute

func (m *manager) vars() *variantState {
	m.varOnce.Do(func() {
		m.variants = &variantState{ffmpeg: map[string]string{}, tests: map[string]*variantTest{},
			chosen: map[string]VariantChoice{}, failures: map[string]int{}, demoted: map[string]string{}}
	})
	return m.variants
}

// setFFmpegVersion notes host's ffmpeg version from its check: the journal's
// test results hold only for that version.
func (m *manager) setFFmpegVersion(host, v string) {
	vs := m.vars()
	vs.mu.Lock()
	vs.ffmpeg[host] = v
	vs.mu.Unlock()
}

// profileIdent names a profile with its mixins: the choice of a variant
// depends on nothing else (the variant options do not depend on the file).
func profileIdent(name string, mixins []string) string {
	return name + "\x00" + strings.Join(mixins, ",")
}

// variantArgs are what a variant's test encode runs: the variant
// profile's input options and the output options that shape the video
// (calibrationArgs), from its argument plan for info (nil: a plain file
// with one video stream).
func (m *manager) variantArgs(p *profiles.Profile, key string, info *media.Info) (in, video []string, err error) {
	vp, err := forVariant(p, key)
	if err != nil {
		return nil, nil, err
	}
	if info == nil {
		info = &media.Info{}
	}
	plan, err := vp.Plan(info, false)
	if err != nil {
		return nil, nil, err
	}
	return plan.In, calibrationArgs(plan.Out), nil
}

// variantSig is a variant's identity for its test: encoder, input and
// video arguments.
func variantSig(enc string, in, video []string) string {
	return enc + " | " + showArgv(in) + " | " + showArgv(video)
}

// chooseVariant picks the variant host h uses for profile prof (the profile
// h runs for the file: the job's, or h's fixed one), skipping the variants
// in skip (those this copy already failed with). t is h's connection (nil:
// the host is down, and the choice is Unknown). Without skip the choice is
// remembered for the run (the lanes, --dry-run and the summary read it).
func (m *manager) chooseVariant(ctx context.Context, h *hosts.Def, t hosts.Transport, prof *profiles.Profile, mixins []string, info *media.Info, skip []string) VariantChoice {
	specs := variantsOf(prof)
	c := VariantChoice{Host: h.Name, Profile: prof.Name}
	if specs == nil {
		return c
	}
	vs := m.vars()
	ident := h.Name + "\x00" + profileIdent(prof.Name, mixins)
	if len(skip) == 0 {
		vs.mu.Lock()
		have, ok := vs.chosen[ident]
		vs.mu.Unlock()
		if ok {
			return have
		}
	}
	if t == nil {
		c.Unknown = true
		return c
	}
	m.encMu.Lock()
	set := m.encoders[h.Name]
	m.encMu.Unlock()
	for _, v := range specs {
		pass := func(why string) { c.Passed = append(c.Passed, PassedOver{Key: v.Key, Encoder: v.Encoder, Why: why}) }
		if containsStr(skip, v.Key) {
			pass("failed on this host for this file just now")
			continue
		}
		vs.mu.Lock()
		why := vs.demoted[h.Name+"\x00"+v.Key]
		vs.mu.Unlock()
		if why != "" {
			pass(why)
			continue
		}
		if why := h.EncoderAllowed(v.Encoder); why != "" {
			pass(why)
			continue
		}
		if set != nil && !set.Listed(v.Encoder) {
			pass("not in ffmpeg -encoders")
			continue
		}
		in, video, err := m.variantArgs(prof, v.Key, info)
		if err != nil {
			pass(err.Error())
			continue
		}
		why, soft := m.testVariant(ctx, h, t, v.Encoder, in, video)
		if soft {
			c.retry = true
		}
		if why != "" {
			pass(why)
			continue
		}
		c.Key, c.Encoder, c.Family = v.Key, v.Encoder, v.Family
		break
	}
	if len(skip) == 0 && !c.retry {
		vs.mu.Lock()
		vs.chosen[ident] = c
		vs.mu.Unlock()
		if q := m.q.Load(); q != nil { // chosen during the run: new lanes
			q.LanesChanged(h.Name)
		}
	}
	return c
}

// standingVariant is the remembered choice of host for a profile (no test
// runs): for the queue's lanes and --dry-run.
func (m *manager) standingVariant(host, profile string, mixins []string) (VariantChoice, bool) {
	vs := m.vars()
	vs.mu.Lock()
	defer vs.mu.Unlock()
	c, ok := vs.chosen[host+"\x00"+profileIdent(profile, mixins)]
	return c, ok
}

// testVariant runs (once per run) the test encode of a variant on host h,
// or takes its result from the journal when it ran on the same ffmpeg
// version. why is "" when it works; soft is true when the test could not
// run at all (the host's fault, not the variant's).
func (m *manager) testVariant(ctx context.Context, h *hosts.Def, t hosts.Transport, enc string, in, video []string) (why string, soft bool) {
	vs := m.vars()
	sig := variantSig(enc, in, video)
	key := h.Name + "\x00" + sig
	vs.mu.Lock()
	vt := vs.tests[key]
	if vt == nil || vt.soft && time.Since(vt.at) > softRetry {
		vt = &variantTest{}
		vs.tests[key] = vt
	}
	version := vs.ffmpeg[h.Name]
	vs.mu.Unlock()
	vt.once.Do(func() {
		why, soft := m.runVariantTest(ctx, h, t, enc, sig, version, in, video)
		vs.mu.Lock() // soft and at are read under it (above)
		vt.why, vt.soft, vt.at = why, soft, time.Now()
		vs.mu.Unlock()
	})
	return vt.why, vt.soft
}

// runVariantTest answers from the journal, or runs the test encode and
// records its result there (not in --dry-run, and not a test that could
// not run).
func (m *manager) runVariantTest(ctx context.Context, h *hosts.Def, t hosts.Transport, enc, sig, version string, in, video []string) (why string, soft bool) {
	j := m.opts.Journal
	if j != nil {
		if r, ok := j.EncoderTest(h.Name, sig, version, time.Now()); ok {
			if !r.OK {
				why = fmt.Sprintf("cached: failed on ffmpeg %s at %s: %s", r.FFmpeg, r.Time.Local().Format("2006-01-02 15:04"), r.Reason)
			}
			return why, false
		}
	}
	err := hosts.TestEncode(ctx, h, t, in, video)
	var te *hosts.TestEncodeError
	switch {
	case err == nil:
	case errors.As(err, &te):
		why = "test encode failed: " + te.Line
	default:
		return "test encode could not run: " + oneLine(err), true
	}
	if j != nil && !m.opts.DryRun && version != "" {
		if err := j.RecordEncoderTest(journalTest(h.Name, sig, enc, version, te)); err != nil {
			m.logf("warning: journal: %v", err)
		}
	}
	return why, false
}

// variantProfile resolves the variant host h uses for a whole file: the
// profile to build its command from and the variant's key ("" for a
// classic profile). skip are the variants this copy already failed with.
// A host where no variant works gets a *variantError (the file goes to
// another host without counting an attempt).
func (m *manager) variantProfile(ctx context.Context, h *hosts.Def, t hosts.Transport, job *Job, prof *profiles.Profile, skip []string) (*profiles.Profile, VariantChoice, error) {
	c := m.chooseVariant(ctx, h, t, prof, job.Item.Mixins, job.Info, skip)
	if variantsOf(prof) == nil {
		return prof, c, nil
	}
	if c.Key == "" {
		return nil, c, &variantError{host: h.Name, msg: "no encoder variant of profile " + prof.Name + " works here: " + c.Describe()}
	}
	vp, err := forVariant(prof, c.Key)
	return vp, c, err
}

// variantError is a host that cannot run a file with any variant left (or
// a split film's variant): the file goes to another host, and the attempt
// counts only when no other host is left to try.
type variantError struct {
	host string
	msg  string
	err  error // the encode's error, when a variant failed at run time
}

func (e *variantError) Error() string { return e.msg }
func (e *variantError) Unwrap() error { return e.err }

// driverFailures are what ffmpeg says when a hardware encoder's device or
// driver fails (not the file): NVENC, QSV/oneVPL, VAAPI, and device setup.
var driverFailures = []string{
	"No NVENC capable devices found",
	"Cannot load libcuda",
	"Cannot load libnvidia-encode",
	"OpenEncodeSessionEx failed",
	"CUDA_ERROR_OUT_OF_MEMORY",
	"MFX session", // "Error creating a MFX session", "Error initializing an internal MFX session"
	"Failed to initialise VAAPI",
	"No VA display found",
	"Device creation failed",
	"incompatible client key",
	"Error while opening encoder",
}

// driverFailure returns the stderr line that shows a hardware variant's
// driver failing, or "" when err is something else (or the variant is
// software: its failures are the file's). A specific line wins over
// "Error while opening encoder", which any hardware failure prints too.
func driverFailure(err error, family string) string {
	if family == "" || err == nil {
		return ""
	}
	var xe *hosts.ExitError
	if !errors.As(err, &xe) {
		return ""
	}
	generic := ""
	for _, l := range strings.Split(strings.ReplaceAll(xe.Stderr, " | ", "\n"), "\n") {
		l = hosts.ErrorLine(l)
		for _, p := range driverFailures {
			if !strings.Contains(l, p) && !(family == "nvenc" && strings.Contains(l, "out of memory")) {
				continue
			}
			if p != "Error while opening encoder" {
				return l
			}
			if generic == "" {
				generic = l
			}
		}
	}
	return generic
}

// demoteAfter is how many driver failures of one variant on one host in a
// run demote the host to its next variant for the rest of the run.
const demoteAfter = 2

// variantFailed handles a copy's failure when it ran a hardware variant
// and the driver failed. It counts the failure (demoting the host's variant
// at demoteAfter, with a warning and new lanes for the queue) and reports
// whether the copy should run again on this host with its next working
// variant (ji.skip has the failed one). Otherwise err becomes a
// *variantError, so the item goes to another host (for a split film's
// segment, one with the same variant).
func (w *worker) variantFailed(ctx context.Context, it *queue.Item, t task, ji *JobInfo, err *error) (again bool) {
	if ji.Variant == "" {
		return false
	}
	line := driverFailure(*err, ji.family)
	if line == "" {
		return false
	}
	host, key := w.def.Name, ji.Variant
	w.m.logf("warning: host %s: encoder variant %s failed on %s: %s", host, key, t.label(), line)
	vs := w.m.vars()
	vs.mu.Lock()
	vs.failures[host+"\x00"+key]++
	n := vs.failures[host+"\x00"+key]
	demote := n == demoteAfter
	if demote {
		vs.demoted[host+"\x00"+key] = fmt.Sprintf("failed %d times during this run (last: %s)", n, line)
		for k, c := range vs.chosen { // chosen again below, with the demotion
			if c.Host == host && c.Key == key {
				delete(vs.chosen, k)
			}
		}
	}
	vs.mu.Unlock()
	if demote {
		w.m.rechooseHost(ctx, w.def, w.t)
		w.m.logf("warning: host %s: encoder variant %s failed %d times in this run; the host uses its next variant for the rest of the run", host, key, n)
		w.q.LanesChanged(host)
	}
	*err = &variantError{host: host, err: *err, msg: fmt.Sprintf("encoder variant %s failed on host %s: %s", key, host, line)}
	ft, ok := t.(*fileTask)
	if !ok || ft.Pinned.Key != "" {
		return false // a segment, a sample, a searched file keep their variant: another host
	}
	ji.skip = append(ji.skip, key)
	prof, perr := profileFor(w.m.cfg, ft.job(), w.def)
	if perr != nil {
		return false
	}
	next := w.m.chooseVariant(ctx, w.def, w.t, prof, ft.Item.Mixins, ft.Info, ji.skip)
	if next.Key == "" {
		return false
	}
	w.m.logf("host %s: retrying %s with encoder variant %s", host, t.label(), next.Key)
	return true
}

// pinnedOn sets a copy's variant to v, the one its file is pinned to
// (Job.Pinned), and refuses host h when h's own variant is no longer v
// (demoted during the run): the copy goes to another host with v.
func (m *manager) pinnedOn(h *hosts.Def, v VariantChoice, ji *JobInfo, what string) error {
	if v.Key == "" {
		return nil
	}
	ji.Variant, ji.family = v.Key, v.Family
	vs := m.vars()
	vs.mu.Lock()
	why := vs.demoted[h.Name+"\x00"+v.Key]
	vs.mu.Unlock()
	if why != "" {
		return &variantError{host: h.Name, msg: fmt.Sprintf("host %s cannot take %s encoded with variant %s any more: it %s", h.Name, what, v.Key, why)}
	}
	return nil
}

// rechooseHost chooses again, after a demotion, the variants of every
// profile the host had chosen one for (the lanes read these choices).
func (m *manager) rechooseHost(ctx context.Context, h *hosts.Def, t hosts.Transport) {
	m.profMu.Lock()
	seen := append([]planProfile(nil), m.planProfiles...)
	m.profMu.Unlock()
	for _, pp := range seen {
		m.chooseVariant(ctx, h, t, pp.prof, pp.mixins, pp.info, nil)
	}
}

// planProfile is a profile (with its mixins) some planned file uses, for
// rechooseHost.
type planProfile struct {
	prof   *profiles.Profile
	mixins []string
	info   *media.Info
}

// notePlanProfile remembers a profile with variants that a planned file uses.
func (m *manager) notePlanProfile(prof *profiles.Profile, mixins []string, info *media.Info) {
	if variantsOf(prof) == nil {
		return
	}
	m.profMu.Lock()
	defer m.profMu.Unlock()
	id := profileIdent(prof.Name, mixins)
	for _, pp := range m.planProfiles {
		if profileIdent(pp.prof.Name, pp.mixins) == id {
			return
		}
	}
	m.planProfiles = append(m.planProfiles, planProfile{prof, mixins, info})
}

// lane is the queue's lane of item it on host: the variant the host uses
// for it and that variant's hardware family (Lane{} for classic profiles,
// and while the host's choice is unknown). It reads remembered choices
// only: the queue calls it under its lock.
func (m *manager) lane(it *queue.Item, host string) queue.Lane {
	switch pl := it.Payload.(type) {
	case *segment:
		return pinnedLane(pl.f.job)
	case *sampleItem:
		return pinnedLane(pl.rs.job)
	case *Job:
		if v := pl.Pinned; v.Key != "" { // a searched file, at its level
			return queue.Lane{Key: v.Key, Family: v.Family}
		}
		name := pl.Profile.Name
		if h := m.hostDefs[host]; h != nil && h.Profile != "" {
			name = h.Profile
		}
		if c, ok := m.standingVariant(host, name, pl.Item.Mixins); ok {
			if c.Key != "" {
				return queue.Lane{Key: c.Key, Family: c.Family}
			}
		} else if l, ok := pl.firstLane[host]; ok && name == pl.Profile.Name {
			// Not known yet (the host joined late): the first variant its
			// config allows, so that its session cap holds from the start.
			return l
		}
		return queue.Lane{Family: pl.hwFamily}
	}
	return queue.Lane{}
}

// pinnedLane is the lane of a copy of job's that runs its pinned variant
// (a split film's segment, a sample), or, for a classic profile, the
// family of its hardware encoder: a sample of an NVENC profile takes an
// NVENC session like the file does.
func pinnedLane(job *Job) queue.Lane {
	if v := job.Pinned; v.Key != "" {
		return queue.Lane{Key: v.Key, Family: v.Family}
	}
	return queue.Lane{Family: job.hwFamily}
}

// classicFamily is the hardware family of the first hardware encoder a
// profile without variants asks for ("" none), so that hosts' sessions:
// caps apply to it too.
func (m *manager) classicFamily(p *profiles.Profile, info *media.Info) string {
	if variantsOf(p) != nil {
		return ""
	}
	plan, err := p.Plan(info, m.automap(p))
	if err != nil {
		return ""
	}
	for _, enc := range encoder.In(plan.Out) {
		if f := familyOf(enc); f != "" {
			return f
		}
	}
	return ""
}

// laneSpeedKey is the journal's profile key for a host's speed with one
// encoder variant, beside speedKey (the host's default lane).
func laneSpeedKey(variant string) string { return "variant:" + variant }

// variantByCapacity picks the one variant of job j's profile that all of
// its encodes use (Job.Pinned: a split film's segments, a searched file's
// samples and final encode): of the variants the hosts in eligible chose,
// the one with the most expected capacity (Σ slots × speed of the hosts
// that chose it: the journal's speed of that host with that variant, else
// of the host, else its weight, else 1080p real time), the earlier in the
// chain on a tie. Hosts whose choice is not known (down at plan time) are
// left out. It returns the variant, the hosts that chose it, and the
// capacities it compared ("hevc_nvenc on gpu1; libx265 on cpu1, cpu2"), or
// the zero choice when no host has a working variant.
func (m *manager) variantByCapacity(j *Job, eligible []*hosts.Def) (VariantChoice, []*hosts.Def, string) {
	known := m.rememberedSpeeds()
	capacity := map[string]float64{}
	byKey := map[string][]*hosts.Def{}
	choice := map[string]VariantChoice{}
	for _, h := range eligible {
		c, ok := m.standingVariant(h.Name, j.Profile.Name, j.Item.Mixins)
		if !ok || c.Key == "" {
			continue
		}
		speed := known[h.Name][laneSpeedKey(c.Key)]
		if speed <= 0 {
			speed, _ = prior(h, known[h.Name][speedKey], 0)
		}
		capacity[c.Key] += float64(h.SlotCount()) * speed
		byKey[c.Key] = append(byKey[c.Key], h)
		choice[c.Key] = VariantChoice{Profile: c.Profile, Key: c.Key, Encoder: c.Encoder, Family: c.Family}
	}
	best := ""
	for _, v := range variantsOf(j.Profile) {
		if _, ok := capacity[v.Key]; ok && (best == "" || capacity[v.Key] > capacity[best]) {
			best = v.Key
		}
	}
	if best == "" {
		return VariantChoice{}, nil, ""
	}
	var parts []string
	keys := make([]string, 0, len(capacity))
	for k := range capacity {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s on %s", k, hostNames(byKey[k])))
	}
	return choice[best], byKey[best], strings.Join(parts, "; ")
}

// HostVariants chooses, for `clustertx hosts`, the variant host def would
// use for every profile of cfg that has variants, running the test
// encodes on t (nothing is written; no journal). version is the host's
// ffmpeg version, encoders its `ffmpeg -encoders` (nil: not known).
func HostVariants(ctx context.Context, opts Options, def *hosts.Def, t hosts.Transport, set *hosts.EncoderSet) []VariantChoice {
	opts.defaults()
	opts.DryRun = true
	m := newManager(opts)
	if set != nil {
		m.encoders = map[string]*hosts.EncoderSet{def.Name: set}
	}
	var out []VariantChoice
	for _, name := range m.cfg.Profiles.Names() {
		p, ok := m.cfg.Profiles.Get(name)
		if !ok || variantsOf(p) == nil {
			continue
		}
		if def.Profile != "" && def.Profile != name || !def.AllowsProfile(name) {
			continue
		}
		out = append(out, m.chooseVariant(ctx, def, t, p, nil, nil, nil))
	}
	return out
}

// journalTest is the journal record of a test that ran (te nil: it worked).
func journalTest(host, sig, enc, version string, te *hosts.TestEncodeError) journal.EncoderTest {
	r := journal.EncoderTest{Host: host, Sig: sig, Encoder: enc, FFmpeg: version, OK: te == nil, Time: time.Now()}
	if te != nil {
		r.Reason = te.Line
	}
	return r
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// familyOf is an encoder's hardware family ("" software).
func familyOf(enc string) string { return encoder.Family(enc) }
