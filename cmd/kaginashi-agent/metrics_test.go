package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckMetricsListen(t *testing.T) {
	for _, ok := range []string{"", "127.0.0.1:9101", "[::1]:9101", "localhost:0", ":9101", "metrics.internal:9101"} {
		if err := checkMetricsListen(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"9101", "127.0.0.1", "127.0.0.1:99999", "127.0.0.1:http", "a b:9101", "x\nExecStartPre=/bin/sh:1",
		"%h:9101", "$HOST:9101", "127.0.0.1:9101 --data-dir /tmp"} {
		if err := checkMetricsListen(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestInstallServicePassesMetricsListen: the unit's ExecStart carries the
// flag when given, and only then; the rest of the unit is unchanged.
func TestInstallServicePassesMetricsListen(t *testing.T) {
	s, _, _, data := testService(t)
	s.metricsListen = "127.0.0.1:9101"
	self := filepath.Join(t.TempDir(), "kaginashi-agent")
	os.WriteFile(self, []byte("#!/bin/sh\n"), 0o755)
	if err := s.install(context.Background(), self, data, false); err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile(s.unitPath())
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(s.inst.Dir, "kaginashi-agent")
	want := "ExecStart=" + exe + " run --data-dir " + data + " --metrics-listen 127.0.0.1:9101\n"
	if !strings.Contains(string(unit), "\n"+want) {
		t.Errorf("unit does not run the agent with --metrics-listen:\n%s", unit)
	}
	if got := strings.Replace(string(unit), " --metrics-listen 127.0.0.1:9101", "", 1); got != unitText(exe, data) {
		t.Errorf("the rest of the unit changed:\n%s", unit)
	}
	if withMetricsListen(unitText(exe, data), "") != unitText(exe, data) {
		t.Error("no --metrics-listen changed the unit")
	}
}
