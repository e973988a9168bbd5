// Package fsck checks and repairs a UFS2 filesystem in the foreground, the
// way FreeBSD's fsck_ffs does: the same five phases, the same questions, the
// same messages and the same exit statuses. It reads and writes the device
// through ondisk and internal/blockdev only, never through the engine (ufs),
// so it works on filesystems too damaged for the engine to open.
//
// # Phases
//
//   - Setup reads the superblock (or the alternate one -b names; when the
//     primary is unusable it lists the backups, found through the recovery
//     record newfs leaves at byte 65536-20 or by probing where a backup would
//     lie for each possible geometry, and offers to use them) and the
//     cylinder-group summary array.
//   - Phase 1 reads every initialised inode (dynamic inode allocation: only
//     inodes below cg_initediblk are read; the rest are known zero), checks
//     its mode, size against its block pointers, the pointers against the
//     filesystem's bounds, its check-hash, its extended attribute area and
//     di_blocks, and builds the map of blocks in use. A block claimed twice
//     is a duplicate; Phase 1b finds the first claimants.
//   - Phase 2 checks every directory entry: ".", "..", record and name
//     lengths, d_type, and entries naming free, cleared or out-of-range
//     inodes. It learns each directory's parent.
//   - Phase 3 reconnects directories not reachable from the root under
//     /lost+found (created when needed).
//   - Phase 4 compares link counts with the references found, adjusts them,
//     and reconnects or clears unreferenced inodes.
//   - Phase 5 rebuilds each cylinder group's maps and summaries (inode and
//     block maps, cluster map and summary, fragment summary, per-group and
//     total counts, cg_initediblk) from what the earlier phases found and
//     compares them with what is on disk; check-hashes are recomputed on
//     every block written.
//
// After a run that answered yes to every question the filesystem is marked
// clean.
//
// # Modes
//
// No (fsck -n) answers no to every question and writes nothing: open the
// device read-only. Yes (-y) answers yes. Preen (-p) repairs only what soft
// updates can leave behind — unreferenced inodes and blocks still marked in
// use, link counts too high, wrong summary counts and maps — and stops with
// "UNEXPECTED SOFT UPDATE INCONSISTENCY; RUN fsck MANUALLY." (exit status 8)
// at anything else; in preen mode a filesystem marked clean is skipped unless
// Force is set.
//
// # Exit status and deviations from fsck_ffs
//
// Report.ExitCode is fsck_ffs's: 0 when the filesystem is consistent (or
// was made so), 8 (EEXIT) when the check could not be done or inconsistencies
// remain, 16 (ERERUN) when repairs were made that need a second run to
// finish. -b takes a sector number (512-byte units), as fsck_ffs does.
//
// Deliberate differences from fsck_ffs, each to finish in one run what
// fsck_ffs leaves to a second or cannot do:
//   - -n exits 8 when it found anything (fsck_ffs exits 0), and a check
//     made through -b without write access asks, and is refused, "UPDATE
//     STANDARD SUPERBLOCK", so that scripts can tell.
//   - Altering a directory entry does not by itself demand a rerun.
//   - A first or second directory entry that is not "." or ".." is moved
//     elsewhere in the directory to make room (fsck_ffs says "CANNOT FIX");
//     an out-of-range "." is corrected rather than removed.
//   - Phase 4 clears unreferenced and bad directories before checking other
//     link counts, giving back the links their entries took, so that the
//     files they named are reconnected in the same run.
//   - A superblock whose shifts disagree with its sizes is treated as
//     unreadable (the backups are offered), not used.
//   - When the primary superblock is unusable and there is no recovery
//     record (makefs writes none), the backups are found by probing where
//     the first group's copy lies for each fragment and block size.
//   - The extended attribute area is parsed (fsck_ffs 14 skips it); an
//     unparsable area is offered for clearing.
//
// # Memory
//
// As the UFS2 paper budgets: 4 bytes of state per initialised inode (state,
// type and outstanding link count), one bit per fragment for the block map,
// and for directories only a 32-byte record plus 8 bytes per block pointer
// kept (one for most directories) and a 4-byte sort index. Inodes are read
// 64 KiB at a time; cylinder group blocks are kept in memory.
package fsck
