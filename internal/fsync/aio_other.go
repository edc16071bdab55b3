//go:build !linux

package fsync

import (
	"errors"
	"os"
)

type aio struct{}

func newAIO(*os.File) (*aio, error) { return nil, errors.ErrUnsupported }

func (*aio) sync() (bool, error) { return false, nil }

func (*aio) close() {}
