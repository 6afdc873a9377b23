package doctor

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/kaginashi/kaginashi/internal/agent"
	"github.com/kaginashi/kaginashi/internal/agent/hostinfo"
	"github.com/kaginashi/kaginashi/internal/sshdsetup"
)

// addressCheck is reported only when listing the host's addresses failed:
// then DescribeInstances shows no privateIpAddress and EICE's private-IP
// path cannot find the instance, and nothing else would say why.
func addressCheck(info *hostinfo.Info) []Check {
	if info == nil || info.AddressError == "" {
		return nil
	}
	return []Check{warn("addresses",
		"if the agent runs under systemd, its unit needs AF_NETLINK in RestrictAddressFamilies (kaginashi-agent install-service writes it: run it again); otherwise check that this host's network interfaces can be listed (ip addr)",
		"the host's addresses cannot be listed (%s): DescribeInstances shows no privateIpAddress and EICE tunnels by private IP cannot reach this host", info.AddressError)}
}

// unitChecks look at the agent's systemd unit, when there is one, for what
// older versions of install-service wrote and the unit cannot work with.
func unitChecks(unitFile string) []Check {
	b, err := os.ReadFile(unitFile)
	if err != nil {
		return nil
	}
	var out []Check
	fix := "run kaginashi-agent install-service again (it rewrites " + unitFile + "), or edit it and run systemctl daemon-reload; systemctl restart kaginashi-agent"
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(s.Text()), "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "RestrictAddressFamilies":
			fams := strings.Fields(v)
			if len(fams) > 0 && !strings.HasPrefix(fams[0], "~") && !contains(fams, "AF_NETLINK") {
				out = append(out, warn("agent-unit", fix,
					"%s restricts the agent to %s without AF_NETLINK: the agent cannot list the host's addresses (no privateIpAddress in DescribeInstances)", unitFile, strings.TrimSpace(v)))
			}
		case "ExecStart":
			words := strings.Fields(strings.TrimLeft(strings.TrimSpace(v), "-@:+!"))
			if len(words) == 0 {
				continue
			}
			if err := sshdsetup.ServiceBinaryProblem("", words[0]); err != nil && strings.Contains(err.Error(), "cannot see") {
				out = append(out, fail("agent-unit", fix, "%s runs %s, which the unit cannot see: %v", unitFile, words[0], err))
			}
		}
	}
	return append(out, restartCheck(unitFile, b)...)
}

// restartCheck warns when systemd would restart an agent whose identity
// the server revoked: it exits with agent.ExitIdentityRevoked, and a unit
// that restarts it (Restart=always or on-failure) without that status in
// RestartPreventExitStatus — what install-service wrote before — has it
// refused again every RestartSec, for ever. The unit's drop-ins
// (UNIT.d/*.conf, systemctl edit) count: systemd reads them after it.
func restartCheck(unitFile string, unit []byte) []Check {
	restart := "no" // systemd's default
	var prevent []string
	files := [][]byte{unit}
	dropIns, _ := filepath.Glob(unitFile + ".d/*.conf")
	sort.Strings(dropIns)
	for _, f := range dropIns {
		if b, err := os.ReadFile(f); err == nil {
			files = append(files, b)
		}
	}
	for _, b := range files {
		inService := false
		s := bufio.NewScanner(bytes.NewReader(b))
		for s.Scan() {
			line := strings.TrimSpace(s.Text())
			if strings.HasPrefix(line, "[") {
				inService = line == "[Service]"
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok || !inService {
				continue
			}
			switch strings.TrimSpace(k) {
			case "Restart":
				restart = strings.TrimSpace(v)
			case "RestartPreventExitStatus":
				if strings.TrimSpace(v) == "" {
					prevent = nil // an empty assignment resets the list
				}
				prevent = append(prevent, strings.Fields(v)...)
			}
		}
	}
	if restart != "always" && restart != "on-failure" {
		return nil
	}
	if contains(prevent, strconv.Itoa(agent.ExitIdentityRevoked)) || contains(prevent, "CONFIG") {
		return nil
	}
	return []Check{warn("agent-unit",
		"run kaginashi-agent install-service again (it rewrites "+unitFile+" with RestartPreventExitStatus="+strconv.Itoa(agent.ExitIdentityRevoked)+"), or add that line under [Service] and run systemctl daemon-reload",
		"%s has Restart=%s without RestartPreventExitStatus=%d: if the server revokes this host's identity (its instance deregistered, or enrolled again elsewhere), systemd restarts the agent every few seconds for ever, each start refused, instead of leaving it stopped",
		unitFile, restart, agent.ExitIdentityRevoked)}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}
