package hosts_test

import (
	"errors"
	"testing"

	"clustertx/hosts"
	"clustertx/hosts/hoststest"
)

// One contract, three transports: the fake that fast tests use stays as
// honest as the transports it stands in for.

func TestConformanceLocal(t *testing.T) {
	hoststest.RunConformance(t, func(t *testing.T) hoststest.Host {
		return hoststest.Host{Transport: hosts.NewLocal("local"), Dir: t.TempDir()}
	})
}

func TestConformanceFake(t *testing.T) {
	hoststest.RunConformance(t, func(t *testing.T) hoststest.Host {
		f := hoststest.NewFake("fake")
		t.Cleanup(func() { f.Close() })
		return hoststest.Host{Transport: f, Dir: t.TempDir(), Kill: func() { f.Die(errors.New("host unplugged")) }}
	})
}

func TestConformanceSSH(t *testing.T) {
	hoststest.RunConformance(t, func(t *testing.T) hoststest.Host {
		s, tr := start(t)
		return hoststest.Host{Transport: tr, Dir: t.TempDir(), Kill: s.Stop}
	})
}
