package gateway

import (
	"testing"

	"github.com/kaginashi/kaginashi/internal/agentproto"
	"github.com/kaginashi/kaginashi/internal/store"
)

// An agent's reported addresses are kept only as addresses, in canonical
// form: they are condition keys and look-up keys (openTunnel's
// privateIpAddress), so a host must not be able to report a wildcard, a
// name, or another spelling of an address. Before, any text up to 64
// bytes was stored.
func TestApplyInventoryAddresses(t *testing.T) {
	g := &Gateway{}
	cases := []struct {
		v4, v6         string
		wantV4, wantV6 string
	}{
		{"10.0.1.12", "2001:db8::1", "10.0.1.12", "2001:db8::1"},
		{"::ffff:10.0.1.12", "2001:DB8:0:0::1", "10.0.1.12", "2001:db8::1"},
		{"10.0.1.*", "fe80::1%eth0", "", ""},
		{"host.example", "10.0.0.1", "", ""},
		{"2001:db8::5", "", "", ""},
		{"", "", "", ""},
	}
	for _, c := range cases {
		var in store.Instance
		g.applyInventory(&in, agentproto.Inventory{PrivateIP: c.v4, IPv6: []string{c.v6}}, 0)
		if in.PrivateIP != c.wantV4 || in.IPv6 != c.wantV6 {
			t.Errorf("reported %q, %q: stored %q, %q; want %q, %q", c.v4, c.v6, in.PrivateIP, in.IPv6, c.wantV4, c.wantV6)
		}
	}
}
