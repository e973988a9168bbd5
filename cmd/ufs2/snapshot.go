package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/mount"
	"github.com/ufs2/ufs2/ufs"
)

func init() {
	register(withDoc(&cli.Command{
		Name:      "snapshot",
		Usage:     "take, list and delete snapshots of a UFS2 filesystem (FreeBSD mksnap_ffs)",
		ArgsUsage: "create TARGET NAME | list [--json] TARGET | delete TARGET NAME",
		Description: "TARGET is an image or device, or a mount point of ufs2 mount (or an\n" +
			"image a live mount holds): then the request goes through the mount's\n" +
			"control channel, which holds writers off while the snapshot is taken.\n" +
			"create takes a snapshot of the filesystem on TARGET as /.snap/NAME,\n" +
			"in FreeBSD's form (its fsck_ffs and kernel accept it): a frozen copy\n" +
			"of the filesystem as it is now, which read-only commands read with\n" +
			"--snapshot NAME; every later write (offline or through ufs2 mount)\n" +
			"copies what the snapshot still needs first. This version keeps one\n" +
			"snapshot per filesystem. list prints each snapshot's name, inode, creation\n" +
			"time and the blocks it holds; --json as a JSON array. delete removes\n" +
			"the snapshot and gives back the blocks it held.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "list: print JSON"},
		},
		Action: snapshotAction,
	}, manDoc{
		Examples: []example{
			{"ufs2 snapshot create disk.img before-upgrade", "Freeze the filesystem on disk.img as /.snap/before-upgrade."},
			{"ufs2 snapshot list disk.img", "List the snapshots on disk.img."},
			{"ufs2 snapshot create /mnt/disk nightly", "Take a snapshot of the live filesystem mounted on /mnt/disk."},
			{"ufs2 ls --snapshot before-upgrade disk.img /etc", "Read /etc as it was when the snapshot was taken."},
			{"ufs2 snapshot delete disk.img before-upgrade", "Remove the snapshot and free what it held."},
		},
		Exit:    "0 on success, 1 when TARGET cannot be read or written or the snapshot cannot be taken, 64 for a bad command line.",
		SeeAlso: []string{"ufs2-ls(8)", "ufs2-fsck(8)", "mksnap_ffs(8)"},
	}))
}

func snapshotAction(c *cli.Context) error {
	// Flags after the action word reach us as arguments: take --json there
	// too (snapshot list --json TARGET).
	asJSON := c.Bool("json")
	var args []string
	for _, a := range c.Args().Slice() {
		if a == "--json" || a == "-json" {
			asJSON = true
			continue
		}
		args = append(args, a)
	}
	if len(args) == 0 {
		return exitf(exitUsage, "snapshot: want create TARGET NAME, list TARGET or delete TARGET NAME; see ufs2 snapshot --help")
	}
	switch args[0] {
	case "create":
		if len(args) != 3 {
			return exitf(exitUsage, "snapshot create: want TARGET NAME; see ufs2 snapshot --help")
		}
		if asJSON {
			return exitf(exitUsage, "snapshot create: --json is for list")
		}
		return snapshotCreate(args[1], args[2])
	case "delete":
		if len(args) != 3 {
			return exitf(exitUsage, "snapshot delete: want TARGET NAME; see ufs2 snapshot --help")
		}
		return snapshotDelete(args[1], args[2])
	case "list":
		if len(args) != 2 {
			return exitf(exitUsage, "snapshot list: want TARGET; see ufs2 snapshot --help")
		}
		return snapshotList(args[1], asJSON)
	}
	return exitf(exitUsage, "snapshot: unknown action %q: want create, list or delete", args[0])
}

func snapshotCreate(target, name string) error {
	if rec, ok := mount.FindMount(target); ok {
		var s ufs.Snapshot
		if err := mount.Call(rec, "snapshot.create", mount.SnapshotArgs{Name: name}, &s); err != nil {
			return exitf(1, "snapshot create: %s: %v", target, controlErr(err))
		}
		fmt.Printf("%s: snapshot %s taken through the mount on %s (inode %d)\n", target, s.Name, rec.MountPoint, s.Ino)
		return nil
	}
	fsys, err := openFSReadWrite("snapshot create", target)
	if err != nil {
		return err
	}
	s, err := fsys.CreateSnapshot(name)
	cerr := fsys.Close()
	switch {
	case errors.Is(err, ufs.ErrExist):
		return exitf(1, "snapshot create: %s: a snapshot or file /.snap/%s exists already; choose another name", target, name)
	case errors.Is(err, ufs.ErrNoSpace):
		return exitf(1, "snapshot create: %s: no space for the snapshot's copies of the filesystem's maps; free some space first", target)
	case err != nil:
		return exitf(1, "snapshot create: %s: %v", target, err)
	case cerr != nil:
		return exitf(1, "snapshot create: %s: closing: %v", target, cerr)
	}
	fmt.Printf("%s: snapshot %s taken (inode %d)\n", target, s.Name, s.Ino)
	return nil
}

// snapshotInfo is one line of snapshot list, the JSON fields named as in
// the other commands' output.
type snapshotInfo struct {
	Name    string `json:"name"`
	Ino     uint32 `json:"inode"`
	Created string `json:"created"`
	Blocks  uint64 `json:"blocks"` // 512-byte sectors held (di_blocks)
}

func snapshotList(target string, asJSON bool) error {
	var snaps []ufs.Snapshot
	var blocks func(ufs.Snapshot) (uint64, error)
	if rec, ok := mount.FindMount(target); ok {
		if err := mount.Call(rec, "snapshot.list", nil, &snaps); err != nil {
			return exitf(1, "snapshot list: %s: %v", target, controlErr(err))
		}
		blocks = func(s ufs.Snapshot) (uint64, error) { return s.Blocks, nil }
	} else {
		fsys, err := openFSReadOnly("snapshot list", target)
		if err != nil {
			return err
		}
		defer fsys.Close()
		if snaps, err = fsys.Snapshots(); err != nil {
			return exitf(1, "snapshot list: %s: %v", target, err)
		}
		blocks = func(s ufs.Snapshot) (uint64, error) {
			st, err := fsys.Stat(s.Ino)
			return st.Blocks, err
		}
	}
	out := []snapshotInfo{}
	for _, s := range snaps {
		n, err := blocks(s)
		if err != nil {
			return exitf(1, "snapshot list: %s: %v", target, err)
		}
		out = append(out, snapshotInfo{Name: s.Name, Ino: uint32(s.Ino), Created: time.Unix(s.Time, 0).UTC().Format(time.RFC3339), Blocks: n})
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	for _, s := range out {
		fmt.Printf("%-20s inode %-8d %s %d sectors\n", s.Name, s.Ino, s.Created, s.Blocks)
	}
	return nil
}

// snapshotFlag is --snapshot NAME of the read-only commands.
var snapshotFlag = &cli.StringFlag{Name: "snapshot", Usage: "read the snapshot `NAME` (in /.snap) instead of the live filesystem"}

// openDeviceFor opens target for reading, or with a snapshot name the
// frozen image of that snapshot of the filesystem on it.
func openDeviceFor(cmd, target, snap string) (blockdev.Device, error) {
	dev, err := openForReading(cmd, target)
	if err != nil || snap == "" {
		return dev, err
	}
	fsys, err := ufs.Open(dev, ufs.Options{ReadOnly: true})
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("%s: %w", target, err)
	}
	s, err := fsys.SnapshotByName(snap)
	if err != nil {
		defer fsys.Close()
		if !errors.Is(err, ufs.ErrNotFound) {
			return nil, fmt.Errorf("%s: %w", target, err)
		}
		var names []string
		if snaps, lerr := fsys.Snapshots(); lerr == nil {
			for _, x := range snaps {
				names = append(names, x.Name)
			}
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("%s has no snapshot %q: it has no snapshots (take one with ufs2 snapshot create)", target, snap)
		}
		return nil, fmt.Errorf("%s has no snapshot %q; it has: %s", target, snap, strings.Join(names, ", "))
	}
	return &snapParent{Device: fsys.SnapshotDevice(s), parent: fsys}, nil
}

// snapParent is a snapshot's device that closes the filesystem it reads.
type snapParent struct {
	blockdev.Device
	parent *ufs.FS
}

func (d *snapParent) Close() error { return d.parent.Close() }

// openFSFor is openFSReadOnly with --snapshot.
func openFSFor(cmd, target, snap string) (*ufs.FS, error) {
	if snap == "" {
		return openFSReadOnly(cmd, target)
	}
	dev, err := openDeviceFor(cmd, target, snap)
	if err != nil {
		return nil, exitf(1, "%s: %v", cmd, err)
	}
	fsys, err := ufs.Open(dev, ufs.Options{ReadOnly: true})
	if err != nil {
		dev.Close()
		return nil, exitf(1, "%s: snapshot %s of %s: %v", cmd, snap, target, err)
	}
	return fsys, nil
}

func snapshotDelete(target, name string) error {
	if rec, ok := mount.FindMount(target); ok {
		if err := mount.Call(rec, "snapshot.delete", mount.SnapshotArgs{Name: name}, nil); err != nil {
			return exitf(1, "snapshot delete: %s: %v", target, controlErr(err))
		}
		fmt.Printf("%s: snapshot %s deleted through the mount on %s\n", target, name, rec.MountPoint)
		return nil
	}
	dev, err := blockdev.Open(target, blockdev.Options{})
	if err != nil {
		if errors.Is(err, blockdev.ErrMounted) {
			return exitf(1, "snapshot delete: %v; unmount it first", err)
		}
		return exitf(1, "snapshot delete: %v", err)
	}
	fsys, err := ufs.Open(dev, ufs.Options{SnapshotAdmin: true})
	if err != nil {
		dev.Close()
		return exitf(1, "snapshot delete: %s: %v", target, err)
	}
	if fsys.ReadOnly() {
		reason := fsys.ReadOnlyReason()
		fsys.Close()
		return exitf(1, "snapshot delete: %s: cannot write: %s", target, reason)
	}
	err = fsys.DeleteSnapshot(name)
	cerr := fsys.Close()
	switch {
	case errors.Is(err, ufs.ErrNotFound):
		return exitf(1, "snapshot delete: %s has no snapshot %q; ufs2 snapshot list %s shows those it has", target, name, target)
	case err != nil:
		return exitf(1, "snapshot delete: %s: %v", target, err)
	case cerr != nil:
		return exitf(1, "snapshot delete: %s: closing: %v", target, cerr)
	}
	fmt.Printf("%s: snapshot %s deleted\n", target, name)
	return nil
}

// controlErr is a control-channel error without the package prefix.
func controlErr(err error) string {
	return strings.TrimPrefix(err.Error(), mount.ErrControl.Error()+": ")
}
