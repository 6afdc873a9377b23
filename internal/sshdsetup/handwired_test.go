package sshdsetup

import (
	"context"
	"testing"
)

// TestInspectHandWired: sshd wired to the agent by an admin's own lines
// (configuration management) counts as configured; anything else does not.
func TestInspectHandWired(t *testing.T) {
	for _, c := range []struct {
		name, lines string
		want        bool
	}{
		{"global", "AuthorizedKeysCommand /usr/local/bin/kaginashi-agent authorized-keys %u %f\nAuthorizedKeysCommandUser kaginashi\n", true},
		{"with data dir", "AuthorizedKeysCommand /opt/k/kaginashi-agent authorized-keys --data-dir /srv/k %u %f\nAuthorizedKeysCommandUser nobody\n", true},
		{"the small binary", "AuthorizedKeysCommand /opt/k/kaginashi-authorized-keys authorized-keys --data-dir /srv/k %u %f\nAuthorizedKeysCommandUser nobody\n", true},
		{"the small binary without the subcommand word", "AuthorizedKeysCommand /opt/k/kaginashi-authorized-keys --data-dir /srv/k %u %f\nAuthorizedKeysCommandUser nobody\n", false},
		{"no command user", "AuthorizedKeysCommand /usr/local/bin/kaginashi-agent authorized-keys %u %f\n", false},
		{"another subcommand", "AuthorizedKeysCommand /usr/local/bin/kaginashi-agent run %u\nAuthorizedKeysCommandUser nobody\n", false},
		{"another program", "AuthorizedKeysCommand /usr/bin/sss_ssh_authorizedkeys %u\nAuthorizedKeysCommandUser nobody\n", false},
		{"only in a Match block", "Match Group admins\n\tAuthorizedKeysCommand /usr/local/bin/kaginashi-agent authorized-keys %u %f\n\tAuthorizedKeysCommandUser kaginashi\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := newTree(t, "debian-12")
			tr.appendTo("/etc/ssh/sshd_config", c.lines)
			st, err := Inspect(tr.opts())
			if err != nil {
				t.Fatal(err)
			}
			if st.Configured != c.want || st.HandWired != c.want || st.Mechanism != "" {
				t.Fatalf("configured %v, hand-wired %v, mechanism %q; want configured and hand-wired %v", st.Configured, st.HandWired, st.Mechanism, c.want)
			}
		})
	}
	// Setup's own lines are not "by hand".
	tr := newTree(t, "debian-12")
	if _, err := Setup(context.Background(), tr.opts()); err != nil {
		t.Fatal(err)
	}
	st, err := Inspect(tr.opts())
	if err != nil || !st.Configured || st.HandWired {
		t.Fatalf("after Setup: %v configured %v hand-wired %v", err, st.Configured, st.HandWired)
	}
}
