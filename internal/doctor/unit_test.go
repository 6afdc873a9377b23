package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kaginashi/kaginashi/internal/agent/hostinfo"
)

func TestAddressCheck(t *testing.T) {
	if c := addressCheck(&hostinfo.Info{IPv4: []string{"10.0.0.5"}}); len(c) != 0 {
		t.Errorf("addresses listed, yet %+v", c)
	}
	c := addressCheck(&hostinfo.Info{AddressError: "route ip+net: netlinkrib: address family not supported by protocol"})
	if len(c) != 1 || c[0].Status != Warn || !strings.Contains(c[0].Message, "privateIpAddress") || !strings.Contains(c[0].Fix, "AF_NETLINK") {
		t.Errorf("%+v", c)
	}
}

func TestUnitChecks(t *testing.T) {
	dir := t.TempDir()
	unit := filepath.Join(dir, "kaginashi-agent.service")
	if c := unitChecks(unit); len(c) != 0 {
		t.Errorf("no unit, yet %+v", c)
	}
	write := func(s string) {
		if err := os.WriteFile(unit, []byte("[Service]\n"+s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("ExecStart=/usr/local/libexec/kaginashi/kaginashi-agent run\nRestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK\n")
	if c := unitChecks(unit); len(c) != 0 {
		t.Errorf("a good unit, yet %+v", c)
	}
	// What install-service wrote before: no AF_NETLINK, a binary in /root.
	write("ExecStart=/root/kaginashi-agent run --data-dir /var/lib/kaginashi-agent\nRestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n")
	c := unitChecks(unit)
	if len(c) != 2 || c[0].Status != Fail || !strings.Contains(c[0].Message, "cannot see") || c[1].Status != Warn || !strings.Contains(c[1].Message, "AF_NETLINK") {
		t.Errorf("%+v", c)
	}
}
