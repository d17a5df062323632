// Package atomicfile replaces a file so that a crash or a full disk
// leaves either the old content or the new, never a mix: the CA key, the
// staff accounts, the console's exceptions and the e-mail digest state
// are all written this way.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces path with b, mode perm: a temporary file beside it (given
// perm before any byte is written, so a secret is never readable by others
// even briefly), fsync, rename over path, then fsync of the directory so
// the rename itself survives a crash. On error path is left as it was.
func Write(path string, b []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // a no-op once renamed
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
