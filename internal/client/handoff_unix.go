//go:build unix

package client

import (
	"context"
	"fmt"
	"net"
	"os"
	"syscall"
)

// CanPassFD says whether this system can hand a connection to ssh
// (ProxyUseFdpass: SCM_RIGHTS on a unix socket).
const CanPassFD = true

// PassHandoff takes the connection the private agent at socket offers
// and passes it to ssh on out, ssh's end of a ProxyUseFdpass
// ProxyCommand's standard output: one byte with the descriptor
// (SCM_RIGHTS), as OpenSSH's mm_receive_fd expects.
func PassHandoff(ctx context.Context, socket string, out *os.File) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return err
	}
	defer c.Close() // ssh holds its own copy by then
	if err := takeHandoff(c); err != nil {
		return err
	}
	raw, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		// ssh's, from now on: blocking, as a socket it connected itself
		// would be. (The flag is this socket's own, not the peer's.)
		if serr = syscall.SetNonblock(int(fd), false); serr != nil {
			return
		}
		serr = syscall.Sendmsg(int(out.Fd()), []byte{0}, syscall.UnixRights(int(fd)), nil, 0)
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("passing the connection to ssh (is ProxyUseFdpass=yes set?): %w", serr)
	}
	return nil
}

// SSHGone says whether the ssh at the other end of out, a ProxyUseFdpass
// ProxyCommand's standard output, has ended: its end of the socket pair
// is closed.
func SSHGone(out *os.File) bool {
	var b [1]byte
	n, _, err := syscall.Recvfrom(int(out.Fd()), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err == nil && n == 0
}
