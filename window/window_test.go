package window

import (
	"strings"
	"testing"
	"time"
)

func TestParseErrors(t *testing.T) {
	for _, s := range []string{"", "7:00", "01:00", "01:00-", "25:00-07:00", "01:60-02:00", "01:00-01:00", "a-b", "24:30-01:00"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q): no error", s)
		}
	}
	w, err := Parse(" 00:00-07:00, 22:00-24:00 ")
	if err != nil || w.String() != "00:00-07:00, 22:00-24:00" {
		t.Fatalf("Parse: %v %v", w, err)
	}
}

func TestAt(t *testing.T) {
	loc := time.FixedZone("X", 3600)
	at := func(h, m int) time.Time { return time.Date(2026, 12, 7, h, m, 0, 0, loc) }
	tomorrow := func(h, m int) time.Time { return time.Date(2026, 12, 8, h, m, 0, 0, loc) }
	cases := []struct {
		w    string
		t    time.Time
		open bool
		next time.Time
	}{
		{"01:00-07:00", at(0, 30), false, at(1, 0)},
		{"01:00-07:00", at(1, 0), true, at(7, 0)},
		{"01:00-07:00", at(7, 0), false, tomorrow(1, 0)},
		{"23:00-07:00", at(23, 30), true, tomorrow(7, 0)},
		{"23:00-07:00", at(3, 0), true, at(7, 0)},
		{"23:00-07:00", at(12, 0), false, at(23, 0)},
		{"00:00-07:00, 22:00-24:00", at(23, 0), true, tomorrow(7, 0)}, // merged across midnight
		{"01:00-03:00,04:00-06:00", at(3, 30), false, at(4, 0)},
		{"00:00-12:00,12:00-24:00", at(3, 30), true, time.Time{}}, // the whole day: never closes
	}
	for _, c := range cases {
		w, err := Parse(c.w)
		if err != nil {
			t.Fatal(err)
		}
		open, next := w.At(c.t)
		if open != c.open || !next.Equal(c.next) {
			t.Errorf("%s at %s: open %v next %s, want %v %s", c.w, c.t.Format("15:04"), open, next, c.open, c.next)
		}
	}
}

func TestDescribe(t *testing.T) {
	w, _ := Parse("01:00-07:00")
	at := func(h int) time.Time { return time.Date(2026, 12, 7, h, 0, 0, 0, time.UTC) }
	for _, c := range []struct {
		w    Window
		t    time.Time
		want string
	}{
		{nil, at(3), "always"},
		{w, at(3), "01:00-07:00 (open until 07:00)"},
		{w, at(8), "01:00-07:00 (closed, opens 01:00)"},
	} {
		if got := c.w.Describe(c.t); got != c.want {
			t.Errorf("Describe = %q, want %q", got, c.want)
		}
		if got := c.w.Cell(c.t); strings.Contains(got, " ") || !strings.HasPrefix(c.want, strings.TrimSuffix(strings.TrimSuffix(got, "(open)"), "(closed)")) {
			t.Errorf("Cell = %q (for %q)", got, c.want)
		}
	}
}

func TestUntil(t *testing.T) {
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	if got := Until(7*60, now); !got.Equal(time.Date(2026, 12, 8, 7, 0, 0, 0, time.UTC)) {
		t.Errorf("07:00 at 08:00: %s, want tomorrow", got)
	}
	if got := Until(9*60, now); !got.Equal(time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)) {
		t.Errorf("09:00 at 08:00: %s, want today", got)
	}
}
