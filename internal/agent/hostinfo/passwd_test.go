package hostinfo

import (
	"strings"
	"testing"
)

func TestPasswdHasUser(t *testing.T) {
	const passwd = `root:x:0:0:root:/root:/bin/bash
# admin:x:1000:1000::/home/admin:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
ec2-user:x:1000:1000:EC2 Default User:/home/ec2-user:/bin/bash
windows-user:x:1001:1001::/home/w:/bin/sh` + "\r" + `
short:x:1002
:x:1003:1003::/home/empty:/bin/sh
+nisonly::::::
+@sysadmins::::::
-fedora::::::
fedora:x:1004:1004::/home/fedora:/bin/bash
+
centos-extra:x:1005:1005::/home/c:/bin/sh
ubuntux:x:1006:1006::/home/u:/bin/sh
last:x:1007:1007::/home/last:/bin/sh`
	cases := map[string]bool{
		"root":         true,
		"ec2-user":     true,
		"windows-user": true,  // CRLF line
		"admin":        false, // commented out
		"short":        false, // malformed
		"":             false,
		"nisonly":      false, // only NIS could say
		"@sysadmins":   false,
		"fedora":       true,  // -fedora excludes NIS's, not the local entry
		"centos":       false, // prefix of another name
		"ubuntu":       false,
		"last":         true, // no trailing newline
		"x":            false,
	}
	for name, want := range cases {
		got, err := passwdHasUser(strings.NewReader(passwd), name)
		if err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", name, got, err, want)
		}
	}
}

func TestPasswdLongLines(t *testing.T) {
	long := "gecos" + strings.Repeat("x", 10000)
	in := "bob:x:1:1:" + long + ":/home/bob:/bin/sh\n" + // over-long: skipped
		strings.Repeat("y", 9000) + "admin:x:2:2::/home/admin:/bin/sh\n" + // admin is not this line's name
		"ec2-user:x:3:3::/home/e:/bin/sh\n"
	for name, want := range map[string]bool{"bob": false, "admin": false, "ec2-user": true} {
		got, err := passwdHasUser(strings.NewReader(in), name)
		if err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", name, got, err, want)
		}
	}
}

func TestUserExistsFiles(t *testing.T) {
	root := t.TempDir()
	if ok, err := userExists(root, "admin"); ok || err != nil {
		t.Fatalf("missing passwd: %v %v", ok, err)
	}
	put(t, root, "/etc/passwd", "admin:x:1000:1000::/home/admin:/bin/bash\n", 0o644)
	if ok, err := userExists(root, "admin"); !ok || err != nil {
		t.Fatalf("admin: %v %v", ok, err)
	}
	if ok, err := userExists(root, ""); ok || err != nil {
		t.Fatalf("empty name: %v %v", ok, err)
	}
}
