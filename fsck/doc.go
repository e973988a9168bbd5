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
// Every Problem carries a Kind (kind.go) naming its class; Problem.Leak
// tells the leaks (what preen repairs silently, the only inconsistencies
// soft updates may leave after a crash) from damage, so that a program can
// check a crashed image with No and Force and judge the result.
//
// # Exit status and deviations from fsck_ffs
//
// Report.ExitCode is what fsck_ffs 14 exits with (main.c checkfilesys,
// fsutil.c ckfini and pfatal, fsck_ffs(8)):
//   - 0: the check ran to its end and nothing asks for another run. This
//     includes -n (or no write access) finding inconsistencies it was told
//     not to fix: fsck_ffs's ckfini returns before its "STILL DIRTY" step
//     when it cannot write, so they do not change the status. Report.Clean
//     and the problem list tell a clean filesystem from one left damaged
//     (ufs2 fsck adds a line on stderr). A preen of a filesystem whose
//     fs_clean is set, without -f or -b, skips the check ("FILE SYSTEM
//     CLEAN; SKIPPING CHECKS", then "clean, N free ...") and returns 0.
//   - 3: a preen without -f or -b could not read the superblock (it is
//     missing, or disagrees with the backup in the last group).
//   - 8 (EEXIT): the check could not be made (no usable superblock, "LOOK
//     FOR ALTERNATE SUPERBLOCKS? no", an I/O error) or a preen met an
//     inconsistency it may not fix.
//   - 12: the check was interrupted (a cancelled context).
//   - 16 (ERERUN): the filesystem could not be completely repaired; another
//     run may finish it. Set when a repair asks for a rerun ("YOU WILL NEED
//     TO RERUN FSCK", also with -n, e.g. a cylinder group not rebuilt) and,
//     with write access, whenever a repair was left undone: the filesystem
//     then stays marked dirty ("FILE SYSTEM STILL DIRTY").
//
// -b takes a sector number (512-byte units), as fsck_ffs does.
//
// Remaining differences in exit status, and their reasons:
//   - An I/O error stops the check with 8; fsck_ffs asks "CONTINUE", goes
//     on with the unreadable sectors as zeros, and may then exit 0 or 16.
//   - fsck_ffs's statuses for what this package does not do are never
//     returned: 2 (SIGQUIT while preening), 4 (a mounted filesystem was
//     modified), 5-7 (background checks, -B and -F).
//   - ufs2 fsck exits 64 (EX_USAGE, the project's convention) on bad usage
//     where fsck_ffs exits 1, and refuses any two of -n, -y and -p where
//     fsck_ffs lets the last of -n and -y win (and stops -p with -n with 8,
//     "NO WRITE ACCESS").
//
// Other deliberate differences from fsck_ffs, each to finish in one run
// what fsck_ffs leaves to a second or cannot do:
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
// kept (one for most directories) and a 4-byte sort index. Beyond that the
// fixed costs are small and do not grow with the filesystem: inodes are
// read 64 KiB at a time; directory and indirect blocks are read into a few
// reused block buffers; a cylinder group's block is kept only while it has
// changes to write (or was rebuilt), so sound groups are read once in
// pass 1 and again, one at a time, in pass 5; pass 1 reuses one inode and
// one walk descriptor throughout. BenchmarkCheck100k and BenchmarkCheck1M
// report the peak heap against the paper's budget (xpaper).
package fsck
