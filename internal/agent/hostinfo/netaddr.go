package hostinfo

import (
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// iface is one network interface and its addresses.
type iface struct {
	Name         string
	Up, Loopback bool
	Addrs        []netip.Prefix
}

// systemInterfaces lists the kernel's interfaces (netlink, through package
// net; no cgo).
func systemInterfaces() ([]iface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []iface
	for _, ifi := range ifs {
		if len(out) >= maxInterfaces {
			break
		}
		it := iface{Name: ifi.Name, Up: ifi.Flags&net.FlagUp != 0, Loopback: ifi.Flags&net.FlagLoopback != 0}
		if !it.Up || it.Loopback {
			continue // their addresses are not reported: skip the netlink dump
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			continue // the interface went away meanwhile
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ones, _ := ipn.Mask.Size()
			it.Addrs = append(it.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
		}
		out = append(out, it)
	}
	return out, nil
}

// Route and address flags (linux/route.h, linux/if_addr.h).
const (
	rtfUp     = 0x0001
	rtfReject = 0x0200

	ifaTemporary  = 0x01
	ifaDadFailed  = 0x08
	ifaDeprecated = 0x20
	ifaTentative  = 0x40
)

// addresses returns the host's IPv4 and IPv6 addresses, primary first: the
// addresses of the default route's interface (for IPv4 the one on the
// gateway's subnet first; for IPv6 stable before temporary, deprecated or
// tentative ones), then the other interfaces' in the kernel's order.
// Loopback, link-local, multicast and unspecified addresses and interfaces
// that are down are left out.
func addresses(o Options) (v4, v6 []string, err error) {
	list := o.interfaces
	if list == nil {
		list = systemInterfaces
	}
	ifs, err := list()
	if err != nil {
		return nil, nil, err
	}
	if4, gw4 := defaultRoute4(o.Root)
	if6, _ := defaultRoute6(o.Root)
	flags6 := inet6Flags(o.Root)

	type cand struct {
		addr string
		rank int
	}
	var c4, c6 []cand
	seen := make(map[netip.Addr]bool)
	for _, it := range ifs {
		if !it.Up || it.Loopback {
			continue
		}
		for _, p := range it.Addrs {
			a := p.Addr().Unmap()
			if !a.IsValid() || a.IsUnspecified() || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() || seen[a] {
				continue
			}
			seen[a] = true
			if a.Is4() {
				rank := 2
				if it.Name == if4 && if4 != "" {
					rank = 1
					if gw4.IsValid() && netip.PrefixFrom(a, p.Bits()).Masked().Contains(gw4) {
						rank = 0
					}
				}
				c4 = append(c4, cand{a.String(), rank})
				continue
			}
			f := flags6[a]
			if f&ifaDadFailed != 0 {
				continue
			}
			rank := 2
			if it.Name == if6 && if6 != "" {
				rank = 0
			}
			if f&(ifaTemporary|ifaDeprecated|ifaTentative) != 0 {
				rank++
			}
			c6 = append(c6, cand{a.String(), rank})
		}
	}
	byRank := func(a, b cand) int { return a.rank - b.rank }
	slices.SortStableFunc(c4, byRank)
	slices.SortStableFunc(c6, byRank)
	for _, c := range c4 {
		if len(v4) < maxAddrs {
			v4 = append(v4, c.addr)
		}
	}
	for _, c := range c6 {
		if len(v6) < maxAddrs {
			v6 = append(v6, c.addr)
		}
	}
	return v4, v6, nil
}

// procLines reads a small /proc table and returns its lines' fields.
func procLines(root, p string) [][]string {
	b, err := readSmall(root, p, maxSmallFile)
	if err != nil {
		return nil
	}
	var out [][]string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			out = append(out, f)
		}
	}
	return out
}

// defaultRoute4 returns the interface and gateway of the IPv4 default route
// with the lowest metric, from /proc/net/route (addresses are in host byte
// order there).
func defaultRoute4(root string) (string, netip.Addr) {
	var name string
	var gw netip.Addr
	best := uint64(1 << 63)
	for i, f := range procLines(root, "/proc/net/route") {
		if i == 0 || len(f) < 8 {
			continue // header
		}
		dst, e1 := strconv.ParseUint(f[1], 16, 32)
		g, e2 := strconv.ParseUint(f[2], 16, 32)
		flags, e3 := strconv.ParseUint(f[3], 16, 32)
		metric, e4 := strconv.ParseUint(f[6], 10, 32)
		mask, e5 := strconv.ParseUint(f[7], 16, 32)
		if e1 != nil || e2 != nil || e3 != nil || e4 != nil || e5 != nil {
			continue
		}
		if dst != 0 || mask != 0 || flags&rtfUp == 0 || flags&rtfReject != 0 || f[0] == "lo" || f[0] == "*" {
			continue
		}
		if metric < best {
			best, name = metric, f[0]
			var b [4]byte
			binary.NativeEndian.PutUint32(b[:], uint32(g))
			gw = netip.AddrFrom4(b)
			if g == 0 {
				gw = netip.Addr{}
			}
		}
	}
	return name, gw
}

// defaultRoute6 returns the interface and next hop of the IPv6 default
// route with the lowest metric, from /proc/net/ipv6_route.
func defaultRoute6(root string) (string, netip.Addr) {
	var name string
	var gw netip.Addr
	best := uint64(1 << 63)
	for _, f := range procLines(root, "/proc/net/ipv6_route") {
		if len(f) < 10 || f[1] != "00" {
			continue
		}
		metric, e1 := strconv.ParseUint(f[5], 16, 32)
		flags, e2 := strconv.ParseUint(f[8], 16, 32)
		if e1 != nil || e2 != nil || flags&rtfUp == 0 || flags&rtfReject != 0 || f[9] == "lo" {
			continue
		}
		if metric < best {
			best, name = metric, f[9]
			gw, _ = hexAddr6(f[4])
		}
	}
	return name, gw
}

// inet6Flags reads the IFA_F_* flags of each IPv6 address from
// /proc/net/if_inet6.
func inet6Flags(root string) map[netip.Addr]uint64 {
	m := make(map[netip.Addr]uint64)
	for _, f := range procLines(root, "/proc/net/if_inet6") {
		if len(f) < 6 || len(m) >= 4*maxAddrs {
			continue
		}
		a, ok := hexAddr6(f[0])
		fl, err := strconv.ParseUint(f[4], 16, 32)
		if ok && err == nil {
			m[a] = fl
		}
	}
	return m
}

func hexAddr6(s string) (netip.Addr, bool) {
	if len(s) != 32 {
		return netip.Addr{}, false
	}
	var b [16]byte
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return netip.Addr{}, false
	}
	a := netip.AddrFrom16(b)
	return a, !a.IsUnspecified()
}
