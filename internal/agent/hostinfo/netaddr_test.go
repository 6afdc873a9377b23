package hostinfo

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// route4 is one /proc/net/route line: addresses in host byte order, as the
// kernel prints them.
func route4(ifname, dst, gw string, flags, metric int, mask string) string {
	h := func(s string) string {
		a := netip.MustParseAddr(s).As4()
		return fmt.Sprintf("%08X", binary.NativeEndian.Uint32(a[:]))
	}
	return fmt.Sprintf("%s\t%s\t%s\t%04X\t0\t0\t%d\t%s\t0\t0\t0", ifname, h(dst), h(gw), flags, metric, h(mask))
}

const routeHeader = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT"

func hex6(s string) string {
	a := netip.MustParseAddr(s).As16()
	return fmt.Sprintf("%x", a[:])
}

func route6(dst string, plen int, nexthop string, metric, flags int, ifname string) string {
	return fmt.Sprintf("%s %02x %s 00 %s %08x 00000001 00000000 %08x %8s", hex6(dst), plen, hex6("::"), hex6(nexthop), metric, flags, ifname)
}

func inet6(addr string, idx, plen, scope, flags int, ifname string) string {
	return fmt.Sprintf("%s %02x %02x %02x %02x %8s", hex6(addr), idx, plen, scope, flags, ifname)
}

func prefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

// testInterfaces: docker0 comes first in the kernel's order, the default
// route is on ens5, whose secondary address (on another subnet) is listed
// before the one on the gateway's subnet.
func testInterfaces() ([]iface, error) {
	return []iface{
		{Name: "lo", Up: true, Loopback: true, Addrs: prefixes("127.0.0.1/8", "::1/128")},
		{Name: "docker0", Up: true, Addrs: prefixes("172.17.0.1/16", "fe80::42:acff:fe11:1/64")},
		{Name: "ens5", Up: true, Addrs: prefixes(
			"192.168.50.7/24",
			"10.0.1.23/24",
			"fe80::8ff:fe12:3456/64",
			"2001:db8:1:2:abcd:ef01:2345:6789/64", // temporary
			"2001:db8:1:2::23/64",
			"169.254.10.10/16",
			"224.0.0.251/32",
		)},
		{Name: "wg0", Up: true, Addrs: prefixes("10.99.0.1/24", "fd42::1/64")},
		{Name: "eth9", Up: false, Addrs: prefixes("10.200.0.1/24", "2001:db8:ffff::1/64")},
		{Name: "dup", Up: true, Addrs: prefixes("10.0.1.23/32")},
	}, nil
}

func TestAddressesPrimaryFirst(t *testing.T) {
	root := t.TempDir()
	put(t, root, "/proc/net/route", strings.Join([]string{
		routeHeader,
		route4("wg0", "0.0.0.0", "10.99.0.254", 0x3, 200, "0.0.0.0"), // default, worse metric
		route4("ens5", "0.0.0.0", "10.0.1.1", 0x3, 100, "0.0.0.0"),
		route4("docker0", "0.0.0.0", "172.17.0.254", 0x203, 0, "0.0.0.0"), // reject route
		route4("ens5", "10.0.1.0", "0.0.0.0", 0x1, 0, "255.255.255.0"),
		"garbage line",
	}, "\n")+"\n", 0o444)
	put(t, root, "/proc/net/ipv6_route", strings.Join([]string{
		route6("2001:db8:1:2::", 64, "::", 256, 0x1, "ens5"),
		route6("::", 0, "fe80::1", 1024, 0x00450003, "ens5"),
		route6("::", 0, "::", 0xffffffff, 0x00200200, "lo"), // unreachable
		route6("::", 0, "fe80::2", 2048, 0x3, "wg0"),
	}, "\n")+"\n", 0o444)
	put(t, root, "/proc/net/if_inet6", strings.Join([]string{
		inet6("2001:db8:1:2:abcd:ef01:2345:6789", 2, 64, 0, 0x01, "ens5"),
		inet6("2001:db8:1:2::23", 2, 64, 0, 0x80, "ens5"),
		inet6("fd42::1", 3, 64, 0, 0x80, "wg0"),
	}, "\n")+"\n", 0o444)

	v4, v6, err := addresses(Options{Root: root, interfaces: testInterfaces})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"10.0.1.23", "192.168.50.7", "172.17.0.1", "10.99.0.1"}; !reflect.DeepEqual(v4, want) {
		t.Errorf("IPv4 %q, want %q", v4, want)
	}
	if want := []string{"2001:db8:1:2::23", "2001:db8:1:2:abcd:ef01:2345:6789", "fd42::1"}; !reflect.DeepEqual(v6, want) {
		t.Errorf("IPv6 %q, want %q", v6, want)
	}
	info, err := Collect(t.Context(), Options{Root: root, interfaces: testInterfaces})
	if err != nil {
		t.Fatal(err)
	}
	if info.PrivateIP != "10.0.1.23" {
		t.Errorf("PrivateIP %q", info.PrivateIP)
	}
}

// TestAddressesNoRoutes: without route tables (no default route, or /proc
// unreadable) the kernel's interface order stands.
func TestAddressesNoRoutes(t *testing.T) {
	v4, v6, err := addresses(Options{Root: t.TempDir(), interfaces: testInterfaces})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"172.17.0.1", "192.168.50.7", "10.0.1.23", "10.99.0.1"}; !reflect.DeepEqual(v4, want) {
		t.Errorf("IPv4 %q, want %q", v4, want)
	}
	if want := []string{"2001:db8:1:2:abcd:ef01:2345:6789", "2001:db8:1:2::23", "fd42::1"}; !reflect.DeepEqual(v6, want) {
		t.Errorf("IPv6 %q, want %q", v6, want)
	}
}

func TestAddressesBounded(t *testing.T) {
	many := func() ([]iface, error) {
		it := iface{Name: "eth0", Up: true}
		for i := 0; i < 300; i++ {
			it.Addrs = append(it.Addrs, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 16))
		}
		return []iface{it}, nil
	}
	v4, _, err := addresses(Options{Root: t.TempDir(), interfaces: many})
	if err != nil || len(v4) != maxAddrs {
		t.Fatalf("%d addresses, %v", len(v4), err)
	}
}

func TestDefaultRoute4NoGateway(t *testing.T) {
	root := t.TempDir()
	put(t, root, "/proc/net/route", routeHeader+"\n"+route4("ppp0", "0.0.0.0", "0.0.0.0", 0x1, 0, "0.0.0.0")+"\n", 0o444)
	name, gw := defaultRoute4(root)
	if name != "ppp0" || gw.IsValid() {
		t.Fatalf("%q %v", name, gw)
	}
}
