package ufs

import (
	"fmt"

	"github.com/ufs2/ufs2/ondisk"
)

// RenameFlags are renameat2's RENAME_NOREPLACE and RENAME_EXCHANGE.
type RenameFlags struct {
	NoReplace bool // fail with ErrExist if the new name exists
	Exchange  bool // swap the two names, which must both exist
}

// Rename renames oname in directory odir to nname in ndir: FreeBSD's
// ufs_rename, with every POSIX case. An existing nname is replaced when
// compatible: a non-directory by a non-directory, an empty directory by
// a directory (ErrIsDir, ErrNotDir, ErrNotEmpty otherwise). Two names of
// the same inode: nothing happens. A directory moved to another parent has
// its ".." rewritten and both parents' link counts adjusted; moving a
// directory under itself gives ErrInvalid, as do "." and "..". Flags:
// NoReplace fails with ErrExist when nname exists; Exchange swaps the two
// entries (both must exist).
//
// Write order (without soft updates): the inode's link count is raised
// and written first, then the new entry is written, then the old one
// removed, then the link count lowered again, so that a crash leaves at
// worst a link count too high.
func (fs *FS) Rename(odir ondisk.Ino, oname string, ndir ondisk.Ino, nname string, flags RenameFlags) error {
	if err := fs.writable(); err != nil {
		return err
	}
	for _, n := range []string{oname, nname} {
		if err := checkName(n); err != nil {
			return err
		}
		if n == "." || n == ".." {
			return fmt.Errorf("%w: rename of %q", ErrInvalid, n)
		}
	}
	if flags.NoReplace && flags.Exchange {
		return fmt.Errorf("%w: RENAME_NOREPLACE with RENAME_EXCHANGE", ErrInvalid)
	}
	fdp, err := fs.iget(odir)
	if err != nil {
		return err
	}
	defer fdp.Release()
	tdp, err := fs.iget(ndir)
	if err != nil {
		return err
	}
	defer tdp.Release()
	held := false
	defer func() {
		if held {
			fs.renameMu.Unlock()
		}
	}()
	for {
		fs1, ts1, err := fs.renameLookup(fdp, oname, tdp, nname)
		if err != nil {
			return err
		}
		fip, err := fs.entryInode(odir, oname, fs1.ino)
		if err != nil {
			return err
		}
		var tip *Inode
		if ts1.found {
			if tip, err = fs.entryInode(ndir, nname, ts1.ino); err != nil {
				fip.Release()
				return err
			}
		}
		release := func() {
			fip.Release()
			if tip != nil {
				tip.Release()
			}
		}
		fdir := isDirInode(fip)
		tdir := tip != nil && isDirInode(tip)
		moves := fdp != tdp && (fdir || flags.Exchange && tdir)
		if moves && !held {
			release()
			fs.renameMu.Lock()
			held = true
			continue
		}
		if moves {
			err := fs.checkPath(fip.ino, tdp.ino)
			if err == nil && flags.Exchange && tdir {
				err = fs.checkPath(tip.ino, fdp.ino)
			}
			if err != nil {
				release()
				return err
			}
		}
		unlock := lockInodes(fdp, tdp, fip, tip)
		fs2, ts2, err := fs.renameRecheck(fdp, oname, tdp, nname)
		if err != nil || fs2.ino != fip.ino || ts2.found != ts1.found || ts2.ino != ts1.ino {
			unlock()
			release()
			if err != nil {
				return err
			}
			continue
		}
		if flags.Exchange {
			err = fs.exchangeLocked(fdp, fip, fs2, tdp, tip, ts2)
		} else {
			err = fs.renameLocked(fdp, fip, oname, tdp, tip, nname, ts2, flags)
		}
		unlock()
		release()
		if err == nil {
			fs.maybeFlush()
		}
		return err
	}
}

// isDirInode reads whether ip is a directory.
func isDirInode(ip *Inode) bool {
	ip.mu.RLock()
	defer ip.mu.RUnlock()
	return ip.din.IsDir()
}

// renameLookup finds both names with the two directories locked.
func (fs *FS) renameLookup(fdp *Inode, oname string, tdp *Inode, nname string) (dirSlot, dirSlot, error) {
	unlock := lockInodes(fdp, tdp)
	defer unlock()
	return fs.renameRecheck(fdp, oname, tdp, nname)
}

// renameRecheck finds both names; the caller holds both directories'
// locks. The old name must exist.
func (fs *FS) renameRecheck(fdp *Inode, oname string, tdp *Inode, nname string) (dirSlot, dirSlot, error) {
	var fs1, ts1 dirSlot
	if err := checkDirForChange(fdp); err != nil {
		return fs1, ts1, err
	}
	if err := checkDirForChange(tdp); err != nil {
		return fs1, ts1, err
	}
	fs1, err := fs.dirSearch(fdp, oname, false)
	if err != nil {
		return fs1, ts1, fs.corrupt(err)
	}
	if !fs1.found {
		return fs1, ts1, fmt.Errorf("%w: %q in directory %d", ErrNotFound, oname, fdp.ino)
	}
	ts1, err = fs.dirSearch(tdp, nname, false)
	if err != nil {
		return fs1, ts1, fs.corrupt(err)
	}
	if fs1.ino == fdp.ino || ts1.found && ts1.ino == tdp.ino {
		return fs1, ts1, fs.corrupt(corruptf("directory entry names its own directory"))
	}
	return fs1, ts1, nil
}

// checkPath is ufs_checkpath: walking ".." up from directory target to
// the root must not meet directory source, or the rename would put source
// under itself (ErrInvalid). Preconditions: fs.renameMu held, no inode
// lock held.
func (fs *FS) checkPath(source, target ondisk.Ino) error {
	cur := target
	for steps := ondisk.Ino(0); steps < fs.maxIno; steps++ {
		if cur == source {
			return fmt.Errorf("%w: directory %d would move under itself", ErrInvalid, source)
		}
		if cur == ondisk.RootIno {
			return nil
		}
		ip, err := fs.iget(cur)
		if err != nil {
			return err
		}
		ip.mu.RLock()
		var parent ondisk.Ino
		if !ip.din.IsDir() {
			err = fmt.Errorf("%w: inode %d", ErrNotDir, cur)
		} else {
			parent, err = fs.lookupLocked(ip, "..")
		}
		ip.mu.RUnlock()
		ip.Release()
		if err != nil {
			return err
		}
		if parent == cur {
			return fs.corrupt(corruptf("directory %d: \"..\" names the directory itself", cur))
		}
		cur = parent
	}
	return fs.corrupt(corruptf("directory %d: \"..\" chain has a loop", target))
}

// renameLocked is ufs_rename once everything is locked.
func (fs *FS) renameLocked(fdp, fip *Inode, oname string, tdp, tip *Inode, nname string, ts dirSlot, flags RenameFlags) error {
	fd := &fip.din
	if fip.gone.Load() || fd.Mode == 0 {
		return fmt.Errorf("%w: %q in directory %d", ErrNotFound, oname, fdp.ino)
	}
	if tip != nil && flags.NoReplace {
		return fmt.Errorf("%w: %q in directory %d", ErrExist, nname, tdp.ino)
	}
	if tip == fip {
		return nil // two names of one inode: nothing to do
	}
	if tip != nil && (tip.din.Flags&(flagNoUnlink|flagImmutable|flagAppend) != 0 || tdp.din.Flags&flagAppend != 0) {
		return fmt.Errorf("%w: %q in directory %d may not be replaced", ErrPerm, nname, tdp.ino)
	}
	if fd.Nlink >= ondisk.LinkMax {
		return fmt.Errorf("%w: inode %d", ErrTooManyLinks, fip.ino)
	}
	if fd.Flags&(flagNoUnlink|flagImmutable|flagAppend) != 0 || fdp.din.Flags&flagAppend != 0 {
		return fmt.Errorf("%w: %q in directory %d may not be renamed", ErrPerm, oname, fdp.ino)
	}
	if err := canAddEntry(tdp); err != nil {
		return err
	}
	if err := canAddEntry(fdp); err != nil {
		return err
	}
	doingDir := fd.IsDir()
	newParent := doingDir && fdp != tdp
	dtype := ondisk.DTypeFromMode(fd.Mode)
	var slot dirSlot
	if tip == nil {
		if newParent && tdp.din.Nlink >= ondisk.LinkMax {
			return fmt.Errorf("%w: directory %d", ErrTooManyLinks, tdp.ino)
		}
		s, err := fs.dirSearch(tdp, nname, true)
		if err != nil {
			return fs.corrupt(err)
		}
		slot = s
	} else {
		td := &tip.din
		switch {
		case td.IsDir() && !doingDir:
			return fmt.Errorf("%w: %q in directory %d is a directory", ErrIsDir, nname, tdp.ino)
		case !td.IsDir() && doingDir:
			return fmt.Errorf("%w: %q in directory %d", ErrNotDir, nname, tdp.ino)
		}
		if td.IsDir() {
			empty, err := fs.dirempty(tip, tdp.ino)
			if err != nil {
				return fs.corrupt(err)
			}
			if !empty || td.Nlink > 2 {
				return fmt.Errorf("%w: %q in directory %d", ErrNotEmpty, nname, tdp.ino)
			}
		}
	}
	now := fs.stamp()

	// 1) Bump the link count while both names may exist.
	fd.Nlink++
	now.setC(fd)
	if err := fs.iupdate(fip, orderInodeBeforeEnt); err != nil {
		fd.Nlink--
		return err
	}
	bad := func(err error) error {
		fd.Nlink--
		fs.iupdate(fip, orderDelayed)
		return err
	}

	// 2) The new name.
	if tip == nil {
		if err := fs.direnter(tdp, slot, nname, fip.ino, dtype, now); err != nil {
			return bad(err)
		}
	} else {
		if err := fs.dirrewrite(tdp, ts.off, fip.ino, dtype, now); err != nil {
			return bad(err)
		}
		td := &tip.din
		if doingDir {
			if !newParent {
				tdp.din.Nlink-- // the replaced directory's ".."
				now.setC(&tdp.din)
			}
			td.Nlink-- // its "."
		}
		td.Nlink--
		now.setC(td)
		if err := fs.iupdate(tip, orderDelayed); err != nil {
			return err
		}
		if err := fs.iupdate(tdp, orderDelayed); err != nil {
			return err
		}
	}

	// 3) The old name goes; a directory with a new parent gets its ".."
	// rewritten and the old parent loses that link.
	if newParent {
		if tip == nil {
			tdp.din.Nlink++
			now.setC(&tdp.din)
			if err := fs.iupdate(tdp, orderInodeBeforeEnt); err != nil {
				return err
			}
		}
		dd, err := fs.dirSearch(fip, "..", false)
		if err != nil || !dd.found {
			return fs.corrupt(corruptf("directory %d has no \"..\" entry", fip.ino))
		}
		if err := fs.dirrewrite(fip, dd.off, tdp.ino, ondisk.DTDir, now); err != nil {
			return err
		}
		fdp.din.Nlink--
		now.setC(&fdp.din)
		if err := fs.iupdate(fdp, orderDelayed); err != nil {
			return err
		}
	}
	// The old entry may have moved if the new one went into the same
	// directory (compaction): find it again.
	s, err := fs.dirSearch(fdp, oname, false)
	if err != nil {
		return fs.corrupt(err)
	}
	if !s.found || s.ino != fip.ino {
		return fs.corrupt(corruptf("directory %d: %q changed during rename", fdp.ino, oname))
	}
	if err := fs.dirremove(fdp, s.off, now); err != nil {
		return err
	}
	fd.Nlink--
	now.setC(fd)
	if err := fs.iupdate(fip, orderDelayed); err != nil {
		return err
	}
	if tip != nil {
		return fs.releaseLink(tip)
	}
	return nil
}

// exchangeLocked swaps two entries (RENAME_EXCHANGE). Both inodes' link
// counts are raised and written first and lowered last; a directory that
// changes parent has its ".." rewritten and the parents' link counts
// follow it.
func (fs *FS) exchangeLocked(fdp, fip *Inode, fs1 dirSlot, tdp, tip *Inode, ts dirSlot) error {
	if tip == nil {
		return fmt.Errorf("%w: the name to exchange with does not exist", ErrNotFound)
	}
	if fip == tip {
		return nil
	}
	fd, td := &fip.din, &tip.din
	for _, ip := range []*Inode{fip, tip} {
		if ip.gone.Load() || ip.din.Mode == 0 {
			return fmt.Errorf("%w: inode %d", ErrNotFound, ip.ino)
		}
		if ip.din.Flags&(flagNoUnlink|flagImmutable|flagAppend) != 0 {
			return fmt.Errorf("%w: inode %d may not be renamed", ErrPerm, ip.ino)
		}
		if ip.din.Nlink >= ondisk.LinkMax {
			return fmt.Errorf("%w: inode %d", ErrTooManyLinks, ip.ino)
		}
	}
	for _, dp := range []*Inode{fdp, tdp} {
		if dp.din.Flags&(flagAppend|flagImmutable) != 0 {
			return fmt.Errorf("%w: directory %d", ErrPerm, dp.ino)
		}
	}
	fdir, tdir := fd.IsDir(), td.IsDir()
	var gain, lose *Inode // the parents whose link counts change
	if fdp != tdp && fdir != tdir {
		if fdir {
			gain, lose = tdp, fdp
		} else {
			gain, lose = fdp, tdp
		}
		if gain.din.Nlink >= ondisk.LinkMax {
			return fmt.Errorf("%w: directory %d", ErrTooManyLinks, gain.ino)
		}
	}
	now := fs.stamp()
	for _, ip := range []*Inode{fip, tip} {
		ip.din.Nlink++
		now.setC(&ip.din)
		if err := fs.iupdate(ip, orderInodeBeforeEnt); err != nil {
			return err
		}
	}
	if gain != nil {
		gain.din.Nlink++
		now.setC(&gain.din)
		if err := fs.iupdate(gain, orderInodeBeforeEnt); err != nil {
			return err
		}
	}
	if err := fs.dirrewrite(tdp, ts.off, fip.ino, ondisk.DTypeFromMode(fd.Mode), now); err != nil {
		return err
	}
	if err := fs.dirrewrite(fdp, fs1.off, tip.ino, ondisk.DTypeFromMode(td.Mode), now); err != nil {
		return err
	}
	if fdp != tdp {
		for _, m := range []struct {
			ip     *Inode
			parent *Inode
		}{{fip, tdp}, {tip, fdp}} {
			if !m.ip.din.IsDir() {
				continue
			}
			dd, err := fs.dirSearch(m.ip, "..", false)
			if err != nil || !dd.found {
				return fs.corrupt(corruptf("directory %d has no \"..\" entry", m.ip.ino))
			}
			if err := fs.dirrewrite(m.ip, dd.off, m.parent.ino, ondisk.DTDir, now); err != nil {
				return err
			}
		}
	}
	if lose != nil {
		lose.din.Nlink--
		now.setC(&lose.din)
		if err := fs.iupdate(lose, orderDelayed); err != nil {
			return err
		}
	}
	for _, ip := range []*Inode{fip, tip} {
		ip.din.Nlink--
		now.setC(&ip.din)
		if err := fs.iupdate(ip, orderDelayed); err != nil {
			return err
		}
	}
	return nil
}
