package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/spf13/cobra"

	"github.com/kaginashi/kaginashi/internal/client"
)

// tunnelFlags are open-tunnel's own options (AWS CLI names).
type tunnelFlags struct {
	instanceID  string
	remotePort  int
	localPort   int
	maxDuration int
	endpointID  string
	dnsName     string
	privateIP   string
	maxConns    int
	fdFrom      string
}

func newOpenTunnelCmd(stdio IO) *cobra.Command {
	var (
		flags client.Flags
		tf    tunnelFlags
	)
	c := &cobra.Command{
		Use:   "open-tunnel --instance-id ID [--remote-port 22] [--local-port N] [--max-tunnel-duration S]",
		Short: "Open a tunnel to a port of an instance, through the Instance Connect Endpoint",
		Long: `Open a tunnel to a port of an instance (22 by default) through the EC2 Instance
Connect Endpoint — kaginashi's server, or AWS's with no endpoint configured.

Without --local-port it carries standard input and output, for ssh's
ProxyCommand, and exits as soon as standard input closes. With --local-port it
listens on 127.0.0.1:PORT and opens a new tunnel for each connection.`,
		Example: `  ssh -o ProxyCommand='kaginashi open-tunnel --instance-id %h' ec2-user@i-0123456789abcdef0
  kaginashi open-tunnel --instance-id i-0123456789abcdef0 --remote-port 5432 --local-port 15432`,
		Args: exactArgs(0, "no positional arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if tf.fdFrom != "" {
				return passHandoff(cmd.Context(), stdio, tf.fdFrom)
			}
			if tf.instanceID == "" {
				return usageErr("--instance-id is required")
			}
			if !client.IsInstanceID(tf.instanceID) {
				// A Name would pass the look-ups (they take Names) and
				// then be refused by the endpoint as "Invalid id".
				return usageErr("--instance-id %q: want an instance ID (i-0123456789abcdef0); by Name tag: kaginashi ssh NAME, or ssh NAME.kaginashi with kaginashi ssh-config", tf.instanceID)
			}
			if tf.remotePort < 1 || tf.remotePort > 65535 {
				return usageErr("--remote-port %d: want 1 to 65535", tf.remotePort)
			}
			if tf.maxDuration < 0 || tf.maxDuration > 3600 {
				return usageErr("--max-tunnel-duration %d: want 1 to 3600 seconds", tf.maxDuration)
			}
			if tf.localPort < 0 || tf.localPort > 65535 {
				return usageErr("--local-port %d: want 1 to 65535", tf.localPort)
			}
			if tf.dnsName != "" && tf.endpointID == "" {
				return usageErr("--instance-connect-endpoint-dns-name needs --instance-connect-endpoint-id")
			}
			ctx := cmd.Context()
			x := explainCtx{instance: tf.instanceID, port: tf.remotePort, endpoint: flags.EndpointURL, portFlag: "--remote-port"}
			params, cfg, warm, err := tunnelParams(ctx, flags, tf)
			defer warm.Close()
			if base := aws.ToString(cfg.BaseEndpoint); base != "" {
				x.endpoint = base // also from AWS_ENDPOINT_URL or the profile
			}
			if err != nil {
				return &exitError{code: 1, err: explain(err, x)}
			}
			if tf.localPort == 0 {
				if err := stdioTunnel(ctx, stdio, cfg, params, warm); err != nil {
					return &exitError{code: 1, err: explain(err, x)}
				}
				return nil
			}
			return listenTunnel(ctx, stdio, cfg, params, tf)
		},
	}
	addClientFlags(c, &flags)
	f := c.Flags()
	f.StringVar(&tf.instanceID, "instance-id", "", "instance to reach (required)")
	f.IntVar(&tf.remotePort, "remote-port", 22, "port on the instance")
	f.IntVar(&tf.localPort, "local-port", 0, "listen on 127.0.0.1:PORT instead of using standard input and output")
	f.IntVar(&tf.maxDuration, "max-tunnel-duration", 0, "close the tunnel after this many seconds (1-3600; default: the server's, 3600)")
	f.StringVar(&tf.endpointID, "instance-connect-endpoint-id", "", "endpoint to use (default: found with DescribeInstanceConnectEndpoints)")
	f.StringVar(&tf.dnsName, "instance-connect-endpoint-dns-name", "", "with --instance-connect-endpoint-id: its DNS name, so that it need not be looked up")
	f.StringVar(&tf.privateIP, "private-ip-address", "", "the instance's private IP (default: found with DescribeInstances)")
	f.IntVar(&tf.maxConns, "max-websocket-connections", 10, "with --local-port: tunnels open at once")
	// kaginashi ssh's ProxyCommand (ProxyUseFdpass=yes): the kaginashi
	// that started ssh has opened the tunnel; this passes it to ssh.
	f.StringVar(&tf.fdFrom, "fd-from", "", "take the tunnel from the kaginashi ssh serving this socket and pass it to ssh (ProxyUseFdpass)")
	_ = f.MarkHidden("fd-from")
	return c
}

// passHandoff is open-tunnel --fd-from: ssh's ProxyCommand for a tunnel
// that `kaginashi ssh` opened (see client.HandoffExtension). It exits as
// soon as ssh holds the connection. When it fails because ssh is gone —
// `kaginashi ssh` stops ssh when the key or the tunnel fails, and says
// why — it says nothing more.
func passHandoff(ctx context.Context, stdio IO, socket string) error {
	out, ok := stdio.Out.(*os.File)
	if !ok {
		return &exitError{code: 1, err: errors.New("--fd-from: standard output must be ssh's socket (ProxyUseFdpass=yes)")}
	}
	if err := client.PassHandoff(ctx, socket, out); err != nil {
		if client.SSHGone(out) {
			return &exitError{code: 1}
		}
		return &exitError{code: 1, err: fmt.Errorf("--fd-from %s: %w", socket, err)}
	}
	return nil
}

// tunnelParams resolves the endpoint and target, the way the AWS CLI does
// (DescribeInstances → private IP, DescribeInstanceConnectEndpoints →
// endpoint), plus kaginashi's instanceId so its server needs no address.
//
// With a kaginashi server configured, the tunnel's TCP and TLS handshakes
// with it go on during the look-ups: warm, for the caller to close.
func tunnelParams(ctx context.Context, flags client.Flags, tf tunnelFlags) (p client.TunnelParams, cfg awsConfig, warm *client.WarmTunnel, err error) {
	if cfg, err = client.Load(ctx, flags); err != nil {
		return p, cfg, nil, err
	}
	if base := aws.ToString(cfg.BaseEndpoint); base != "" && tf.localPort == 0 {
		warm = client.PrewarmTunnel(ctx, cfg, base)
	}
	p = client.TunnelParams{InstanceID: tf.instanceID, RemotePort: tf.remotePort, MaxDuration: tf.maxDuration, PrivateIP: tf.privateIP}
	// The two look-ups go on at the same time, but on AWS (below).
	var (
		wg     sync.WaitGroup
		ipErr  error
		target client.Target
	)
	base := aws.ToString(cfg.BaseEndpoint)
	// On AWS the endpoint is chosen by the instance's VPC and subnet (an
	// endpoint reaches only its own VPC): the instance is looked up first.
	byVPC := base == "" && tf.endpointID == ""
	if p.PrivateIP == "" || byVPC {
		wg.Add(1)
		go func() {
			defer wg.Done()
			target, ipErr = client.ResolveTarget(ctx, cfg, tf.instanceID)
		}()
	}
	if byVPC {
		wg.Wait()
		if ipErr == nil {
			p.Endpoint, p.EndpointID, err = client.EndpointFor(ctx, cfg, "", target)
		}
	} else if tf.endpointID != "" && tf.dnsName != "" {
		// Given both, as `kaginashi ssh` does: no lookup. A kaginashi
		// server is the endpoint at its own URL.
		p.EndpointID, p.Endpoint = tf.endpointID, "https://"+tf.dnsName
		if base := aws.ToString(cfg.BaseEndpoint); base != "" {
			p.Endpoint = base
		}
	} else {
		p.Endpoint, p.EndpointID, err = client.Endpoint(ctx, cfg, tf.endpointID)
		if base := aws.ToString(cfg.BaseEndpoint); base != "" && tf.endpointID == "" && isUnauthorized(err) {
			// A kaginashi server names its endpoint in
			// DescribeInstanceConnectInfo, which needs only
			// ec2:DescribeInstances — as `kaginashi ssh` finds it — so
			// a policy without ec2:DescribeInstanceConnectEndpoints
			// (the seed article's has none) opens tunnels here too.
			if in, ierr := client.DescribeInstance(ctx, cfg, tf.instanceID); ierr == nil && in.EndpointID != "" {
				p.Endpoint, p.EndpointID, err = base, in.EndpointID, nil
			}
		}
	}
	wg.Wait()
	if ipErr != nil {
		return p, cfg, warm, ipErr
	}
	if err != nil {
		return p, cfg, warm, err
	}
	if p.PrivateIP == "" {
		p.PrivateIP = target.PrivateIP
	}
	return p, cfg, warm, nil
}

// isUnauthorized says whether err is a policy's refusal (EC2's
// UnauthorizedOperation and the like).
func isUnauthorized(err error) bool {
	code, _, ok := codeOf(err)
	return ok && (code == "UnauthorizedOperation" || code == "AccessDenied" || code == "AccessDeniedException")
}

// stdioTunnel carries standard input and output. It returns when either
// side ends — in particular within a second of standard input's end, once
// the remote's answer has come through (answerIdle; the AWS CLI's
// open-tunnel keeps spinning after its pipe closes).
func stdioTunnel(ctx context.Context, stdio IO, cfg awsConfig, p client.TunnelParams, warm *client.WarmTunnel) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conn, err := client.DialTunnelWarm(ctx, cfg, p, warm)
	if err != nil {
		return err
	}
	return carryStdio(stdio, conn)
}

// carryStdio carries standard input and output through an open tunnel,
// and closes it, as stdioTunnel.
func carryStdio(stdio IO, conn net.Conn) error {
	defer conn.Close()
	// OpenSSH sends its ProxyCommand SIGHUP as it exits, often before the
	// end of standard input is seen here: the same end, not a death that
	// resets the tunnel. (Under nohup it stays ignored.)
	hup := make(chan os.Signal, 1)
	if !signal.Ignored(syscall.SIGHUP) {
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	up, down := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, stdio.In)
		up <- err
	}()
	out := &lastWrite{w: stdio.Out}
	go func() {
		_, err := io.Copy(out, conn)
		down <- err
	}()
	var err error
	select {
	case <-up:
		// Standard input closed: the tunnel ends here, once what the
		// remote answers to the last of it has come through.
		var ended bool
		if ended, err = drainAnswer(out, down, hup); !ended {
			client.EndTunnel(conn, down)
		}
	case <-hup:
		client.EndTunnel(conn, down)
	case err = <-down:
	}
	if reason := client.CloseReason(err); reason != "" {
		fmt.Fprintln(stdio.Err, "kaginashi: "+reason)
		return &exitError{code: 1}
	}
	return nil
}

// After standard input ends, the remote's answer still comes through —
// the tunnel has no half-close to tell the remote, so this side waits
// instead: while bytes keep arriving, up to answerIdle apart, for at most
// answerMax. A request piped in (printf 'SSH-2.0-x\r\n', an HTTP GET)
// gets its answer, as with nc; a silent remote costs answerIdle, so the
// command still exits well within a second of its input's end (the AWS
// CLI's open-tunnel never does).
const (
	answerIdle = 400 * time.Millisecond
	answerMax  = 900 * time.Millisecond
)

// lastWrite is a writer that remembers when it last wrote.
type lastWrite struct {
	w  io.Writer
	at atomic.Int64 // UnixNano of the last write, 0 before any
}

func (l *lastWrite) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	l.at.Store(time.Now().UnixNano())
	return n, err
}

// drainAnswer lets the remote's answer through after standard input
// ended (see answerIdle): it returns when the remote is quiet for
// answerIdle, after answerMax, on SIGHUP — or when the tunnel ends on its
// own (ended, with its copy's error).
func drainAnswer(out *lastWrite, down <-chan error, hup <-chan os.Signal) (ended bool, err error) {
	start := time.Now()
	deadline := time.NewTimer(answerMax)
	defer deadline.Stop()
	tick := time.NewTicker(answerIdle / 5)
	defer tick.Stop()
	for {
		select {
		case err := <-down:
			return true, err
		case <-hup:
			return false, nil
		case <-deadline.C:
			return false, nil
		case now := <-tick.C:
			last := start
			if at := out.at.Load(); at > start.UnixNano() {
				last = time.Unix(0, at)
			}
			if now.Sub(last) >= answerIdle {
				return false, nil
			}
		}
	}
}

func listenTunnel(ctx context.Context, stdio IO, cfg awsConfig, p client.TunnelParams, tf tunnelFlags) error {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(tf.localPort)))
	if err != nil {
		p := &problem{what: fmt.Sprintf("cannot listen on 127.0.0.1:%d: %v", tf.localPort, err)}
		if errors.Is(err, syscall.EADDRINUSE) {
			p = &problem{what: fmt.Sprintf("127.0.0.1:%d is in use by another program", tf.localPort), fix: "pick another --local-port"}
		}
		return &exitError{code: 1, err: p}
	}
	defer ln.Close()
	fmt.Fprintf(stdio.Err, "Listening on %s for %s:%d; Ctrl-C to stop.\n", ln.Addr(), p.InstanceID, p.RemotePort)
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	slots := make(chan struct{}, max(tf.maxConns, 1))
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		lc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		select {
		case slots <- struct{}{}:
		default:
			fmt.Fprintf(stdio.Err, "kaginashi: refusing a connection: %d tunnels are open (--max-websocket-connections)\n", tf.maxConns)
			lc.Close()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			defer lc.Close()
			tctx, cancel := context.WithCancel(ctx)
			defer cancel()
			conn, err := client.DialTunnel(tctx, cfg, p)
			if err != nil {
				fmt.Fprintf(stdio.Err, "kaginashi: %v\n", explain(err, explainCtx{instance: p.InstanceID, port: p.RemotePort, endpoint: aws.ToString(cfg.BaseEndpoint), portFlag: "--remote-port"}))
				return
			}
			defer conn.Close()
			up, down := make(chan error, 1), make(chan error, 1)
			go func() { _, err := io.Copy(conn, lc); up <- err }()
			go func() { _, err := io.Copy(lc, conn); down <- err }()
			select {
			case <-up: // the local client closed: the tunnel ends here
				client.EndTunnel(conn, down)
			case err := <-down:
				// A tunnel the server ended with a reason (its maximum
				// duration, the target lost) is told, as in the stdio
				// mode: the local client sees only its connection end.
				if reason := client.CloseReason(err); reason != "" {
					fmt.Fprintf(stdio.Err, "kaginashi: %s\n", reason)
				}
			}
		}()
	}
}

// awsConfig is the AWS SDK configuration the client commands share.
type awsConfig = aws.Config
