//go:build !linux

package devenv

import "syscall"

// childAttr: see proc_linux.go; no parent-death signal here.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
