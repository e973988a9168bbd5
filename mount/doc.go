// Package mount serves a UFS2 filesystem to the Linux kernel through FUSE
// (github.com/hanwen/go-fuse/v2, its fs node API).
//
// # Shape
//
// The engine sits behind two interfaces: Engine (reads, keyed by inode
// number) and WriteEngine (the vnode operations that change things, and
// Ref/Unref, which keep an unlinked inode alive while a file handle holds
// it). *ufs.FS implements both (compile-time assertions say so); a mount
// of an engine without WriteEngine is read-only. A raw-API adapter or a
// test fake could replace the node layer without touching the engine.
// Engine errors become errno in one table (errnoTable, Errno) and nowhere
// else; nothing is ever answered with ENOSYS, which the kernel would
// remember for the whole connection.
//
// Each go-fuse node (type node) is one inode. With fs.Options.ExternalNodeID
// the FUSE node ID is the inode number and the generation is di_gen, so
// (node ID, generation) is a file handle that stays valid across mounts:
// the mount negotiates export support, answers LOOKUP of "." by node ID
// (NodeLookupNoder) and of ".." (NodeLookupParenter), and the kernel
// rejects a handle whose generation no longer matches (ESTALE). The root is
// FUSE node 1 and reports its real inode number (2).
//
// # What costs what
//
// A FUSE round trip costs about 60 kernel stat calls, so speed comes from
// sending fewer requests (ARCHITECTURE.md, "What a FUSE filesystem costs"):
//
//   - entry, attribute and negative-entry timeouts of 1 s (-o timeout);
//   - the page cache survives reopening (FOPEN_KEEP_CACHE) and new mtimes
//     (explicit data cache control): every change to the filesystem goes
//     through this mount's kernel, the device being locked against other
//     writers, so the cache is never stale;
//   - READDIRPLUS lookups answered from the inode number of the entry just
//     read, not by scanning the directory again (dirHandle.Lookup);
//   - directory offsets (d_off) that are byte offsets in the directory, so
//     seekdir and restarted reads need no state;
//   - 1 MiB reads and writes, no splice (it fails with 1 MiB requests),
//     async direct I/O (without it the kernel serialises deep queues),
//     64 background requests, and the mount's read_ahead_kb raised to
//     1 MiB (go-fuse can only lower the kernel's 128 KiB).
//
// As root the mount calls mount(2) itself (no fusermount3). Permissions
// are the kernel's (default_permissions); POSIX ACLs too, unless -o noacl:
// the kernel reads and sets them through system.posix_acl_access and
// system.posix_acl_default, which this package converts from and to
// FreeBSD's on-disk struct oldacl (acl.go), keeping the mode in step as
// ufs_setacl does. What the kernel leaves to a FUSE filesystem is done
// here (node.plan): a new inode inherits its directory's default ACL, and
// the caller's umask applies only where there is none (FUSE_DONT_MASK;
// umaskFS applies the umask the request carries). New inodes take the
// caller's uid and gid, or a set-group-ID directory's group (Linux's rule,
// not BSD's). Other FreeBSD attributes appear as user.* (user namespace) and
// trusted.* (system namespace), the names `ufs2 get` gives them on the
// host.
//
// Writes go straight to the engine (no FUSE writeback cache), so a
// write's errors (ENOSPC, EFBIG) reach the writer and fsync means the
// engine's Fsync of that inode. An open file holds an engine reference
// (Ref on open and create, Unref on release): unlinked while open, it
// stays readable and writable, and its space is freed at the last close
// (or, if the connection dies, when the server drops what it still holds
// before closing the engine). rename(2) passes RENAME_NOREPLACE and
// RENAME_EXCHANGE to the engine; fallocate allocates (mode 0 and
// FALLOC_FL_KEEP_SIZE), punches holes (FALLOC_FL_PUNCH_HOLE, freeing the
// whole blocks inside, ufs.FS.PunchHole) and zeroes ranges
// (FALLOC_FL_ZERO_RANGE: punched, then allocated zero-filled); O_TMPFILE is not
// offered.
//
// # Mount policy and lifetime
//
// OpenTarget opens the device and the engine. A read-write mount of a
// filesystem the engine will not write (WriteRefusal: not cleanly
// unmounted without soft updates, marked as needing fsck, features it
// does not maintain) fails with ErrNeedsFsck or ErrCannotWrite naming the
// reason; read-only mounts always work. -o force mounts a filesystem that
// only needs fsck read-write anyway, as FreeBSD's mount -f does; the
// engine leaves it marked not clean (FS_UNCLEAN, fs_clean 0) at the
// unmount, so that fsck still runs before the next ordinary mount.
// Features the engine does not maintain are refused even with force.
//
// Mount returns once the kernel has finished the FUSE handshake. The
// server runs until the filesystem is unmounted — umount(8), fusermount3
// -u, or Server.Unmount, which falls back to a lazy unmount (MNT_DETACH)
// when the mount is busy and keeps serving the open files until they are
// closed. Meanwhile a syncer calls the engine's Sync every 30 s
// (-o syncdelay), as FreeBSD's syncer does. Wait then closes the engine,
// which writes everything dirty and marks the filesystem clean.
//
// # Locks
//
// dirHandle.mu guards a directory handle's read position and is held
// while the engine reads that directory; refs.mu guards the count of
// engine references and is never held across an engine call. No code
// holds both; the engine's own locks are below them. Nothing here
// serialises requests: the engine's per-inode locks do.
package mount
