// Package blockdev is the bottom of the I/O stack: it turns a target named on
// the command line into a Device, a fixed-size array of bytes with positional
// reads and writes and a flush. It knows nothing about filesystems.
//
// # Targets
//
// A target is PATH or PATH@N. PATH is a regular image file or a block device
// (a disk, a partition, a loop device); PATH@N is partition N (1-based) of the
// GPT or MBR partition table found at the start of PATH. If a file literally
// named PATH@N exists it wins, so no existing file ever becomes unreachable.
// ParseTarget does only the splitting; Open does the rest.
//
// A partition is a window onto the whole device: offsets are relative to the
// partition's first byte and Size is the partition's size. The table is read
// once, at Open, with github.com/diskfs/go-diskfs (its gpt and mbr packages
// over the open *os.File: no root, nothing written). go-diskfs sizes the
// buffer for the GPT entry array from the header unchecked (a damaged header
// can ask for hundreds of GiB), so the headers are sanity checked here first,
// and a panic in the reader is recovered as an error.
//
// # Bounds
//
// Every Device, including a whole image file, has a size fixed at Open, and
// nothing reads or writes outside [0, Size): a read at or past the end returns
// io.EOF (a read that crosses the end returns the bytes before it and io.EOF,
// as io.ReaderAt requires) and a write that would cross the end fails with
// ErrOutOfRange and writes nothing. An image therefore never grows by
// accident; it grows only when Open is asked to (Options.Grow).
//
// # Exclusion
//
// Two writers on one filesystem corrupt it, so Open refuses a writable open
// when it can tell someone else might be writing:
//
//   - a target that is mounted (the device itself, one of its partitions, or,
//     for an image file, a loop device backed by it) fails with ErrMounted,
//     naming the mount point; see Mounted;
//   - a block device is opened O_EXCL when writable, so the kernel refuses it
//     while a filesystem, md or device-mapper holds it (ErrBusy);
//   - a regular file gets an advisory flock: exclusive when writable, shared
//     when read-only, never waiting. A conflict is ErrBusy, naming the
//     processes /proc/locks shows holding it (and the mount point of a
//     FUSE mount of the image by one of them). The lock lives as long as
//     the file descriptor, so it goes away with the process.
//
// A read-only open may ask to share an image with its writer
// (Options.AllowInUse): the tools that only read — dumpfs, fsck -n, ls,
// get — then read an image a live mount holds, unlocked, and InUse gives
// the warning to print: what is on disk may not be consistent while the
// mount writes. Such a Device still never writes.
//
// These are checks at Open, not a guarantee: the kernel may mount an image
// after Open, and a program that ignores flock is not stopped by it.
//
// # Durability
//
// Sync is fdatasync: when it returns, every write that returned before it
// began is on stable storage. There is no O_DIRECT and no alignment
// requirement; reads and writes are pread and pwrite through *os.File, which
// makes every Device here safe for concurrent use.
//
// # Tests
//
// Mem is an in-memory Device. Recorder wraps any Device and logs each write
// (offset and a copy of the data) and each flush in the order the device saw
// them; Apply replays a prefix of such a log onto another Device, which is how
// the crash tests build the image a power cut at any instant could leave.
package blockdev
