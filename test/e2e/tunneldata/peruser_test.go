package tunneldata

import (
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kaginashi/kaginashi/internal/client"
)

// testPerUserLimit: with --max-tunnels-per-user 2, a principal's third
// tunnel gets 429 TooManyTunnels naming the flag, while another user
// still gets tunnels; closing one frees the first user's slot. Before,
// one user could take every slot of the endpoint.
func testPerUserLimit(t *testing.T, st *site, svc *service) {
	var held []net.Conn
	for i := range 2 {
		c, err := st.dial(t, st.params(svc.port))
		if err != nil {
			t.Fatalf("root's tunnel %d of 2: %v", i+1, err)
		}
		wantEcho(t, c, "within the per-user limit")
		held = append(held, c)
	}
	_, err := st.dial(t, st.params(svc.port))
	var te *client.TunnelError
	if !errors.As(err, &te) || te.Status != http.StatusTooManyRequests || te.Code != "TooManyTunnels" || !strings.Contains(te.Message, "--max-tunnels-per-user") {
		t.Fatalf("root's third tunnel: %v, want 429 TooManyTunnels naming --max-tunnels-per-user", err)
	}
	other := newUser(t, st, "tunnel-other-user", `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"ec2-instance-connect:OpenTunnel","Resource":"*"}]}`)
	c, err := st.dial(t, st.params(svc.port), other)
	if err != nil {
		t.Fatalf("another user's tunnel while root holds its maximum: %v", err)
	}
	wantEcho(t, c, "another user's")
	c.Close()
	held[0].Close()
	waitFor(t, "root's slot after closing a tunnel", 5*time.Second, func() bool {
		c, err = st.dial(t, st.params(svc.port))
		return err == nil
	})
	wantEcho(t, c, "after a slot freed")
	c.Close()
	held[1].Close()
}

// testMismatchedTarget: instanceId with another instance's (or no
// instance's) privateIpAddress is refused saying which address the
// instance has; before, the answer said the instance did not exist.
func testMismatchedTarget(t *testing.T, st *site, svc *service) {
	p := st.params(svc.port)
	p.PrivateIP = "192.0.2.254"
	_, err := st.dial(t, p)
	var te *client.TunnelError
	if !errors.As(err, &te) || te.Status != http.StatusBadRequest || te.Code != "InvalidParameter" ||
		!strings.Contains(te.Message, "has private IP address "+st.privateIP+", not 192.0.2.254") {
		t.Fatalf("instanceId with another address: %v, want 400 InvalidParameter naming the instance's address", err)
	}
	p.PrivateIP = "10.0.0.*"
	if _, err := st.dial(t, p); !errors.As(err, &te) || te.Code != "InvalidParameter" || !strings.Contains(te.Message, "not an IP address") {
		t.Fatalf("a wildcard address: %v, want 400 InvalidParameter", err)
	}
}
