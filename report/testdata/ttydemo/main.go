// Command ttydemo drives a report.Console with made-up events for about
// two seconds, writing to stderr. report's TestTerminalSession runs it in a
// tmux pane and reads the screen back; run it by hand to see the display:
//
//	go run ./report/testdata/ttydemo
package main

import (
	"fmt"
	"os"
	"time"

	"clustertx/cluster"
	"clustertx/hosts"
	"clustertx/progress"
	"clustertx/report"
)

func main() {
	c := report.NewConsole(os.Stderr, report.ConsoleOptions{})
	if !c.TTY() {
		fmt.Fprintln(os.Stderr, "ttydemo: stderr is not a terminal")
	}
	jobs := []cluster.JobInfo{
		{ID: 0, Path: "/media/films/film.mkv", Host: "nas", Slot: 0, Profile: "hevc", Duration: 600, SrcSize: 1 << 30},
		{ID: 1, Path: "/media/films/other.mkv", Host: "nas", Slot: 1, Profile: "hevc", Duration: 300, SrcSize: 1 << 29},
		{ID: 2, Path: "/media/shows/episode01.mkv", Host: "gpu2", Slot: 0, Profile: "nvenc", Duration: 900, SrcSize: 1 << 30},
	}
	var total float64
	for _, j := range jobs {
		total += j.Duration
	}
	c.HostChecked(hosts.CheckResult{Host: "nas", Up: true})
	c.HostChecked(hosts.CheckResult{Host: "gpu2", Up: true})
	c.SetFiles(len(jobs))
	c.SetTotal(total)
	for _, j := range jobs {
		c.JobStarted(j)
	}
	const steps = 40 // × 50 ms = 2 s
	for i := 1; i <= steps; i++ {
		time.Sleep(50 * time.Millisecond)
		for k, j := range jobs {
			f := min(1, float64(i)/float64(steps-10*k)) // the last job finishes first
			if f >= 1 {
				continue
			}
			c.JobProgress(j, progress.Progress{OutTime: f * j.Duration, Duration: j.Duration,
				Percent: 100 * f, Speed: 2.5 + float64(k), Size: int64(f * float64(j.SrcSize) / 3)})
		}
		for k, j := range jobs {
			if i == steps-10*k {
				c.JobFinished(j, &cluster.FileResult{Path: j.Path, Host: j.Host, Profile: j.Profile,
					Outcome: cluster.Done, SrcSize: j.SrcSize, OutSize: j.SrcSize / 3,
					Duration: j.Duration, Elapsed: time.Duration(i) * 50 * time.Millisecond, Attempts: 1})
			}
		}
	}
	c.RunFinished(&cluster.Report{})
	c.Close()
	fmt.Println("ttydemo: finished")
}
