package config

import (
	"strings"
	"testing"
	"time"
)

// Issue 18's keys: config until:/grace:, and a host's window: as one range,
// a comma list, or a YAML list, across midnight.
func TestWindowKeys(t *testing.T) {
	c, err := loadString(t, `
config:
  until: "07:00"
  grace: 15m
  clusters:
    home:
      pc:
        type: mounted
        ip: pc
        path-substitutions: ["/m /m"]
        window: "01:00-07:00"
      nas:
        type: mounted
        ip: nas
        path-substitutions: ["/m /m"]
        window: ["23:00-02:00", "04:00-05:00"]
      box:
        type: local
`, true)
	if err != nil {
		t.Fatal(err)
	}
	if c.Until != "07:00" || c.Grace != 15*time.Minute {
		t.Errorf("until %q grace %s", c.Until, c.Grace)
	}
	if w := host(t, c, "home", "pc").Window.String(); w != "01:00-07:00" {
		t.Errorf("pc window %q", w)
	}
	if w := host(t, c, "home", "nas").Window.String(); w != "23:00-02:00, 04:00-05:00" {
		t.Errorf("nas window %q", w)
	}
	if !host(t, c, "home", "box").Window.Always() {
		t.Error("box has a window it was not given")
	}
	for _, bad := range []string{`until: "7pm"`, `grace: soon`} {
		if _, err := loadString(t, "config:\n  "+bad+"\n", true); err == nil || !strings.Contains(err.Error(), strings.SplitN(bad, ":", 2)[0]) {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
	_, err = loadString(t, "config:\n  clusters:\n    home:\n      pc:\n        type: local\n        window: \"01:00-7\"\n", true)
	if err == nil || !strings.Contains(err.Error(), "window") {
		t.Errorf("bad window: err = %v", err)
	}
}
