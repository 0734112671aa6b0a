package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"clustertx/cluster"
	"clustertx/config"
	"clustertx/hosts"
	"clustertx/media"
)

// hostsCommand is `clustertx hosts [-c CLUSTER] [--json]`: probe every host
// of a cluster (all clusters by default) in parallel and show what each can
// do. Exit 0 when every enabled host is up, 3 when some are down, 1 on a
// config error.
//
// The global flags are persistent (urfave/cli v3): the connection flags
// (-y/--config, --strict, --known-hosts, --ssh-config,
// --accept-new-host-keys, --check-timeout, -v) and -c work both before
// `hosts` and after it (`clustertx -c lab hosts`, `clustertx hosts -c lab`).
func hostsCommand() *cli.Command {
	return &cli.Command{
		Name:      "hosts",
		Usage:     "probe the hosts of a cluster: status, latency, ffmpeg, encoders, cores, load, GPU, free space",
		UsageText: "clustertx [global flags] hosts [-c CLUSTER] [--json] [--known-hosts FILE] [--ssh-config FILE] [--check-timeout D]",
		Description: "Connects to every enabled host of the cluster (of every cluster without -c) at once, " +
			"each within --check-timeout, and prints one row per host. Disabled hosts are listed, not contacted. " +
			"Hardware encoders are those ffmpeg has and that encoded a test frame. " +
			"For each profile with encoder variants (encoders:), the variant the host would use, each tested there to the null muxer, and why earlier ones were passed over. " +
			"Exit codes: 0 all enabled hosts up, 3 some down, 1 config error.",
		OnUsageError: onUsageError,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print a JSON array (one object per host) instead of the table"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() > 0 {
				return usageErr("hosts: unexpected argument %q", c.Args().First())
			}
			return runHosts(ctx, c)
		},
	}
}

// HostRow is one host in `clustertx hosts` output (and its --json form).
type HostRow struct {
	Host     string   `json:"host"`
	Clusters []string `json:"clusters"`
	Type     string   `json:"type"`
	Address  string   `json:"address,omitempty"`
	Status   string   `json:"status"` // up, down, disabled
	Role     string   `json:"role"`   // normal, fallback, disabled
	Window   string   `json:"window"` // when it takes jobs, local time: "always", or its ranges and whether open now
	Reason   string   `json:"reason,omitempty"`

	LatencyMS float64 `json:"latency_ms,omitempty"` // round trip of a trivial command
	ConnectMS float64 `json:"connect_ms,omitempty"` // connect (SSH handshake + auth)
	FFmpeg    string  `json:"ffmpeg,omitempty"`

	HWEncoders []string          `json:"hw_encoders"`
	SWEncoders []string          `json:"sw_encoders"`
	Encoders   []string          `json:"encoders,omitempty"`
	HWUnusable map[string]string `json:"hw_unusable,omitempty"`

	Cores     int       `json:"cores,omitempty"`
	Load      []float64 `json:"load,omitempty"` // 1, 5, 15 minutes
	GPUs      []string  `json:"gpus"`
	WorkDir   string    `json:"working_dir,omitempty"`
	FreeBytes *int64    `json:"free_bytes,omitempty"`
	Notes     []string  `json:"notes,omitempty"`
	// Variants: for each profile with encoder variants, the variant this
	// host uses and why it passed over the earlier ones.
	Variants []cluster.VariantChoice `json:"variants,omitempty"`
	def      *hosts.Def              `json:"-"`
}

func runHosts(ctx context.Context, c *cli.Command) error {
	stdout, stderr := c.Root().Writer, c.Root().ErrWriter
	cfg, err := loadConfig(c, stderr)
	if err != nil {
		return err
	}
	rows, err := hostRows(cfg, c.String("cluster"))
	if err != nil {
		return &ExitError{Code: ExitFatal, Err: err}
	}
	timeout := c.Duration("check-timeout")
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	sshOpts := hosts.SSHOptions{
		KnownHostsFiles:   c.StringSlice("known-hosts"),
		AcceptNewHostKeys: c.Bool("accept-new-host-keys"),
		SSHConfigFile:     c.String("ssh-config"),
		ConnectTimeout:    timeout,
	}
	if c.Bool("verbose") {
		var mu sync.Mutex
		sshOpts.Logf = func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			fmt.Fprintf(stderr, "clustertx: debug: "+format+"\n", args...)
		}
	}
	probeHosts(ctx, cfg, rows, sshOpts, timeout)
	for _, r := range rows { // [] rather than null for scripts
		for _, p := range []*[]string{&r.HWEncoders, &r.SWEncoders, &r.GPUs} {
			if *p == nil {
				*p = []string{}
			}
		}
	}

	if c.Bool("json") {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return err
		}
	} else {
		printHostRows(stdout, rows)
	}
	if ctx.Err() != nil {
		return &ExitError{Code: ExitInterrupted, Err: errors.New("interrupted")}
	}
	down, enabled := 0, 0
	for _, r := range rows {
		if r.Status != "disabled" {
			enabled++
		}
		if r.Status == "down" {
			down++
		}
	}
	if down > 0 {
		return &ExitError{Code: ExitIncomplete, Err: fmt.Errorf("%d of %d enabled hosts down", down, enabled)}
	}
	return nil
}

// hostRows lists the hosts of the cluster (every cluster when name is ""),
// each once, in file order.
func hostRows(cfg *config.Config, name string) ([]*HostRow, error) {
	clusters := cfg.Clusters
	if name != "" {
		cl, ok := cfg.Cluster(name)
		if !ok {
			names := cfg.ClusterNames()
			if len(names) == 0 {
				return nil, fmt.Errorf("no cluster %q: %s defines no clusters", name, cfg.File)
			}
			return nil, fmt.Errorf("no cluster %q in %s (clusters: %s)", name, cfg.File, strings.Join(names, ", "))
		}
		clusters = []*config.Cluster{cl}
	}
	var rows []*HostRow
	byName := map[string]*HostRow{}
	for _, cl := range clusters {
		for _, d := range cl.Hosts {
			if r := byName[d.Name]; r != nil {
				r.Clusters = append(r.Clusters, cl.Name)
				continue
			}
			r := &HostRow{Host: d.Name, Clusters: []string{cl.Name}, Type: string(d.Type), Address: d.Address, def: d}
			if d.Type == hosts.Streaming {
				r.WorkDir = d.WorkingDir
			}
			r.Window = d.Window.Describe(time.Now())
			r.Role = "normal"
			if d.Fallback {
				r.Role = "fallback"
			}
			if !d.Enabled {
				r.Status, r.Role = "disabled", "disabled"
				if d.DisabledBy != "" {
					r.Reason = "disabled by cluster " + d.DisabledBy
				}
			}
			byName[d.Name] = r
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("no hosts defined in %s", cfg.File)
	}
	return rows, nil
}

// probeHosts connects to and inventories every enabled host at once, each
// within timeout.
func probeHosts(ctx context.Context, cfg *config.Config, rows []*HostRow, sshOpts hosts.SSHOptions, timeout time.Duration) {
	var wg sync.WaitGroup
	for _, r := range rows {
		if r.Status == "disabled" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			hctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			probeHost(hctx, cfg, r, sshOpts, timeout)
		}()
	}
	wg.Wait()
}

func probeHost(ctx context.Context, cfg *config.Config, r *HostRow, sshOpts hosts.SSHOptions, timeout time.Duration) {
	r.Status = "down"
	start := time.Now()
	t, err := hosts.Connect(ctx, r.def, sshOpts)
	if err != nil {
		r.Reason = oneLineErr(err)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			r.Reason += fmt.Sprintf(" (no answer within --check-timeout %v)", timeout)
		}
		return
	}
	defer t.Close()
	r.ConnectMS = ms(time.Since(start))
	inv := hosts.Inventory(ctx, r.def, t)
	r.FFmpeg = inv.FFmpeg
	r.LatencyMS = ms(inv.RTT)
	if r.LatencyMS == 0 {
		r.LatencyMS = ms(inv.Latency)
	}
	r.HWEncoders, r.SWEncoders, r.Encoders, r.HWUnusable = inv.HWEncoders, inv.SWEncoders, inv.Encoders, inv.HWUnusable
	r.Cores, r.GPUs, r.Notes = inv.Cores, inv.GPUs, inv.Notes
	if inv.LoadOK {
		r.Load = []float64{inv.Load1, inv.Load5, inv.Load15}
	}
	if inv.Free >= 0 {
		f := inv.Free
		r.FreeBytes = &f
	}
	if inv.Up {
		r.Status = "up"
		// Profiles with encoder variants: the one this host would use,
		// each tested here (test encodes to the null muxer).
		if cfg != nil && inv.Encoders != nil {
			set := hosts.NewEncoderSet(r.def, inv.Encoders)
			r.Variants = cluster.HostVariants(ctx, cluster.Options{Config: cfg}, r.def, t, set)
		}
		return
	}
	r.Reason = inv.Reason
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		r.Reason += fmt.Sprintf(" (no answer within --check-timeout %v)", timeout)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func oneLineErr(err error) string {
	s := strings.TrimSpace(err.Error())
	s = strings.ReplaceAll(s, "\r", "")
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " | ")), " ")
}

// printHostRows writes the host table.
func printHostRows(w io.Writer, rows []*HostRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tTYPE\tROLE\tSTATUS\tLATENCY\tFFMPEG\tHW ENCODERS\tCORES\tLOAD\tGPU\tFREE\tWINDOW\tREASON")
	for _, r := range rows {
		lat, cores, load, free := "-", "-", "-", "-"
		if r.LatencyMS > 0 {
			lat = fmt.Sprintf("%.0fms", r.LatencyMS)
			if r.LatencyMS < 10 {
				lat = fmt.Sprintf("%.1fms", r.LatencyMS)
			}
		}
		if r.Cores > 0 {
			cores = fmt.Sprint(r.Cores)
		}
		if len(r.Load) == 3 {
			load = fmt.Sprintf("%.2f", r.Load[0])
		}
		if r.FreeBytes != nil {
			free = humanBytes(*r.FreeBytes)
		}
		hw := "-"
		if len(r.HWEncoders) > 0 {
			hw = strings.Join(r.HWEncoders, ",")
		} else if r.Status == "up" {
			hw = "none"
		}
		gpu := "-"
		if len(r.GPUs) > 0 {
			gpu = gpuShort(r.GPUs)
		} else if r.Status == "up" {
			gpu = "none"
		}
		ff := r.FFmpeg
		if ff == "" {
			ff = "-"
		}
		reason := r.Reason
		if reason == "" {
			reason = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			r.Host, r.Type, r.Role, r.Status, lat, ff, hw, cores, load, gpu, free, windowCell(r), reason)
	}
	tw.Flush()
	var lines []string
	for _, r := range rows {
		for _, v := range r.Variants {
			lines = append(lines, fmt.Sprintf("  %s, profile %s: %s", r.Host, v.Profile, v.Describe()))
		}
	}
	if len(lines) > 0 {
		fmt.Fprintf(w, "\nencoder variants (the first that works on each host):\n%s\n", strings.Join(lines, "\n"))
	}
}

func windowCell(r *HostRow) string {
	if r.def == nil {
		return "-"
	}
	return r.def.Window.Cell(time.Now())
}

// gpuShort turns nvidia-smi -L lines into "2× NVIDIA GeForce RTX 3060".
func gpuShort(gpus []string) string {
	count := map[string]int{}
	var order []string
	for _, g := range gpus {
		name := g
		if _, after, ok := strings.Cut(g, ": "); ok {
			name = after
		}
		if i := strings.Index(name, " (UUID"); i >= 0 {
			name = name[:i]
		}
		if count[name] == 0 {
			order = append(order, name)
		}
		count[name]++
	}
	sort.Strings(order)
	var parts []string
	for _, n := range order {
		if count[n] > 1 {
			n = fmt.Sprintf("%d× %s", count[n], n)
		}
		parts = append(parts, n)
	}
	return strings.Join(parts, ", ")
}

// humanBytes is media.FormatBytes without the space, so a table cell
// stays one word.
func humanBytes(n int64) string { return strings.ReplaceAll(media.FormatBytes(n), " ", "") }
