//go:build !unix

package client

import (
	"context"
	"errors"
	"os"
)

// CanPassFD is false where ssh cannot be handed a socket: kaginashi ssh
// then lets ssh's ProxyCommand open the tunnel.
const CanPassFD = false

// PassHandoff is not supported here.
func PassHandoff(context.Context, string, *os.File) error {
	return errors.New("passing a connection to ssh (ProxyUseFdpass) needs a unix system")
}

// SSHGone cannot tell here.
func SSHGone(*os.File) bool { return false }
