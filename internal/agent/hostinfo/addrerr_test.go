package hostinfo

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestAddressError: when the interface list fails (as under a unit that
// forbids AF_NETLINK), Info says why instead of silently having no
// addresses, and the other facts are still there.
func TestAddressError(t *testing.T) {
	refuse := func() ([]iface, error) {
		return nil, errors.New("route ip+net: netlinkrib: address family not supported by protocol")
	}
	info, err := Collect(context.Background(), Options{Root: t.TempDir(), interfaces: refuse})
	if err == nil || !strings.Contains(info.AddressError, "address family not supported") || len(info.IPv4) != 0 {
		t.Errorf("err %v, AddressError %q", err, info.AddressError)
	}
	info, _ = Collect(context.Background(), Options{Root: t.TempDir(), interfaces: noInterfaces})
	if info.AddressError != "" {
		t.Errorf("AddressError %q with a working interface list", info.AddressError)
	}
}
