package ufs

import (
	"fmt"

	"github.com/ufs2/ufs2/ondisk"
)

// Inode life cycle: allocation (ffs_valloc), freeing (ufs_inactive's
// truncate and ffs_vfree), and the references the mount layer holds so
// that an unlinked file stays usable until its last close.

// Flag groups of di_flags, as ufs's inode.h defines them.
const (
	flagImmutable = ondisk.SFImmutable | ondisk.UFImmutable
	flagAppend    = ondisk.SFAppend | ondisk.UFAppend
	flagNoUnlink  = ondisk.SFNounlink | ondisk.UFNounlink
)

// readRawDinode reads inode ino as it is on disk (through the cache),
// allocated or not.
func (fs *FS) readRawDinode(ino ondisk.Ino) (ondisk.Dinode, error) {
	var d ondisk.Dinode
	off, size, within := fs.inodeBlock(ino)
	b, err := fs.cache.Get(off, size)
	if err != nil {
		return d, fmt.Errorf("inode %d: %w", ino, err)
	}
	defer fs.cache.Release(b)
	b.RLock()
	defer b.RUnlock()
	raw := b.Data()[within : within+ondisk.DinodeSize]
	if err := ondisk.VerifyDinodeHash(fs.sb, raw); err != nil {
		return d, corruptf("inode %d: %v", ino, err)
	}
	if err := d.Decode(raw); err != nil {
		return d, corruptf("inode %d: %v", ino, err)
	}
	return d, nil
}

// ialloc is ffs_valloc: it allocates an inode of the given mode near
// directory dp and returns it locked exclusively and referenced, with its
// dinode set up (link count 0, every time now, the generation number one
// more than the last user's, or random for an inode never used) but not
// yet written. Nobody else can reach it until a directory entry names it.
func (fs *FS) ialloc(dp *Inode, mode uint16, uid, gid uint32, now nsTime) (*Inode, error) {
	ino, err := fs.alloc.AllocInode(dp.ino, mode)
	if err != nil {
		return nil, fs.corrupt(fmt.Errorf("allocating an inode in directory %d: %w", dp.ino, allocErr(err)))
	}
	if fs.sd != nil {
		fs.sd.NewInode(ino, fs.cgVer(fs.sb.InoToCg(ino)))
	}
	old, err := fs.readRawDinode(ino)
	if err == nil && old.Mode != 0 {
		// The map said free; the inode says otherwise. Leave both for
		// fsck: the inode stays allocated in the map.
		return nil, fs.corrupt(corruptf("inode %d: allocated while in use (mode 0%o)", ino, old.Mode))
	}
	if err != nil {
		if ferr := fs.alloc.FreeInode(ino, mode); ferr != nil {
			fs.log.Error("returning an inode", "ino", ino, "err", ferr)
		}
		return nil, err
	}
	gen := old.Gen
	for gen == 0 {
		gen = fs.rand32()
	}
	if gen++; gen == 0 {
		gen = fs.rand32()
	}
	ip := &Inode{fs: fs, ino: ino}
	ip.mu.Lock()
	ip.din = ondisk.Dinode{Mode: mode, UID: uid, GID: gid, Gen: gen}
	now.setAll(&ip.din)
	fs.imu.Lock()
	if other := fs.icache[ino]; other != nil {
		fs.imu.Unlock()
		ip.mu.Unlock()
		return nil, fs.corrupt(corruptf("inode %d: allocated while in the inode cache", ino))
	}
	ip.refs = 1
	fs.icache[ino] = ip
	fs.imu.Unlock()
	return ip, nil
}

// ifree is ufs_inactive for an inode with no links and no references:
// its blocks and extended attribute area are freed (truncate writes the
// cleared inode before freeing them), the dinode is cleared but for its
// generation number, and the inode goes back to the allocator. The object
// leaves the inode cache; holders of it see ErrNotFound.
// Preconditions: ip.mu held exclusively.
func (fs *FS) ifree(ip *Inode) error {
	d := &ip.din
	mode := d.Mode
	var first error
	switch d.Type() {
	case ondisk.IFREG, ondisk.IFDIR, ondisk.IFLNK:
		if err := fs.truncate(ip, 0, fs.stamp()); err != nil {
			first = err
		}
	}
	if err := fs.freeExtArea(ip); err != nil && first == nil {
		first = err
	}
	if first != nil {
		// Keep the inode (and whatever it still holds) allocated:
		// leaked, not reused while pointed at.
		fs.log.Error("freeing inode", "ino", ip.ino, "err", first)
		fs.detach(ip)
		return first
	}
	*d = ondisk.Dinode{Gen: d.Gen}
	if err := fs.iupdate(ip, orderDelayed); err != nil {
		first = err
	}
	fs.detach(ip)
	if fs.sd != nil && !fs.sd.FreeInode(ip.ino, mode) {
		// Freed once the zeroed inode is durable.
		fs.alloc.AddPending(0, 1)
		return first
	}
	if err := fs.alloc.FreeInode(ip.ino, mode); err != nil && first == nil {
		first = fs.corrupt(allocErr(err))
	}
	return first
}

// detach takes a freed inode out of the inode cache: later lookups of its
// number read the disk (or find a new allocation).
func (fs *FS) detach(ip *Inode) {
	ip.gone.Store(true)
	fs.imu.Lock()
	if fs.icache[ip.ino] == ip {
		delete(fs.icache, ip.ino)
	}
	if ip.elem != nil {
		fs.ilru.l.Remove(ip.elem)
		ip.elem = nil
	}
	fs.imu.Unlock()
	fs.dropDirhash(ip)
}

// releaseLink is the end of every operation that lowered ip's link count:
// with no links and no references left, the inode is freed.
// Preconditions: ip.mu held exclusively.
func (fs *FS) releaseLink(ip *Inode) error {
	if ip.din.Nlink > 0 || ip.opens > 0 || ip.gone.Load() {
		return nil
	}
	if fs.sd != nil && !fs.sd.Unlinked(ip.ino) {
		// Soft updates: a removal of one of its names is not durable
		// yet; softdepHost.Unlinked comes back here once it is. Its
		// space counts as free meanwhile.
		if !ip.pendingInode {
			ip.pendingSectors, ip.pendingInode = int64(ip.din.Blocks), true
			fs.alloc.AddPending(ip.pendingSectors, 1)
		}
		return nil
	}
	if ip.pendingInode {
		// ifree counts again what it defers.
		fs.alloc.AddPending(-ip.pendingSectors, -1)
		ip.pendingSectors, ip.pendingInode = 0, false
	}
	return fs.ifree(ip)
}

// Ref takes a reference on inode ino for the mount layer (a live kernel
// node or an open file): while any is held, an inode whose link count
// drops to zero keeps its blocks and stays readable and writable. Each
// Ref needs an Unref.
func (fs *FS) Ref(ino ondisk.Ino) error {
	ip, err := fs.OpenInode(ino)
	if err != nil {
		return err
	}
	ip.mu.Lock()
	if ip.gone.Load() {
		ip.mu.Unlock()
		ip.Release()
		return fmt.Errorf("%w: inode %d: %w", ErrNotFound, ino, errFree)
	}
	ip.opens++
	ip.mu.Unlock()
	return nil
}

// Unref drops a reference Ref took. When it was the last and the inode
// has no links left, its blocks and the inode are freed.
func (fs *FS) Unref(ino ondisk.Ino) {
	fs.imu.Lock()
	ip := fs.icache[ino]
	fs.imu.Unlock()
	if ip == nil {
		fs.log.Error("ufs: Unref of an inode with no reference", "ino", ino)
		return
	}
	ip.mu.Lock()
	if ip.opens <= 0 {
		ip.mu.Unlock()
		fs.log.Error("ufs: Unref of an inode with no reference", "ino", ino)
		return
	}
	ip.opens--
	if ip.opens == 0 && fs.writable() == nil {
		if err := fs.releaseLink(ip); err != nil {
			fs.log.Error("freeing an unlinked inode", "ino", ino, "err", err)
		}
	}
	ip.mu.Unlock()
	fs.iput(ip)
	fs.maybeFlush()
}

// freeOrphans frees, at Close, the inodes unlinked while still referenced.
func (fs *FS) freeOrphans() error {
	var orphans []*Inode
	fs.imu.Lock()
	for _, ip := range fs.icache {
		if ip.refs > 0 {
			fs.irefLocked(ip)
			orphans = append(orphans, ip)
		}
	}
	fs.imu.Unlock()
	var first error
	for _, ip := range orphans {
		ip.mu.Lock()
		if ip.din.Nlink <= 0 && ip.din.Mode != 0 && !ip.gone.Load() {
			ip.opens = 0
			if err := fs.releaseLink(ip); err != nil && first == nil {
				first = err
			}
		}
		ip.mu.Unlock()
		fs.iput(ip)
	}
	return first
}
