//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly)

package journal

import (
	"errors"
	"os"
)

var errNoFlock = errors.New("run locking is not supported on this operating system")

func tryLock(*os.File) (bool, error) { return false, errNoFlock }

func unlock(*os.File) error { return errNoFlock }
