package alloc

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ufs2/ufs2/ondisk"
)

var (
	// ErrNoSpace means no free space was found that the caller may use.
	ErrNoSpace = errors.New("alloc: no space left")
	// ErrNoInodes means no free inode was found. It wraps ErrNoSpace, so a
	// caller that maps errors to errno sees ENOSPC for both, as FreeBSD
	// returns.
	ErrNoInodes = fmt.Errorf("%w: no free inodes", ErrNoSpace)
	// ErrCorrupt means the maps contradict the request or each other:
	// freeing what is free, a block outside the filesystem or inside its
	// metadata, a summary promising space the map does not have.
	ErrCorrupt = errors.New("alloc: corrupt cylinder group")
	// ErrInvalid means the caller passed an impossible argument (a size
	// that is not a multiple of the fragment size, an inode number out of
	// range, ...). It signals a bug in the caller, not on the disk.
	ErrInvalid = errors.New("alloc: invalid argument")
)

// Groups gives the Allocator its cylinder groups. The engine implements it
// over the buffer cache. Every method is called with the Allocator's mutex
// held and must not call back into the Allocator.
type Groups interface {
	// Cg returns group c, decoded and validated (ondisk.DecodeCg). The
	// Allocator changes it in place; the same pointer must be returned
	// until the group is written and evicted.
	Cg(c ondisk.Cg) (*ondisk.CylGroup, error)
	// Dirty says that group c was changed and must be written.
	Dirty(c ondisk.Cg)
	// InitInodeBlock writes n zeroed inodes, firstIno onwards, each with a
	// fresh non-zero random generation number, into the inode block at
	// fragment frag of group c. It is called when cg_initediblk runs out,
	// before cg_initediblk is raised over these inodes; the engine must get
	// the block onto the disk before the group's next write (FreeBSD uses
	// a barrier write).
	InitInodeBlock(c ondisk.Cg, frag ondisk.Frag, firstIno ondisk.Ino, n int) error
}

// Resource names what an allocation ran out of.
type Resource int

// Resources a PendingFree may be asked to release.
const (
	Blocks Resource = iota // blocks and fragments
	Inodes                 // inodes
)

func (r Resource) String() string {
	if r == Inodes {
		return "inodes"
	}
	return "blocks"
}

// PendingFree finishes frees that are pending (soft updates holds freed
// blocks and inodes until the pointers to them are gone from the disk).
type PendingFree interface {
	// Help is called, without the Allocator's lock, when an allocation of
	// r finds nothing. It should finish what pending frees it can (they
	// come back through FreeBlock and FreeInode) and return; the
	// allocation is then tried once more.
	Help(r Resource)
}

// Options configure an Allocator. The zero value is usable.
type Options struct {
	// Logger receives notices (optimisation changes, full filesystem);
	// discarded when nil.
	Logger *slog.Logger
	// Pending, when set, is asked to finish pending frees before an
	// allocation fails for want of space.
	Pending PendingFree
	// NeedsFsck, when set, is called (without the Allocator's lock) with
	// every ErrCorrupt error; the engine marks the filesystem as needing
	// fsck.
	NeedsFsck func(err error)
	// Now gives the time written to cg_time; time.Now when nil.
	Now func() time.Time
	// Rand gives the random numbers ffs_dirpref uses to place top-level
	// directories; a generator seeded from the runtime when nil.
	Rand func() uint32
	// DeferFragFree leaves the old fragments allocated when ReallocFrag
	// moves a fragment; the caller frees them later with FreeBlock (soft
	// updates frees them once the new pointer is on disk).
	DeferFragFree bool
}

// InodeHint is what the block policy needs to know about the file that
// asks for a block.
type InodeHint struct {
	Ino           ondisk.Ino
	Mode          uint16      // di_mode; only the type bits are used
	LastDirect    ondisk.Frag // di_db[UFS_NDADDR-1]
	FirstIndirect ondisk.Frag // di_ib[0]
}

// Hint builds an InodeHint from inode ino's dinode.
func Hint(ino ondisk.Ino, d *ondisk.Dinode) InodeHint {
	return InodeHint{Ino: ino, Mode: d.Mode, LastDirect: d.Db[ondisk.NDaddr-1], FirstIndirect: d.Ib[0]}
}

func (h InodeHint) isDir() bool { return h.Mode&ondisk.IFMT == ondisk.IFDIR }

// Allocator hands out and takes back fragments, blocks, clusters and
// inodes of one filesystem.
type Allocator struct {
	// mu protects everything below, the summary fields of *sb, csums, and
	// the contents of every cylinder group reached through groups.
	mu     sync.Mutex
	sb     *ondisk.Superblock
	csums  []ondisk.Csum
	groups Groups
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	rand   func() uint32

	contigdirs []uint8 // fs_contigdirs: directories made in a row per group
	maxcluster []int32 // fs_maxcluster: an upper bound on each group's largest free cluster
	fmod       bool    // fs_fmod: the summary changed since TakeModified
}

// New returns an Allocator over the filesystem described by sb, whose
// per-group summaries are csums (fs_csp, one per group) and whose groups
// come from g. sb must have passed Validate. The Allocator keeps sb and
// csums and updates them in place.
func New(sb *ondisk.Superblock, csums []ondisk.Csum, g Groups, opts Options) (*Allocator, error) {
	if sb == nil || g == nil {
		return nil, fmt.Errorf("%w: nil superblock or groups", ErrInvalid)
	}
	if err := sb.Validate(); err != nil {
		return nil, fmt.Errorf("alloc: %w", err)
	}
	if uint64(len(csums)) != uint64(sb.Ncg) {
		return nil, fmt.Errorf("%w: %d summaries for %d cylinder groups", ErrInvalid, len(csums), sb.Ncg)
	}
	a := &Allocator{sb: sb, csums: csums, groups: g, opts: opts,
		contigdirs: make([]uint8, sb.Ncg), maxcluster: make([]int32, sb.Ncg)}
	a.log = opts.Logger
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.now = opts.Now
	if a.now == nil {
		a.now = time.Now
	}
	a.rand = opts.Rand
	if a.rand == nil {
		a.rand = rand.Uint32
	}
	for i := range a.maxcluster {
		a.maxcluster[i] = sb.Contigsumsize
	}
	return a, nil
}

// Locked runs fn with the Allocator's lock held, giving it the superblock
// and the summaries. The engine encodes the superblock, the csum array and
// the cylinder groups inside fn so that it writes a consistent picture.
func (a *Allocator) Locked(fn func(sb *ondisk.Superblock, csums []ondisk.Csum)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fn(a.sb, a.csums)
}

// TakeModified reports whether the summaries changed since the last call
// (FreeBSD's fs_fmod) and clears the flag.
func (a *Allocator) TakeModified() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.fmod
	a.fmod = false
	return m
}

// Stat holds statfs-style numbers, counted in fragments (fs_fsize units)
// except for inodes.
type Stat struct {
	Fsize, Bsize int64
	Blocks       int64 // f_blocks: fs_dsize
	Bfree        int64 // f_bfree: free fragments, pending frees included
	Bavail       int64 // f_bavail: free beyond the minfree reserve; negative when root has eaten into it
	Reserved     int64 // fragments only root may use: fs_dsize * fs_minfree / 100
	Files        int64 // f_files: inodes, less the two reserved ones
	Ffree        int64 // f_ffree: free inodes, pending frees included
	Nbfree       int64 // cs_nbfree: free whole blocks
	Nffree       int64 // cs_nffree: free fragments outside whole free blocks
	Ndir         int64 // cs_ndir
}

// Statfs returns the numbers ffs_statfs reports.
func (a *Allocator) Statfs() Stat {
	a.mu.Lock()
	defer a.mu.Unlock()
	sb := a.sb
	pend := int64(sb.DbToFsb(sb.Pendingblocks))
	return Stat{
		Fsize:    int64(sb.Fsize),
		Bsize:    int64(sb.Bsize),
		Blocks:   sb.Dsize,
		Bfree:    int64(sb.Blkstofrags(sb.Cstotal.Nbfree)) + sb.Cstotal.Nffree + pend,
		Bavail:   sb.Freespace(int64(sb.Minfree)) + pend,
		Reserved: sb.Dsize * int64(sb.Minfree) / 100,
		Files:    int64(sb.Ncg)*int64(sb.Ipg) - int64(ondisk.RootIno),
		Ffree:    sb.Cstotal.Nifree + int64(sb.Pendinginodes),
		Nbfree:   sb.Cstotal.Nbfree,
		Nffree:   sb.Cstotal.Nffree,
		Ndir:     sb.Cstotal.Ndir,
	}
}

// AddPending adjusts fs_pendingblocks (in DEV_BSIZE sectors) and
// fs_pendinginodes: space and inodes freed but not yet back in the maps,
// which statfs counts as free.
func (a *Allocator) AddPending(sectors int64, inodes int32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sb.Pendingblocks += sectors
	a.sb.Pendinginodes = uint32(int64(a.sb.Pendinginodes) + int64(inodes))
	a.fmod = true
}

// report hands corruption to NeedsFsck. Called without the lock.
func (a *Allocator) report(err error) error {
	if err != nil && errors.Is(err, ErrCorrupt) && a.opts.NeedsFsck != nil {
		a.opts.NeedsFsck(err)
	}
	return err
}

func corruptf(c ondisk.Cg, format string, args ...any) error {
	return fmt.Errorf("%w: cg %d: %s", ErrCorrupt, c, fmt.Sprintf(format, args...))
}

// getCg fetches group c. Preconditions: a.mu held.
func (a *Allocator) getCg(c ondisk.Cg) (*ondisk.CylGroup, error) {
	cg, err := a.groups.Cg(c)
	if err != nil {
		return nil, fmt.Errorf("alloc: cg %d: %w", c, err)
	}
	if cg == nil || cg.Cgx != uint32(c) || cg.Magic != ondisk.CgMagic {
		return nil, corruptf(c, "Groups returned a wrong or empty group")
	}
	return cg, nil
}

// touch marks group c changed: cg_time, the group buffer and the summary.
// Preconditions: a.mu held.
func (a *Allocator) touch(c ondisk.Cg, cg *ondisk.CylGroup) {
	cg.Time = a.now().Unix()
	a.groups.Dirty(c)
	a.fmod = true
}

// The summary adjusters keep cg_cs, fs_cs(fs, c) and fs_cstotal together.
// Preconditions: a.mu held.

func (a *Allocator) addNbfree(c ondisk.Cg, cg *ondisk.CylGroup, n int32) {
	cg.Cs.Nbfree += n
	a.csums[c].Nbfree += n
	a.sb.Cstotal.Nbfree += int64(n)
}

func (a *Allocator) addNffree(c ondisk.Cg, cg *ondisk.CylGroup, n int32) {
	cg.Cs.Nffree += n
	a.csums[c].Nffree += n
	a.sb.Cstotal.Nffree += int64(n)
}

func (a *Allocator) addNifree(c ondisk.Cg, cg *ondisk.CylGroup, n int32) {
	cg.Cs.Nifree += n
	a.csums[c].Nifree += n
	a.sb.Cstotal.Nifree += int64(n)
}

func (a *Allocator) addNdir(c ondisk.Cg, cg *ondisk.CylGroup, n int32) {
	cg.Cs.Ndir += n
	a.csums[c].Ndir += n
	a.sb.Cstotal.Ndir += int64(n)
}

// clusterAcct is ffs_clusteracct plus its upkeep of fs_maxcluster.
// Preconditions: a.mu held.
func (a *Allocator) clusterAcct(c ondisk.Cg, cg *ondisk.CylGroup, blk int64, cnt int32) {
	if a.sb.Contigsumsize <= 0 {
		return
	}
	cg.ClusterAcct(blk, cnt)
	a.maxcluster[c] = int32(cg.MaxCluster())
}

// cgmeta is cgmeta(fs, c): the start of the zone kept for metadata.
func cgmeta(sb *ondisk.Superblock, c ondisk.Cg) ondisk.Frag { return sb.Cgdmin(c) }

func howmany(x, y int64) int64 { return (x + y - 1) / y }
