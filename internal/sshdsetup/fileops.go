package sshdsetup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// fileMeta is what Setup keeps of a file it rewrites.
type fileMeta struct {
	mode     fs.FileMode
	uid, gid int
}

func metaOf(fi os.FileInfo) fileMeta {
	m := fileMeta{mode: fi.Mode().Perm(), uid: -1, gid: -1}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		m.uid, m.gid = int(st.Uid), int(st.Gid)
	}
	return m
}

// writeAtomic replaces real with data: a temporary file in the same
// directory, given mode and owner, synced, then renamed over real; the
// directory is synced too.
func writeAtomic(real string, data []byte, m fileMeta) (err error) {
	dir := filepath.Dir(real)
	f, err := os.CreateTemp(dir, "."+filepath.Base(real)+".kaginashi-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Chmod(m.mode); err != nil {
		return err
	}
	if m.uid >= 0 {
		if err = f.Chown(m.uid, m.gid); err != nil && !(errors.Is(err, fs.ErrPermission) && os.Geteuid() != 0) {
			return fmt.Errorf("keep owner %d:%d of %s: %w", m.uid, m.gid, real, err)
		}
		err = nil
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, real); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// change is one planned file operation, on a logical path.
type change struct {
	path    string
	old     []byte // nil with !existed
	existed bool
	new     []byte // nil: delete the file
	meta    fileMeta
}

// transaction applies changes and can undo them.
type transaction struct {
	root    string
	undo    []func() error
	created []string // directories made, deepest last
}

func (t *transaction) real(p string) string {
	if t.root == "" {
		return p
	}
	return filepath.Join(t.root, p)
}

func (t *transaction) mkdir(p string, m fileMeta) error {
	r := t.real(p)
	if err := os.Mkdir(r, m.mode); err != nil {
		return err
	}
	if err := os.Chmod(r, m.mode); err != nil {
		return err
	}
	if m.uid >= 0 && os.Geteuid() == 0 {
		if err := os.Chown(r, m.uid, m.gid); err != nil {
			return err
		}
	}
	t.undo = append(t.undo, func() error { return os.Remove(r) })
	return nil
}

func (t *transaction) rmdir(p string) error {
	r := t.real(p)
	fi, err := os.Stat(r)
	if err != nil {
		return err
	}
	m := metaOf(fi)
	if err := os.Remove(r); err != nil {
		return err
	}
	t.undo = append(t.undo, func() error { return t.restoreDir(r, m) })
	return nil
}

func (t *transaction) restoreDir(r string, m fileMeta) error {
	if err := os.Mkdir(r, m.mode); err != nil {
		return err
	}
	os.Chmod(r, m.mode)
	if m.uid >= 0 && os.Geteuid() == 0 {
		os.Chown(r, m.uid, m.gid)
	}
	return nil
}

func (t *transaction) apply(c change) error {
	r := t.real(c.path)
	if target, err := filepath.EvalSymlinks(r); err == nil {
		r = target // rewrite the file a symlinked sshd_config points to
	}
	if c.new == nil {
		if err := os.Remove(r); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		syncDir(filepath.Dir(r))
	} else if err := writeAtomic(r, c.new, c.meta); err != nil {
		return err
	}
	t.undo = append(t.undo, func() error {
		if !c.existed {
			err := os.Remove(r)
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		return writeAtomic(r, c.old, c.meta)
	})
	return nil
}

// rollback undoes everything applied, newest first.
func (t *transaction) rollback() error {
	var errs []error
	for i := len(t.undo) - 1; i >= 0; i-- {
		if err := t.undo[i](); err != nil {
			errs = append(errs, err)
		}
	}
	t.undo = nil
	return errors.Join(errs...)
}
