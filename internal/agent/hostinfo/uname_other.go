//go:build !linux

package hostinfo

import "errors"

func unameField(string) (string, error) { return "", errors.New("uname: not supported") }
