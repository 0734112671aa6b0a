package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/urfave/cli/v3"

	"clustertx/cluster"
	"clustertx/hosts"
	"clustertx/media"
	"clustertx/quality"
)

// qualityCommand is `clustertx quality [-c CLUSTER] [-p PROFILE] [--target
// METRIC=VALUE] [--json] [--dry-run] FILE…`: run only the quality search
// of each file (issue 17) and print the level it would be encoded with. It
// changes no file. Exit 0 when every file was searched (a target that
// cannot be met is a result, not an error), 3 when some could not be, 1
// on a config error.
func qualityCommand() *cli.Command {
	return &cli.Command{
		Name:      "quality",
		Usage:     "search the quality level each file would be encoded with (its profile's or rule's quality: key, or --target); changes nothing",
		UsageText: "clustertx [global flags] quality [-c CLUSTER] [-p PROFILE] [--target METRIC=VALUE] [--json] [--dry-run] FILE...",
		Description: "Cuts samples of each file at keyframes, encodes them at candidate levels of the profile's encoder, " +
			"measures them against the source (ssim, vmaf or xpsnr) and interpolates to the level that just meets the target " +
			"within the size cap. Without -c on this machine; with -c on the cluster's hosts. " +
			"Prints per file the chosen setting, predicted score and size, and the time the search took. " +
			"Exit codes: 0 every file searched, 3 some could not be, 1 config error.",
		OnUsageError: onUsageError,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "profile", Aliases: []string{"p"}, Usage: "search with profile `NAME` (rules are bypassed)"},
			&cli.StringFlag{Name: "target", Usage: "`METRIC=VALUE` (ssim=0.98, vmaf=95, xpsnr=40): replaces the quality: key's metric and target, or gives a profile without one a search with the defaults"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per file (one per line)"},
			&cli.BoolFlag{Name: "dry-run", Usage: "show the search plan (samples, first levels, hosts); encode nothing"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.NArg() == 0 {
				return usageErr("quality: no files given")
			}
			return runQuality(ctx, c)
		},
	}
}

func runQuality(ctx context.Context, c *cli.Command) error {
	stdout, stderr := c.Root().Writer, c.Root().ErrWriter
	var target *cluster.QualityTarget
	if s := c.String("target"); s != "" {
		m, v, err := quality.ParseTarget(s)
		if err != nil {
			return usageErr("--target: %v", err)
		}
		target = &cluster.QualityTarget{Metric: m, Value: v}
	}
	cfg, err := loadConfig(c, stderr)
	if err != nil {
		return err
	}
	var items []cluster.WorkItem
	for _, f := range c.Args().Slice() {
		items = append(items, cluster.WorkItem{Path: f, Cluster: c.String("cluster"), Profile: c.String("profile")})
	}
	if err := checkSelections(cfg, items, c.Bool("quiet"), stderr); err != nil {
		return err
	}
	log := stderr
	if c.Bool("quiet") {
		log = io.Discard
	}
	opts := cluster.Options{Config: cfg, Verbose: c.Bool("verbose"), DryRun: c.Bool("dry-run"), Out: stdout, Log: log,
		CheckTimeout: c.Duration("check-timeout")}
	sshOpts := hosts.SSHOptions{
		KnownHostsFiles:   c.StringSlice("known-hosts"),
		AcceptNewHostKeys: c.Bool("accept-new-host-keys") && !c.Bool("dry-run"),
		SSHConfigFile:     c.String("ssh-config"),
		ConnectTimeout:    c.Duration("check-timeout"),
	}
	opts.Connect = func(ctx context.Context, def *hosts.Def) (hosts.Transport, error) {
		return hosts.Connect(ctx, def, sshOpts)
	}
	if opts.DryRun {
		if err := cluster.PlanQuality(ctx, opts, items, target, stdout); err != nil {
			return &ExitError{Code: ExitFatal, Err: err}
		}
		return nil
	}
	var res []*cluster.QualityResult
	if c.String("cluster") != "" {
		res, err = cluster.SearchQualityCluster(ctx, opts, items, target)
	} else {
		res, err = cluster.SearchQuality(ctx, opts, items, target)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return &ExitError{Code: ExitFatal, Err: err}
	}
	if c.Bool("json") {
		enc := json.NewEncoder(stdout)
		for _, r := range res {
			if werr := enc.Encode(r); werr != nil {
				return werr
			}
		}
	} else {
		printQuality(stdout, res)
	}
	if ctx.Err() != nil {
		return &ExitError{Code: ExitInterrupted, Err: errors.New("interrupted")}
	}
	failed := 0
	for _, r := range res {
		if r.Error != "" {
			failed++
			fmt.Fprintf(stderr, "clustertx: error: %s: %s\n", r.File, r.Error)
		}
	}
	if failed > 0 {
		return &ExitError{Code: ExitIncomplete, Err: fmt.Errorf("%d of %d files could not be searched", failed, len(res))}
	}
	return nil
}

// printQuality prints one row per file, and the reason under a file whose
// target cannot be met.
func printQuality(w io.Writer, res []*cluster.QualityResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tENCODER\tSETTING\tTARGET\tPREDICTED\tSIZE\tSAMPLE ENCODES\tTIME")
	for _, r := range res {
		if r.Error != "" {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\n", r.File)
			continue
		}
		m := quality.Metric(r.Metric)
		tgt := m.Label() + " " + quality.FormatScore(m, r.Target)
		setting, pred, size := "keep original", "-", "-"
		if r.Value != nil {
			setting = r.Option + " " + quality.FormatLevel(*r.Value)
			pred = quality.FormatScore(m, r.PredictedScore)
			size = fmt.Sprintf("%s (%.0f%%)", media.FormatBytes(r.PredictedBytes), r.PredictedPct)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%.1fs\n", r.File, r.Encoder, setting, tgt, pred, size, r.SampleEncodes, r.Seconds)
	}
	tw.Flush()
	for _, r := range res {
		if r.Error == "" && r.Value == nil {
			fmt.Fprintf(w, "%s: %s\n", r.File, r.Reason)
		}
	}
}
