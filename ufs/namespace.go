package ufs

import (
	"fmt"
	"slices"

	"github.com/ufs2/ufs2/ondisk"
)

// The namespace operations: create, mknod, mkdir, symlink, link, unlink
// and rmdir, with FreeBSD's rules (ufs_makeinode, ufs_mkdir, ufs_symlink,
// ufs_link, ufs_remove, ufs_rmdir) and their write ordering without soft
// updates: a new or newly linked inode is written before the entry naming
// it (InodeBeforeEntry), the directory block with the entry is written at
// once (EntryAdded); a removed entry is written (EntryRemoved) before the
// link count it held is lowered.

// lockInodes locks the distinct inodes of ips exclusively in ascending
// inode number and returns the function that unlocks them.
func lockInodes(ips ...*Inode) func() {
	set := make([]*Inode, 0, len(ips))
	for _, ip := range ips {
		if ip != nil && !slices.Contains(set, ip) {
			set = append(set, ip)
		}
	}
	slices.SortFunc(set, func(a, b *Inode) int {
		switch {
		case a.ino < b.ino:
			return -1
		case a.ino > b.ino:
			return 1
		}
		return 0
	})
	for _, ip := range set {
		ip.mu.Lock()
	}
	return func() {
		for i := len(set) - 1; i >= 0; i-- {
			set[i].mu.Unlock()
		}
	}
}

// checkDirForChange fails unless dp, locked, is a live directory.
func checkDirForChange(dp *Inode) error {
	switch {
	case dp.gone.Load() || dp.din.Mode == 0:
		return fmt.Errorf("%w: directory %d was removed", ErrNotFound, dp.ino)
	case !dp.din.IsDir():
		return fmt.Errorf("%w: inode %d", ErrNotDir, dp.ino)
	case dp.din.Nlink <= 0:
		return fmt.Errorf("%w: directory %d was removed", ErrNotFound, dp.ino)
	}
	return nil
}

// checkNewName checks a name an operation is about to create.
func checkNewName(dir ondisk.Ino, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w: %q in directory %d", ErrExist, name, dir)
	}
	return nil
}

// canAddEntry fails when directory dp may not get new entries: an
// immutable directory refuses writes (ufs_access's VWRITE check).
func canAddEntry(dp *Inode) error {
	if dp.din.Flags&flagImmutable != 0 {
		return fmt.Errorf("%w: directory %d is immutable", ErrPerm, dp.ino)
	}
	return nil
}

// Create makes a regular file name in directory dir with permission bits
// mode (the file type bits are ignored) and owner uid:gid, and returns its
// inode number. An existing name gives ErrExist.
func (fs *FS) Create(dir ondisk.Ino, name string, mode uint16, uid, gid uint32) (ondisk.Ino, error) {
	return fs.makeInode(dir, name, ondisk.IFREG|mode&^ondisk.IFMT, uid, gid, nil)
}

// Mknod makes a special file: mode carries the type (ondisk.IFIFO,
// IFSOCK, IFCHR, IFBLK; IFREG makes a regular file) and permission bits;
// rdev, FreeBSD's dev_t encoding, is stored in di_rdev for device nodes.
func (fs *FS) Mknod(dir ondisk.Ino, name string, mode uint16, uid, gid uint32, rdev uint64) (ondisk.Ino, error) {
	switch mode & ondisk.IFMT {
	case ondisk.IFCHR, ondisk.IFBLK:
		return fs.makeInode(dir, name, mode, uid, gid, func(ip *Inode) error {
			ip.din.Db[0] = ondisk.Frag(rdev)
			return nil
		})
	case ondisk.IFIFO, ondisk.IFSOCK, ondisk.IFREG:
		return fs.makeInode(dir, name, mode, uid, gid, nil)
	}
	return 0, fmt.Errorf("%w: mknod of file type 0%o", ErrInvalid, mode&ondisk.IFMT)
}

// Mkdir makes directory name in dir, with "." and ".." in its first
// chunk, link count 2, and the parent's link count one higher.
func (fs *FS) Mkdir(dir ondisk.Ino, name string, mode uint16, uid, gid uint32) (ondisk.Ino, error) {
	return fs.makeInode(dir, name, ondisk.IFDIR|mode&^ondisk.IFMT, uid, gid, nil)
}

// Symlink makes symbolic link name in dir pointing at target: a fast
// symlink (the target in the inode) when it is shorter than
// fs_maxsymlinklen, else a slow one (the target in a data block). Its
// mode is 0777. Targets up to MaxSymlinkLen-1 bytes are taken (see
// MaxSymlinkLen for what FreeBSD makes of those over 1023).
func (fs *FS) Symlink(dir ondisk.Ino, name, target string, uid, gid uint32) (ondisk.Ino, error) {
	switch {
	case target == "":
		return 0, fmt.Errorf("%w: empty symlink target", ErrInvalid)
	case len(target) >= MaxSymlinkLen:
		return 0, fmt.Errorf("%w: symlink target of %d bytes (at most %d)", ErrNameTooLong, len(target), MaxSymlinkLen-1)
	}
	return fs.makeInode(dir, name, ondisk.IFLNK|0o777, uid, gid, func(ip *Inode) error {
		if len(target) < int(fs.sb.Maxsymlinklen) {
			ip.din.SetShortLink([]byte(target))
			return nil
		}
		_, err := fs.writeLocked(ip, []byte(target), 0, int64(len(target)), false)
		return err
	})
}

// makeInode is ufs_makeinode (and ufs_mkdir): allocate, set up, write the
// inode, then enter its name. init finishes a non-directory inode.
func (fs *FS) makeInode(dir ondisk.Ino, name string, mode uint16, uid, gid uint32, init func(*Inode) error) (ondisk.Ino, error) {
	if err := fs.writable(); err != nil {
		return 0, err
	}
	if err := checkNewName(dir, name); err != nil {
		return 0, err
	}
	dp, err := fs.iget(dir)
	if err != nil {
		return 0, err
	}
	defer dp.Release()
	dp.mu.Lock()
	ino, err := fs.makeInodeLocked(dp, name, mode, uid, gid, init)
	dp.mu.Unlock()
	if err == nil {
		fs.maybeFlush()
	}
	return ino, err
}

func (fs *FS) makeInodeLocked(dp *Inode, name string, mode uint16, uid, gid uint32, init func(*Inode) error) (ondisk.Ino, error) {
	if err := checkDirForChange(dp); err != nil {
		return 0, err
	}
	s, err := fs.dirSearch(dp, name, true)
	if err != nil {
		return 0, fs.corrupt(err)
	}
	if s.found {
		return 0, fmt.Errorf("%w: %q in directory %d", ErrExist, name, dp.ino)
	}
	if err := canAddEntry(dp); err != nil {
		return 0, err
	}
	isDir := mode&ondisk.IFMT == ondisk.IFDIR
	if isDir && dp.din.Nlink >= ondisk.LinkMax {
		return 0, fmt.Errorf("%w: directory %d has %d links", ErrTooManyLinks, dp.ino, dp.din.Nlink)
	}
	now := fs.stamp()
	ip, err := fs.ialloc(dp, mode, uid, gid, now)
	if err != nil {
		return 0, err
	}
	defer ip.Release()
	defer ip.mu.Unlock()
	undo := func(err error) (ondisk.Ino, error) {
		ip.din.Nlink = 0
		if ferr := fs.ifree(ip); ferr != nil {
			fs.log.Error("undoing an inode allocation", "ino", ip.ino, "err", ferr)
		}
		return 0, err
	}
	ip.din.Nlink = 1
	if isDir {
		// The parent's new link ("..") is on disk first, then the new
		// directory's first block, then its inode (ufs_mkdir).
		dp.din.Nlink++
		now.setC(&dp.din)
		if err := fs.iupdate(dp, orderInodeBeforeEnt); err != nil {
			dp.din.Nlink--
			return undo(err)
		}
		ip.din.Nlink = 2
		if err := fs.initDir(ip, dp.ino); err != nil {
			dp.din.Nlink--
			fs.iupdate(dp, orderDelayed)
			return undo(err)
		}
	} else if init != nil {
		if err := init(ip); err != nil {
			return undo(err)
		}
	}
	if err := fs.iupdate(ip, orderInodeBeforeEnt); err != nil {
		return undo(err)
	}
	if _, err := fs.direnter(dp, s, name, ip.ino, ondisk.DTypeFromMode(mode), isDir, false, now); err != nil {
		if isDir {
			dp.din.Nlink--
			fs.iupdate(dp, orderDelayed)
		}
		return undo(err)
	}
	return ip.ino, nil
}

// initDir gives new directory ip its first chunk ("." and ".."), written
// before the inode that points at it (BlockInitialised).
func (fs *FS) initDir(ip *Inode, parent ondisk.Ino) error {
	addr, size, _, err := fs.balloc(ip, 0, ondisk.DirBlkSize)
	if err != nil {
		return err
	}
	b, err := fs.newBuf(addr, size)
	if err != nil {
		return err
	}
	defer fs.cache.Release(b)
	b.Lock()
	err = dirTemplate(b.Data()[:ondisk.DirBlkSize], ip.ino, parent)
	if err == nil && fs.sd != nil {
		dirEmptyChunks(b.Data(), ondisk.DirBlkSize)
	}
	if err == nil {
		err = fs.cache.MarkDirty(b)
	}
	b.Unlock()
	if err != nil {
		return err
	}
	ip.din.Size = ondisk.DirBlkSize
	return fs.order.BlockInitialised(ip.ino, b)
}

// Link makes name in directory dir a new link to inode ino (not a
// directory: ErrPerm). Past UFS_LINK_MAX links: ErrTooManyLinks.
func (fs *FS) Link(ino, dir ondisk.Ino, name string) error {
	if err := fs.writable(); err != nil {
		return err
	}
	if err := checkNewName(dir, name); err != nil {
		return err
	}
	ip, err := fs.iget(ino)
	if err != nil {
		return err
	}
	defer ip.Release()
	dp, err := fs.iget(dir)
	if err != nil {
		return err
	}
	defer dp.Release()
	if ip == dp {
		return fmt.Errorf("%w: hard link to directory %d", ErrPerm, ino)
	}
	unlock := lockInodes(ip, dp)
	err = fs.linkLocked(ip, dp, name)
	unlock()
	if err == nil {
		fs.maybeFlush()
	}
	return err
}

func (fs *FS) linkLocked(ip, dp *Inode, name string) error {
	if err := checkDirForChange(dp); err != nil {
		return err
	}
	d := &ip.din
	if ip.gone.Load() || d.Mode == 0 || d.Nlink <= 0 {
		return fmt.Errorf("%w: inode %d was removed", ErrNotFound, ip.ino)
	}
	if d.IsDir() {
		return fmt.Errorf("%w: hard link to directory %d", ErrPerm, ip.ino)
	}
	// As namei then ufs_link: an existing name first, then the
	// directory's write access, then the inode.
	s, err := fs.dirSearch(dp, name, true)
	if err != nil {
		return fs.corrupt(err)
	}
	if s.found {
		return fmt.Errorf("%w: %q in directory %d", ErrExist, name, dp.ino)
	}
	if err := canAddEntry(dp); err != nil {
		return err
	}
	switch {
	case d.Nlink >= ondisk.LinkMax:
		return fmt.Errorf("%w: inode %d has %d links", ErrTooManyLinks, ip.ino, d.Nlink)
	case d.Flags&(flagImmutable|flagAppend) != 0:
		return fmt.Errorf("%w: inode %d is immutable or append-only", ErrPerm, ip.ino)
	}
	now := fs.stamp()
	d.Nlink++
	now.setC(d)
	if err := fs.iupdate(ip, orderInodeBeforeEnt); err != nil {
		d.Nlink--
		return err
	}
	if _, err := fs.direnter(dp, s, name, ip.ino, ondisk.DTypeFromMode(d.Mode), false, false, now); err != nil {
		d.Nlink--
		fs.iupdate(ip, orderDelayed)
		return err
	}
	return nil
}

// lockEntry looks name up in directory dir and returns the directory and
// the inode it names, both referenced and locked exclusively (in inode
// order), with the entry found under those locks. The caller runs unlock
// and releases both.
func (fs *FS) lockEntry(dir ondisk.Ino, name string) (dp, ip *Inode, s dirSlot, unlock func(), err error) {
	dp, err = fs.iget(dir)
	if err != nil {
		return nil, nil, s, nil, err
	}
	for {
		dp.mu.Lock()
		if err = checkDirForChange(dp); err == nil {
			s, err = fs.dirSearch(dp, name, false)
			if err == nil && !s.found {
				err = fmt.Errorf("%w: %q in directory %d", ErrNotFound, name, dir)
			}
			if err == nil && s.ino == dir {
				err = fs.corrupt(corruptf("directory %d: entry %q names the directory itself", dir, name))
			}
		}
		if err != nil {
			dp.mu.Unlock()
			dp.Release()
			return nil, nil, s, nil, err
		}
		ino := s.ino
		if ino > dir {
			ip, err = fs.entryInode(dir, name, ino)
			if err != nil {
				dp.mu.Unlock()
				dp.Release()
				return nil, nil, s, nil, err
			}
			ip.mu.Lock()
			return dp, ip, s, func() { ip.mu.Unlock(); dp.mu.Unlock() }, nil
		}
		dp.mu.Unlock()
		ip, err = fs.entryInode(dir, name, ino)
		if err != nil {
			dp.Release()
			return nil, nil, s, nil, err
		}
		ip.mu.Lock()
		dp.mu.Lock()
		s2, err2 := fs.dirSearch(dp, name, false)
		if err2 == nil && s2.found && s2.ino == ino && checkDirForChange(dp) == nil {
			return dp, ip, s2, func() { dp.mu.Unlock(); ip.mu.Unlock() }, nil
		}
		dp.mu.Unlock()
		ip.mu.Unlock()
		ip.Release()
	}
}

// Unlink removes name, which must not be a directory (ErrIsDir), from
// directory dir. The inode it named loses a link; with none left and no
// reference (Ref) held, it is freed.
func (fs *FS) Unlink(dir ondisk.Ino, name string) error {
	if err := fs.writable(); err != nil {
		return err
	}
	if err := checkName(name); err != nil {
		return err
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w: %q", ErrIsDir, name)
	}
	if ino, err := fs.Lookup(dir, name); err == nil {
		if st, err := fs.Stat(ino); err == nil && st.Flags&ondisk.SFSnapshot != 0 {
			// rm of a snapshot deletes it (FreeBSD's ffs_snapremove).
			return fs.deleteSnapshot(dir, name, ino)
		}
	}
	dp, ip, s, unlock, err := fs.lockEntry(dir, name)
	if err != nil {
		return err
	}
	defer dp.Release()
	defer ip.Release()
	err = fs.unlinkLocked(dp, ip, s, unlock)
	if err == nil {
		fs.maybeFlush()
	}
	return err
}

func (fs *FS) unlinkLocked(dp, ip *Inode, s dirSlot, unlock func()) error {
	d := &ip.din
	var err error
	switch {
	case d.IsDir():
		err = fmt.Errorf("%w: inode %d", ErrIsDir, ip.ino)
	case d.Flags&(flagNoUnlink|flagImmutable|flagAppend) != 0 || dp.din.Flags&flagAppend != 0:
		err = fmt.Errorf("%w: inode %d or its directory %d forbids unlinking", ErrPerm, ip.ino, dp.ino)
	}
	if err != nil {
		unlock()
		return err
	}
	now := fs.stamp()
	if err := fs.dirremove(dp, s.off, now, nil); err != nil {
		unlock()
		return err
	}
	d.Nlink--
	now.setC(d)
	err = fs.iupdate(ip, orderDelayed)
	dp.mu.Unlock()
	if err == nil {
		err = fs.releaseLink(ip)
	}
	ip.mu.Unlock()
	return err
}

// Rmdir removes directory name from dir. It must hold nothing but "." and
// ".." (ErrNotEmpty); "." and ".." themselves give ErrInvalid. The parent
// loses the link of "..", the directory both of its links; it is freed
// once no reference (Ref) is held.
func (fs *FS) Rmdir(dir ondisk.Ino, name string) error {
	if err := fs.writable(); err != nil {
		return err
	}
	if err := checkName(name); err != nil {
		return err
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w: rmdir of %q", ErrInvalid, name)
	}
	dp, ip, s, unlock, err := fs.lockEntry(dir, name)
	if err != nil {
		return err
	}
	defer dp.Release()
	defer ip.Release()
	err = fs.rmdirLocked(dp, ip, s)
	unlock()
	if err == nil {
		fs.maybeFlush()
	}
	return err
}

func (fs *FS) rmdirLocked(dp, ip *Inode, s dirSlot) error {
	d := &ip.din
	switch {
	case !d.IsDir():
		return fmt.Errorf("%w: inode %d", ErrNotDir, ip.ino)
	case ip.ino == ondisk.RootIno:
		return fmt.Errorf("%w: the root directory", ErrInvalid)
	case d.Flags&(flagNoUnlink|flagImmutable|flagAppend) != 0 || dp.din.Flags&flagAppend != 0:
		return fmt.Errorf("%w: directory %d or its parent %d forbids removal", ErrPerm, ip.ino, dp.ino)
	case d.Nlink > 2:
		return fmt.Errorf("%w: directory %d has %d links", ErrNotEmpty, ip.ino, d.Nlink)
	case d.Nlink < 2:
		return fs.corrupt(corruptf("directory %d has link count %d", ip.ino, d.Nlink))
	}
	empty, err := fs.dirempty(ip, dp.ino)
	if err != nil {
		return fs.corrupt(err)
	}
	if !empty {
		return fmt.Errorf("%w: directory %d", ErrNotEmpty, ip.ino)
	}
	if fs.sd != nil {
		// Its entries' removals first, and those of the ".." that
		// named it: a crash must not leave a directory nothing names
		// with entries in it, or a ".." naming it.
		if err := fs.sd.Wait(fs.sd.EntriesGone(ip.ino), fs.sd.LinksGone(ip.ino)); err != nil {
			return err
		}
	}
	now := fs.stamp()
	if err := fs.dirremove(dp, s.off, now, nil); err != nil {
		return err
	}
	dp.din.Nlink--
	now.setC(&dp.din)
	if fs.sd != nil {
		// The link of its ".." stays on disk until it is freed.
		fs.sd.DotdotGone(dp.ino, ip.ino)
	}
	err = fs.iupdate(dp, orderDelayed)
	d.Nlink -= 2
	now.setC(d)
	if uerr := fs.iupdate(ip, orderDelayed); err == nil {
		err = uerr
	}
	fs.dropDirhash(ip)
	if rerr := fs.releaseLink(ip); err == nil {
		err = rerr
	}
	return err
}
