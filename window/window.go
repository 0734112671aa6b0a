// Package window is time-of-day windows in local time: when a host may run
// encodes ("01:00-07:00", "23:00-07:00" across midnight, or several ranges)
// and the run's --until. It is pure: it parses and answers "open at t, and
// until when?"; the queue decides what a host takes inside a window and the
// cluster stops what runs when one closes.
package window

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// day is a day in minutes.
const day = 24 * 60

// Range is one daily range, in minutes after local midnight: [Start, End).
// End <= Start crosses midnight (23:00-07:00).
type Range struct{ Start, End int }

// Window is a set of daily ranges in local time. The zero Window is always
// open.
type Window []Range

// Always reports whether w puts no limit on time.
func (w Window) Always() bool { return len(w) == 0 }

// ParseClock parses "HH:MM" (24-hour, "24:00" allowed as the end of a day)
// into minutes after midnight.
func ParseClock(s string) (int, error) {
	s = strings.TrimSpace(s)
	hh, mm, ok := strings.Cut(s, ":")
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	if !ok || err1 != nil || err2 != nil || len(mm) != 2 || h < 0 || m < 0 || m > 59 || h > 24 || h == 24 && m != 0 {
		return 0, fmt.Errorf("%q is not a time of day HH:MM (24-hour, e.g. 07:00)", s)
	}
	return h*60 + m, nil
}

// ParseRange parses "HH:MM-HH:MM".
func ParseRange(s string) (Range, error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return Range{}, fmt.Errorf("%q is not a range HH:MM-HH:MM (e.g. 01:00-07:00, or 23:00-07:00 across midnight)", strings.TrimSpace(s))
	}
	start, err := ParseClock(a)
	if err != nil {
		return Range{}, err
	}
	end, err := ParseClock(b)
	if err != nil {
		return Range{}, err
	}
	if start == end {
		return Range{}, fmt.Errorf("%q is empty: start and end are the same time", strings.TrimSpace(s))
	}
	return Range{start % day, end}, nil
}

// Parse parses ranges separated by commas: "01:00-07:00" or
// "00:00-07:00, 22:00-24:00".
func Parse(s string) (Window, error) {
	var w Window
	for _, part := range strings.Split(s, ",") {
		r, err := ParseRange(part)
		if err != nil {
			return nil, err
		}
		w = append(w, r)
	}
	return w, nil
}

func clock(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }

// String is w as written in transcode.yml ("always" for no window).
func (w Window) String() string {
	if len(w) == 0 {
		return "always"
	}
	parts := make([]string, len(w))
	for i, r := range w {
		parts[i] = clock(r.Start) + "-" + clock(r.End)
	}
	return strings.Join(parts, ", ")
}

// intervals returns the absolute open intervals of w that touch the three
// local days around t, merged and sorted.
func (w Window) intervals(t time.Time) [][2]time.Time {
	y, mo, d := t.Date()
	var iv [][2]time.Time
	for off := -1; off <= 1; off++ {
		for _, r := range w {
			// time.Date normalises minutes past the day, and is right
			// across DST changes (a 01:00 start is 01:00 on the clock).
			s := time.Date(y, mo, d+off, 0, r.Start, 0, 0, t.Location())
			end := r.End
			if end <= r.Start {
				end += day
			}
			e := time.Date(y, mo, d+off, 0, end, 0, 0, t.Location())
			iv = append(iv, [2]time.Time{s, e})
		}
	}
	sort.Slice(iv, func(i, j int) bool { return iv[i][0].Before(iv[j][0]) })
	out := iv[:0]
	for _, x := range iv {
		if n := len(out); n > 0 && !x[0].After(out[n-1][1]) {
			if x[1].After(out[n-1][1]) {
				out[n-1][1] = x[1]
			}
			continue
		}
		out = append(out, x)
	}
	return out
}

// wholeDay reports whether the ranges cover every minute of the day.
func (w Window) wholeDay() bool {
	var m [day]bool
	for _, r := range w {
		end := r.End
		if end <= r.Start {
			end += day
		}
		for i := r.Start; i < end; i++ {
			m[i%day] = true
		}
	}
	for _, ok := range m {
		if !ok {
			return false
		}
	}
	return true
}

// At reports whether w is open at t. If it is, next is when it closes (the
// zero time if it never does: no window, or ranges that cover the whole
// day); if not, next is when it opens.
func (w Window) At(t time.Time) (open bool, next time.Time) {
	if len(w) == 0 || w.wholeDay() {
		return true, time.Time{}
	}
	iv := w.intervals(t)
	for _, x := range iv {
		if !t.Before(x[0]) && t.Before(x[1]) {
			return true, x[1]
		}
		if t.Before(x[0]) {
			return false, x[0]
		}
	}
	// Past the last interval considered (cannot happen with a range per day).
	return false, time.Time{}
}

// Until returns the next time the local clock shows hhmm (minutes after
// midnight) at or after now: a time already past today means tomorrow.
func Until(hhmm int, now time.Time) time.Time {
	y, mo, d := now.Date()
	t := time.Date(y, mo, d, 0, hhmm, 0, 0, now.Location())
	if !t.After(now) {
		t = time.Date(y, mo, d+1, 0, hhmm, 0, 0, now.Location())
	}
	return t
}

// Cell is Describe in one word, for a table cell: "always",
// "01:00-07:00(open)", "01:00-07:00+22:00-23:00(closed)".
func (w Window) Cell(now time.Time) string {
	if w.Always() {
		return "always"
	}
	state := "closed"
	if open, _ := w.At(now); open {
		state = "open"
	}
	return strings.ReplaceAll(w.String(), ", ", "+") + "(" + state + ")"
}

// Describe is w for a host table, as seen at now: "always", or the ranges
// and whether the window is open ("01:00-07:00 (open until 07:00)",
// "01:00-07:00 (closed, opens 01:00)").
func (w Window) Describe(now time.Time) string {
	if w.Always() {
		return "always"
	}
	open, next := w.At(now)
	switch {
	case open && next.IsZero():
		return w.String() + " (open)"
	case open:
		return fmt.Sprintf("%s (open until %s)", w, next.Format("15:04"))
	default:
		return fmt.Sprintf("%s (closed, opens %s)", w, next.Format("15:04"))
	}
}
