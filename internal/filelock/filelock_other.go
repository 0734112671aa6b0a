//go:build !unix && !windows

package filelock

import "os"

func tryLock(*os.File) (bool, error) { return false, ErrUnsupported }

func lock(*os.File) error { return ErrUnsupported }

func unlock(*os.File) error { return ErrUnsupported }
