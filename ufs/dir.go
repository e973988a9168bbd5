package ufs

import (
	"fmt"
	"strings"

	"github.com/ufs2/ufs2/internal/bcache"
	"github.com/ufs2/ufs2/ondisk"
)

// Path limits (sys/syslimits.h, sys/param.h).
const (
	MaxPathLen  = 1024 // PATH_MAX: bytes of a path the engine resolves
	MaxSymlinks = 32   // MAXSYMLINKS: symlinks followed in one lookup

	// MaxSymlinkLen bounds a symlink target: shorter than Linux's
	// PATH_MAX (4096), so the 4095-byte targets Linux programs may make
	// fit. FreeBSD's own bound is MAXPATHLEN (1024): a FreeBSD kernel
	// reads a longer target as an error (ENAMETOOLONG when following it),
	// so targets of 1024 to 4095 bytes are for Linux readers only.
	MaxSymlinkLen = 4096
)

// Dirent is one directory entry.
type Dirent struct {
	Name string
	Ino  ondisk.Ino
	Type uint8 // d_type: ondisk.DTReg, ondisk.DTDir, ...
	Off  int64 // byte offset of the entry in the directory
	Next int64 // offset to resume reading after this entry (ReadDirAt)
}

// fileBlock returns the cache buffer holding logical block lbn of ip (its
// allocated size: a full block or the tail's fragments). A hole gives a nil
// buffer. The caller holds ip.mu and must Release the buffer.
func (fs *FS) fileBlock(ip *Inode, lbn ondisk.Lbn) (*bcache.Buf, error) {
	p, err := fs.bmap(ip, lbn)
	if err != nil || p == 0 {
		return nil, err
	}
	size := fs.blkSize(ip.din.Size, lbn)
	b, err := fs.cache.Get(fs.sb.FragOffset(p), int(size))
	if err != nil {
		return nil, fmt.Errorf("inode %d: block %d: %w", ip.ino, lbn, err)
	}
	return b, nil
}

// dirBlockEntries calls fn for each used entry of directory block lbn of
// ip, whose data is blk (its allocated size), with the entry's offset in the
// directory. Entries are checked with ondisk.DecodeDirect and their inode
// numbers against the filesystem. It stops when fn returns false and
// reports whether it did.
func (fs *FS) dirBlockEntries(ip *Inode, lbn ondisk.Lbn, blk []byte, fn func(off int64, d ondisk.Direct) bool) (bool, error) {
	base := int64(lbn) * int64(fs.sb.Bsize)
	n := min(int64(len(blk)), int64(ip.din.Size)-base)
	stopped := false
	for c := int64(0); c+ondisk.DirBlkSize <= n && !stopped; c += ondisk.DirBlkSize {
		var bad error
		err := ondisk.DirChunkEntries(blk[c:c+ondisk.DirBlkSize], func(o int, d ondisk.Direct) bool {
			if d.Ino == 0 {
				return true
			}
			if d.Ino >= fs.maxIno {
				bad = corruptf("directory %d: entry %q at offset %d names inode %d, past the last (%d)", ip.ino, d.Name, base+c+int64(o), d.Ino, fs.maxIno-1)
				return false
			}
			if !fn(base+c+int64(o), d) {
				stopped = true
				return false
			}
			return true
		})
		if err != nil {
			return false, corruptf("directory %d: chunk at offset %d: %v", ip.ino, base+c, err)
		}
		if bad != nil {
			return false, bad
		}
	}
	return stopped, nil
}

// openDir opens ino and checks that it is a directory.
func (fs *FS) openDir(ino ondisk.Ino) (*Inode, error) {
	ip, err := fs.OpenInode(ino)
	if err != nil {
		return nil, err
	}
	ip.mu.RLock()
	isDir := ip.din.IsDir()
	ip.mu.RUnlock()
	if !isDir {
		ip.Release()
		return nil, fmt.Errorf("%w: inode %d", ErrNotDir, ino)
	}
	return ip, nil
}

// ReadDir calls fn for each entry of directory dir, "." and ".." included,
// in on-disk order, until fn returns false.
func (fs *FS) ReadDir(dir ondisk.Ino, fn func(Dirent) bool) error {
	return fs.ReadDirAt(dir, 0, fn)
}

// ReadDirAt is ReadDir starting at the entry at byte offset off (0, or a
// Dirent.Next from an earlier call). The directory is not locked while fn
// runs: fn may call back into the FS.
func (fs *FS) ReadDirAt(dir ondisk.Ino, off int64, fn func(Dirent) bool) error {
	ip, err := fs.openDir(dir)
	if err != nil {
		return err
	}
	defer ip.Release()
	if off < 0 {
		return fmt.Errorf("%w: directory %d: negative offset %d", ErrInvalid, dir, off)
	}
	var batch []Dirent
	for lbn := fs.sb.Lblkno(off); ; lbn++ {
		batch = batch[:0]
		done, err := fs.readDirBlock(ip, lbn, func(o int64, d ondisk.Direct) bool {
			if o >= off {
				batch = append(batch, Dirent{Name: string(d.Name), Ino: d.Ino, Type: d.Type, Off: o, Next: o + int64(d.Reclen)})
			}
			return true
		})
		if err != nil {
			return err
		}
		for _, e := range batch {
			if !fn(e) {
				return nil
			}
		}
		if done {
			return nil
		}
	}
}

// readDirBlock runs dirBlockEntries on block lbn of ip under ip's lock. It
// returns done when lbn is past the end of the directory.
func (fs *FS) readDirBlock(ip *Inode, lbn ondisk.Lbn, fn func(off int64, d ondisk.Direct) bool) (done bool, err error) {
	ip.mu.RLock()
	defer ip.mu.RUnlock()
	if int64(lbn)*int64(fs.sb.Bsize) >= int64(ip.din.Size) {
		return true, nil
	}
	b, err := fs.fileBlock(ip, lbn)
	if err != nil {
		return false, err
	}
	if b == nil {
		return false, corruptf("directory %d: block %d is a hole", ip.ino, lbn)
	}
	defer fs.cache.Release(b)
	b.RLock()
	defer b.RUnlock()
	_, err = fs.dirBlockEntries(ip, lbn, b.Data(), fn)
	return false, err
}

// checkName rejects names no directory entry can have.
func checkName(name string) error {
	switch {
	case len(name) > ondisk.MaxNameLen:
		return fmt.Errorf("%w: %d bytes", ErrNameTooLong, len(name))
	case name == "" || strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("%w: bad file name %q", ErrInvalid, name)
	}
	return nil
}

// Lookup returns the inode number of name in directory dir.
func (fs *FS) Lookup(dir ondisk.Ino, name string) (ondisk.Ino, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	ip, err := fs.openDir(dir)
	if err != nil {
		return 0, err
	}
	defer ip.Release()
	ip.mu.RLock()
	defer ip.mu.RUnlock()
	return fs.lookupLocked(ip, name)
}

// lookupLocked looks name up in directory ip: through its dirhash when it
// is large, else by a scan. The caller holds ip.mu.
func (fs *FS) lookupLocked(ip *Inode, name string) (ondisk.Ino, error) {
	s, err := fs.dirSearch(ip, name, false)
	if err != nil {
		return 0, err
	}
	if !s.found {
		return 0, &notFoundError{name, ip.ino}
	}
	return s.ino, nil
}

// notFoundError is ErrNotFound for a name not in a directory, with its
// message made only when printed: lookups of names that do not exist are
// common (every create asks first; so do the kernel's negative lookups
// through FUSE), and formatting the message each time cost more than the
// lookup of a name in a small directory.
type notFoundError struct {
	name string
	dir  ondisk.Ino
}

func (e *notFoundError) Error() string {
	return fmt.Sprintf("%v: %q in directory %d", ErrNotFound, e.name, e.dir)
}

func (e *notFoundError) Unwrap() error { return ErrNotFound }

// Namei resolves path from the root ("/a/b" and "a/b" alike) and returns
// its inode number. Symlinks in intermediate components are followed
// (absolute targets from the root); a symlink as the last component is not
// (lstat). A path ending in "/" must name a directory and follows a final
// symlink.
func (fs *FS) Namei(path string) (ondisk.Ino, error) { return fs.namei(path, false) }

// NameiFollow is Namei that also follows a final symlink (stat).
func (fs *FS) NameiFollow(path string) (ondisk.Ino, error) { return fs.namei(path, true) }

func (fs *FS) namei(path string, follow bool) (ondisk.Ino, error) {
	if len(path) >= MaxPathLen {
		return 0, fmt.Errorf("%w: path of %d bytes", ErrNameTooLong, len(path))
	}
	if strings.HasSuffix(path, "/") {
		path += "."
		follow = true
	}
	comps := strings.Split(path, "/")
	cur := fs.Root()
	links := 0
	for len(comps) > 0 {
		c := comps[0]
		comps = comps[1:]
		if c == "" {
			continue
		}
		next, err := fs.lookupComponent(cur, c)
		if err != nil {
			return 0, err
		}
		st, err := fs.Stat(next)
		if err != nil {
			return 0, err
		}
		if st.Type() == ondisk.IFLNK && (len(comps) > 0 || follow) {
			links++
			if links > MaxSymlinks {
				return 0, fmt.Errorf("%w: %s", ErrLoop, path)
			}
			target, err := fs.Readlink(next)
			if err != nil {
				return 0, err
			}
			if strings.HasPrefix(target, "/") {
				cur = fs.Root()
			}
			rest := strings.Split(target, "/")
			if len(rest)+len(comps) > MaxPathLen {
				return 0, fmt.Errorf("%w: %s", ErrNameTooLong, path)
			}
			comps = append(rest, comps...)
			continue
		}
		cur = next
	}
	return cur, nil
}

// lookupComponent looks up one path component, "." included (which must
// be looked up in a directory, so "file/." fails with ErrNotDir).
func (fs *FS) lookupComponent(dir ondisk.Ino, name string) (ondisk.Ino, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	ip, err := fs.openDir(dir)
	if err != nil {
		return 0, err
	}
	defer ip.Release()
	ip.mu.RLock()
	defer ip.mu.RUnlock()
	if name == "." {
		return dir, nil
	}
	if name == ".." && dir == fs.Root() {
		return dir, nil
	}
	ino, err := fs.lookupLocked(ip, name)
	if err != nil {
		return 0, err
	}
	if ino < ondisk.RootIno {
		return 0, corruptf("directory %d: entry %q names inode %d", dir, name, ino)
	}
	return ino, nil
}

// isFastLink reports whether a symlink's target is stored in the inode
// (its length is under fs_maxsymlinklen).
func (fs *FS) isFastLink(d *ondisk.Dinode) bool {
	return d.Type() == ondisk.IFLNK && d.Size < uint64(fs.sb.Maxsymlinklen)
}

// Readlink returns the target of symlink ino: from the inode for a fast
// symlink, from its data block otherwise.
func (fs *FS) Readlink(ino ondisk.Ino) (string, error) {
	ip, err := fs.OpenInode(ino)
	if err != nil {
		return "", err
	}
	defer ip.Release()
	ip.mu.RLock()
	defer ip.mu.RUnlock()
	d := &ip.din
	if d.Type() != ondisk.IFLNK {
		return "", fmt.Errorf("%w: inode %d", ErrNotSymlink, ino)
	}
	if target, ok := d.ShortLink(fs.sb); ok {
		return string(target), nil
	}
	if d.Size >= MaxSymlinkLen {
		return "", corruptf("symlink %d: target of %d bytes", ino, d.Size)
	}
	buf := make([]byte, d.Size)
	if _, err := fs.readInode(ip, buf, 0); err != nil {
		return "", err
	}
	if d.Size > 0 && d.Db[0] == 0 {
		return "", corruptf("symlink %d: %d-byte target but no data block", ino, d.Size)
	}
	return string(buf), nil
}
