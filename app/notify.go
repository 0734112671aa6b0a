package app

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/urfave/cli/v3"

	"clustertx/cluster"
	"clustertx/config"
	"clustertx/notify"
)

// newNotifier builds the notifier from config notify: plus --notify (nil
// when there is nowhere to send). Undeliverable notifications are warnings.
func newNotifier(c *cli.Command, cfg *config.Config, stderr io.Writer) (*notify.Notifier, error) {
	urls := append(append([]string(nil), cfg.Notify...), c.StringSlice("notify")...)
	if len(urls) == 0 {
		return nil, nil
	}
	return notify.New(urls, cfg.NotifyEachFailure || c.Bool("notify-each-failure"), func(err error) {
		fmt.Fprintf(stderr, "clustertx: warning: %v\n", err)
	})
}

// failureNotifier sends a notification for each file that fails, as it
// fails (the notifier ignores it unless EachFailure is set).
type failureNotifier struct {
	cluster.NopObserver
	nt  *notify.Notifier
	ctx context.Context
}

func (f failureNotifier) JobFinished(_ cluster.JobInfo, r *cluster.FileResult) {
	if r != nil && r.Outcome == cluster.Failed {
		f.nt.FileFailed(context.WithoutCancel(f.ctx), notify.Failure{Path: r.Path, Host: r.Host, Outcome: string(r.Outcome), Reason: r.Reason})
	}
}

// summary is what the end-of-run notification says about a run.
func summary(rep *cluster.Report, result error, started time.Time, items []cluster.WorkItem) *notify.Summary {
	s := &notify.Summary{Started: started, Finished: time.Now(), ExitCode: Code(result), Counts: map[string]int{}}
	s.Manager, _ = os.Hostname()
	seen := map[string]bool{}
	for _, it := range items {
		if it.Cluster != "" && !seen[it.Cluster] {
			seen[it.Cluster] = true
			s.Cluster = append(s.Cluster, it.Cluster)
		}
	}
	switch s.ExitCode {
	case ExitOK:
		s.Outcome = "ok"
	case ExitIncomplete:
		s.Outcome = "incomplete"
	case ExitWindow:
		s.Outcome = "window closed"
	case ExitInterrupted:
		s.Outcome = "interrupted"
	case ExitLocked:
		s.Outcome = "not started"
	default:
		s.Outcome = "fatal"
	}
	if (s.ExitCode == ExitFatal || s.ExitCode == ExitLocked) && result != nil {
		s.Error = result.Error()
	}
	if rep == nil {
		return s
	}
	for _, f := range rep.Files {
		s.Counts[string(f.Outcome)]++
		switch f.Outcome {
		case cluster.Failed, cluster.NotRun:
			s.Failed = append(s.Failed, notify.Failure{Path: f.Path, Host: f.Host, Outcome: string(f.Outcome), Reason: f.Reason})
		case cluster.Done:
			s.Saved += f.SrcSize - f.OutSize
		}
	}
	return s
}
