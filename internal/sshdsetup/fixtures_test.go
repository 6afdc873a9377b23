package sshdsetup

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestFixtures runs Setup, Setup again, and Remove on every distribution's
// stock configuration.
func TestFixtures(t *testing.T) {
	for _, d := range distros {
		t.Run(d.dir, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			tr := newTree(t, d.dir)
			o := tr.opts()
			original := tr.snapshot()
			mainBefore := tr.read("/etc/ssh/sshd_config")

			st, err := Inspect(o)
			if err != nil {
				t.Fatalf("Inspect: %v", err)
			}
			if st.Planned != d.mech || st.Configured || st.Mechanism != "" || len(st.Conflicts) != 0 {
				t.Fatalf("Inspect before Setup: planned %q configured %v mechanism %q conflicts %v; want planned %q", st.Planned, st.Configured, st.Mechanism, st.Conflicts, d.mech)
			}

			// Dry run: a plan and a diff, no change at all.
			rep, err := Setup(ctx, withDryRun(o))
			if err != nil {
				t.Fatalf("dry run: %v", err)
			}
			if !rep.DryRun || rep.Changed || rep.Mechanism != d.mech || !strings.Contains(rep.Diff, "+AuthorizedKeysCommand "+wantCmd) ||
				!strings.Contains(rep.String(), "Dry run") {
				t.Fatalf("dry run report:\n%s", rep)
			}
			sameSnapshot(t, "after the dry run", original, tr.snapshot())
			if tr.exists("/var/lib/kaginashi-agent") {
				t.Fatal("the dry run created the state directory")
			}
			if v, r, u := tr.counts(); v+r+u != 0 {
				t.Fatalf("the dry run validated %d, reloaded %d, added %d users", v, r, u)
			}

			rep, err = Setup(ctx, o)
			if err != nil {
				t.Fatalf("Setup: %v\n%v", err, rep)
			}
			if !rep.Changed || rep.Mechanism != d.mech || !rep.Validated || !rep.UserCreated {
				t.Fatalf("Setup report: %+v", rep)
			}
			if v, r, u := tr.counts(); v != 1 || r != 1 || u != 1 {
				t.Fatalf("Setup validated %d, reloaded %d, added %d users; want 1 each", v, r, u)
			}
			main := tr.read("/etc/ssh/sshd_config")
			dropIn := "/etc/ssh/sshd_config.d/" + DropInName
			switch d.mech {
			case MechanismDropIn:
				if !bytes.Equal(main, mainBefore) {
					t.Fatal("the drop-in mechanism changed the main file")
				}
				got := string(tr.read(dropIn))
				if !strings.Contains(got, "\nAuthorizedKeysCommand "+wantCmd+"\nAuthorizedKeysCommandUser kaginashi\n") {
					t.Fatalf("drop-in:\n%s", got)
				}
			case MechanismBlock:
				if tr.exists(dropIn) {
					t.Fatal("the block mechanism wrote a drop-in")
				}
				if !bytes.Contains(main, []byte("\nAuthorizedKeysCommand "+wantCmd+"\nAuthorizedKeysCommandUser kaginashi\n"+endMarker+"\n")) {
					t.Fatalf("main file has no block:\n%s", main)
				}
				// The block comes before the first active line.
				cfg, err := parseConfig(rootFS{tr.root}, "/etc/ssh/sshd_config")
				if err != nil {
					t.Fatal(err)
				}
				if first := cfg.Directives[0]; !first.Managed {
					t.Fatalf("first directive is %s at %s, not kaginashi's", first.Keyword, first.where())
				}
			}

			st, err = Inspect(o)
			if err != nil {
				t.Fatal(err)
			}
			if !st.Configured || st.Mechanism != d.mech || st.AuthorizedKeysCommand.Value != wantCmd ||
				firstArg(st.AuthorizedKeysCommandUser) != "kaginashi" || !st.Recorded || len(st.Conflicts) != 0 {
				t.Fatalf("Inspect after Setup: %+v", st)
			}
			if d.mech == MechanismDropIn && st.DropInPath != dropIn {
				t.Fatalf("drop-in path %q", st.DropInPath)
			}

			// Again: nothing to do.
			afterSetup := tr.snapshot()
			rep, err = Setup(ctx, o)
			if err != nil || rep.Changed || rep.UserCreated {
				t.Fatalf("second Setup: err %v, report %+v", err, rep)
			}
			if rep.Diff != "" {
				t.Fatalf("second Setup has a diff:\n%s", rep.Diff)
			}
			sameSnapshot(t, "after the second Setup", afterSetup, tr.snapshot())
			if v, r, u := tr.counts(); v != 1 || r != 1 || u != 1 {
				t.Fatalf("second Setup validated/reloaded/added users: %d %d %d", v, r, u)
			}

			rep, err = Remove(ctx, o)
			if err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if !rep.Changed || !rep.ByteIdentical {
				t.Fatalf("Remove report: %+v", rep)
			}
			sameSnapshot(t, "after Remove", original, tr.snapshot())
			if tr.exists(recordPath(&o, ".json")) || tr.exists(recordPath(&o, ".orig")) {
				t.Fatal("Remove left its record")
			}
			st, err = Inspect(o)
			if err != nil || st.Configured || st.Mechanism != "" {
				t.Fatalf("Inspect after Remove: %v %+v", err, st)
			}

			rep, err = Remove(ctx, o)
			if err != nil || rep.Changed {
				t.Fatalf("second Remove: %v %+v", err, rep)
			}
			sameSnapshot(t, "after the second Remove", original, tr.snapshot())
		})
	}
}

func withDryRun(o Options) Options {
	o.DryRun = true
	return o
}
