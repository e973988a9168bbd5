package ufs

import (
	"fmt"

	"github.com/ufs2/ufs2/ondisk"
	"github.com/ufs2/ufs2/softdep"
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
			err = fs.exchangeLocked(fdp, fip, oname, fs2, tdp, tip, nname, ts2)
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
			if fs.sd != nil {
				// As for rmdir: its entries' removals before its name.
				if err := fs.sd.Wait(fs.sd.EntriesGone(tip.ino), fs.sd.LinksGone(tip.ino)); err != nil {
					return err
				}
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

	// Soft updates: when the new name goes into the block the old one
	// is in, both changes reach the disk in one write (the inode durable
	// first, so that nothing holds the new name back); otherwise the new
	// name is made durable before the old one goes. Either way a crash
	// leaves the file with one name or both, never none.
	paired := false
	if fs.sd != nil && fdp == tdp {
		of, err := fs.dirSearch(fdp, oname, false)
		if err != nil {
			return bad(fs.corrupt(err))
		}
		newOff := ts.off
		if tip == nil {
			newOff = slot.slotOff
			if newOff < 0 {
				newOff = roundUp(int64(tdp.din.Size), ondisk.DirBlkSize)
			}
		}
		if of.found && fs.sb.Lblkno(newOff) == fs.sb.Lblkno(of.off) {
			if err := fs.sd.Wait(fs.sd.InodeWritten(fip.ino)); err != nil {
				return bad(err)
			}
			paired = true
		}
	}

	// Soft updates: a directory moving to a new parent is named there
	// only once the parent's link count for its ".." is on disk (fsck
	// points ".." at the parent that names it).
	parentRaised := false
	if fs.sd != nil && newParent {
		// The old parent named on disk first: the ".." left behind until
		// the move is durable must not name a directory nothing names.
		if err := fs.sd.Wait(fs.sd.NamesWritten(fdp.ino)); err != nil {
			return bad(err)
		}
	}
	if fs.sd != nil && newParent && tip == nil {
		tdp.din.Nlink++
		now.setC(&tdp.din)
		if err := fs.iupdate(tdp, orderInodeBeforeEnt); err != nil {
			tdp.din.Nlink--
			return bad(err)
		}
		parentRaised = true
	}

	// 2) The new name.
	var added softdep.Dep
	if tip == nil {
		var err error
		if added, err = fs.direnter(tdp, slot, nname, fip.ino, dtype, false, paired, now); err != nil {
			return bad(err)
		}
	} else {
		var err error
		if added, err = fs.dirrewrite(tdp, ts.off, fip.ino, dtype, paired, now); err != nil {
			return bad(err)
		}
		td := &tip.din
		if doingDir {
			if !newParent {
				tdp.din.Nlink-- // the replaced directory's ".."
				now.setC(&tdp.din)
			}
			if fs.sd != nil {
				// On disk the replaced directory's ".." counts until
				// it is freed.
				fs.sd.DotdotGone(tdp.ino, tip.ino)
			}
			td.Nlink-- // its "."
		}
		td.Nlink--
		now.setC(td)
		if err := fs.iupdate(tip, orderDelayed); err != nil {
			if paired {
				fs.sd.Unpair(added)
			}
			return err
		}
		if err := fs.iupdate(tdp, orderDelayed); err != nil {
			if paired {
				fs.sd.Unpair(added)
			}
			return err
		}
	}

	if paired && !fs.sd.Pairable(added) {
		// The block or the chunk the new name is in is not the
		// directory's on disk yet: the removal, written with it, could
		// show before the name does.
		fs.sd.Unpair(added)
		paired = false
	}
	if fs.sd != nil && added != nil && !paired {
		if err := fs.sd.Wait(added); err != nil {
			return err
		}
	}
	unpair := func(err error) error {
		if paired && added != nil {
			fs.sd.Unpair(added)
		}
		return err
	}

	// 3) The old name goes; a directory with a new parent gets its ".."
	// rewritten and the old parent loses that link.
	if newParent {
		if tip == nil && !parentRaised {
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
		if _, err := fs.dirrewrite(fip, dd.off, tdp.ino, ondisk.DTDir, false, now); err != nil {
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
		return unpair(fs.corrupt(err))
	}
	if !s.found || s.ino != fip.ino {
		return unpair(fs.corrupt(corruptf("directory %d: %q changed during rename", fdp.ino, oname)))
	}
	var pair softdep.Dep
	if paired {
		pair = added
	}
	if err := fs.dirremove(fdp, s.off, now, pair); err != nil {
		return unpair(err)
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
func (fs *FS) exchangeLocked(fdp, fip *Inode, oname string, fs1 dirSlot, tdp, tip *Inode, nname string, ts dirSlot) error {
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
	if fs.sd != nil {
		// It also points each moved directory's ".." at its new parent.
		if err := fs.exchangeSoftdep(fdp, fip, oname, tdp, tip, nname, now); err != nil {
			return err
		}
	} else if err := fs.exchangeRewrite(fdp, fip, fs1, tdp, tip, ts, now); err != nil {
		return err
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

// exchangeRewrite swaps the entries of slot fs1 in fdp (naming fip) and
// slot ts in tdp (naming tip) in place, without soft updates, and points
// each directory moved to another parent's ".." at it.
func (fs *FS) exchangeRewrite(fdp, fip *Inode, fs1 dirSlot, tdp, tip *Inode, ts dirSlot, now nsTime) error {
	if _, err := fs.dirrewrite(tdp, ts.off, fip.ino, ondisk.DTypeFromMode(fip.din.Mode), false, now); err != nil {
		return err
	}
	if _, err := fs.dirrewrite(fdp, fs1.off, tip.ino, ondisk.DTypeFromMode(tip.din.Mode), false, now); err != nil {
		return err
	}
	if fdp == tdp {
		return nil
	}
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
		if _, err := fs.dirrewrite(m.ip, dd.off, m.parent.ino, ondisk.DTDir, false, now); err != nil {
			return err
		}
	}
	return nil
}

// exchangeSoftdep swaps the entries oname in fdp (naming fip) and nname in
// tdp (naming tip) under soft updates, each step durable before the next,
// through a temporary third name for tip so that neither file is ever
// without a name on disk: tmp -> tip is added, nname becomes fip, oname
// becomes tip, and tmp goes. Both link counts were raised by the caller,
// which covers the extra name. (For a directory the third name is a second
// link to it, which fsck removes if a crash leaves it.)
func (fs *FS) exchangeSoftdep(fdp, fip *Inode, oname string, tdp, tip *Inode, nname string, now nsTime) error {
	// Directories changing parents: until every step is durable, fsck
	// may find either parent naming both (one of them through ".." it
	// points back at the parent that names it): each parent holds one
	// more link on disk meanwhile.
	crossDirs := fdp != tdp && (fip.din.IsDir() || tip.din.IsDir())
	var steps []softdep.Dep
	if crossDirs {
		// Both parents named on disk first (see renameLocked).
		if err := fs.sd.Wait(fs.sd.NamesWritten(fdp.ino), fs.sd.NamesWritten(tdp.ino)); err != nil {
			return err
		}
		for _, p := range []*Inode{fdp, tdp} {
			p.din.Nlink++
			if err := fs.iupdate(p, orderInodeBeforeEnt); err != nil {
				p.din.Nlink--
				return err
			}
		}
		defer func() {
			for _, p := range []*Inode{fdp, tdp} {
				p.din.Nlink--
				now.setC(&p.din)
				if err := fs.iupdate(p, orderDelayed); err != nil {
					fs.log.Error("writing a directory inode", "ino", p.ino, "err", err)
				}
				fs.sd.HoldLink(p.ino, steps...)
			}
		}()
	}
	var tmp string
	var slot dirSlot
	for n := 0; ; n++ {
		tmp = fmt.Sprintf(".ufs2-exchange.%d.%d", tip.ino, n)
		s, err := fs.dirSearch(tdp, tmp, true)
		if err != nil {
			return fs.corrupt(err)
		}
		if !s.found {
			slot = s
			break
		}
	}
	find := func(dp *Inode, name string, want ondisk.Ino) (dirSlot, error) {
		s, err := fs.dirSearch(dp, name, false)
		if err != nil {
			return s, fs.corrupt(err)
		}
		if !s.found || s.ino != want {
			return s, fs.corrupt(corruptf("directory %d: %q changed during rename", dp.ino, name))
		}
		return s, nil
	}
	tdt, fdt := ondisk.DTypeFromMode(tip.din.Mode), ondisk.DTypeFromMode(fip.din.Mode)
	dep, err := fs.direnter(tdp, slot, tmp, tip.ino, tdt, false, false, now)
	if err == nil {
		err = fs.sd.Wait(dep)
	}
	if err != nil {
		return err
	}
	s, err := find(tdp, nname, tip.ino)
	if err != nil {
		return err
	}
	if dep, err = fs.dirrewrite(tdp, s.off, fip.ino, fdt, false, now); err == nil {
		err = fs.sd.Wait(dep)
	}
	if err != nil {
		return err
	}
	if s, err = find(fdp, oname, fip.ino); err != nil {
		return err
	}
	if dep, err = fs.dirrewrite(fdp, s.off, tip.ino, tdt, false, now); err == nil {
		err = fs.sd.Wait(dep)
	}
	if err != nil {
		return err
	}
	if s, err = find(tdp, tmp, tip.ino); err != nil {
		return err
	}
	removed, err := fs.dirremoveDep(tdp, s.off, now, nil)
	if err != nil {
		return err
	}
	steps = append(steps, removed)
	if crossDirs {
		// The ".." of each directory names its new parent.
		for _, m := range []struct{ ip, parent *Inode }{{fip, tdp}, {tip, fdp}} {
			if !m.ip.din.IsDir() {
				continue
			}
			dd, err := fs.dirSearch(m.ip, "..", false)
			if err != nil || !dd.found {
				return fs.corrupt(corruptf("directory %d has no \"..\" entry", m.ip.ino))
			}
			dep, err := fs.dirrewrite(m.ip, dd.off, m.parent.ino, ondisk.DTDir, false, now)
			if err != nil {
				return err
			}
			steps = append(steps, dep)
		}
	}
	return nil
}
