package config

import (
	"reflect"
	"testing"
)

func TestNotifyKeys(t *testing.T) {
	c, err := loadString(t, "config:\n  notify: ntfy://ntfy.sh/a\n", true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Notify, []string{"ntfy://ntfy.sh/a"}) || c.NotifyEachFailure {
		t.Errorf("one URL: %v %v", c.Notify, c.NotifyEachFailure)
	}
	c, err = loadString(t, "config:\n  notify:\n    - https://h/x\n    - discord://t@1\n  notify_each_failure: yes\n", true)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Notify, []string{"https://h/x", "discord://t@1"}) || !c.NotifyEachFailure {
		t.Errorf("list: %v %v", c.Notify, c.NotifyEachFailure)
	}
}
