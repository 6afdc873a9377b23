//go:build !linux

package devenv

import "syscall"

func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
