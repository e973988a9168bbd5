package fsck

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
)

// TestExitStatus pins the exit statuses to fsck_ffs 14's (main.c
// checkfilesys, fsutil.c ckfini and pfatal, setup.c): a check that runs to
// its end returns 16 if something asks for a rerun and 0 otherwise, even
// with -n leaving inconsistencies unrepaired; a check that cannot be made
// returns 8; a preen without -f or -b that cannot read the superblock
// returns 3.
func TestExitStatus(t *testing.T) {
	linkTooHigh := func(t *testing.T, m *img) {
		ino := m.lookup(pick(t, m, 1, 40000, 1)[0])
		dp := m.inode(ino)
		dp.Nlink = 5
		m.putInode(ino, dp)
	}
	zeroCg0 := func(t *testing.T, m *img) {
		off := m.sb.FragOffset(m.sb.Cgtod(0))
		clear(m.b[off : off+int64(m.sb.Cgsize)])
	}
	tests := []struct {
		name    string
		opts    Options
		damage  func(t *testing.T, m *img)
		exit    int
		clean   bool
		err     error  // wanted sentinel, nil for none
		want    string // in the transcript
		notWant string // not in the transcript
	}{
		{name: "-n -f, consistent", opts: Options{Mode: No, Force: true}, exit: ExitOK, clean: true,
			want: "files,"},
		{name: "-n -f, inconsistent: told not to fix", opts: Options{Mode: No, Force: true}, damage: linkTooHigh,
			exit: ExitOK, want: "ADJUST? no", notWant: "PLEASE RERUN"},
		{name: "-n -f, group to rebuild: rerun", opts: Options{Mode: No, Force: true}, damage: zeroCg0,
			exit: ExitRerun, want: "YOU WILL NEED TO RERUN FSCK"},
		{name: "-y -f, inconsistent: repaired", opts: Options{Mode: Yes, Force: true}, damage: linkTooHigh,
			exit: ExitOK, clean: true, want: "***** FILE SYSTEM WAS MODIFIED *****"},
		{name: "-n, no superblock", opts: Options{Mode: No}, damage: func(t *testing.T, m *img) { zeroSuperblock(m) },
			exit: ExitError, err: ErrNoSuperblock, want: "LOOK FOR ALTERNATE SUPERBLOCKS? no"},
		{name: "-n -b, primary unusable: checked through the backup", opts: Options{Mode: No, AltSuperblock: 32},
			damage: func(t *testing.T, m *img) { zeroSuperblock(m) }, exit: ExitOK, clean: true,
			notWant: "UPDATE STANDARD SUPERBLOCK"},
		{name: "-p, clean: skipped", opts: Options{Mode: Preen}, exit: ExitOK, clean: true,
			want: "FILE SYSTEM CLEAN; SKIPPING CHECKS"},
		{name: "-p, clean but flagged: fs_clean decides", opts: Options{Mode: Preen}, exit: ExitOK, clean: true,
			damage: func(t *testing.T, m *img) {
				m.sb.Flags |= ondisk.FSNeedsFsck
				m.writeSuperblock()
			},
			want: "FILE SYSTEM CLEAN; SKIPPING CHECKS"},
		{name: "-p, no superblock", opts: Options{Mode: Preen}, damage: func(t *testing.T, m *img) { zeroSuperblock(m) },
			exit: ExitNoSuperblock, err: ErrNoSuperblock, want: "Cannot find file system superblock"},
		{name: "-p, superblock disagrees with the last backup", opts: Options{Mode: Preen},
			damage: func(t *testing.T, m *img) {
				m.sb.Iblkno++
				m.writeSuperblock()
			},
			exit: ExitNoSuperblock, err: ErrNoSuperblock},
		{name: "-p -f, no superblock", opts: Options{Mode: Preen, Force: true},
			damage: func(t *testing.T, m *img) { zeroSuperblock(m) },
			exit:   ExitError, err: ErrNoSuperblock, want: "CAN'T CHECK FILE SYSTEM"},
		{name: "-p, unexpected inconsistency", opts: Options{Mode: Preen},
			damage: func(t *testing.T, m *img) {
				e := m.entryOf(pick(t, m, 1, 40000, 1)[0])
				le.PutUint32(m.b[e.off:], uint32(m.freeInode()))
				m.sb.Clean = 0
				m.writeSuperblock()
			},
			exit: ExitError, err: ErrAborted, want: "RUN fsck MANUALLY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := image(t, specSmall)
			if tt.damage != nil {
				tt.damage(t, openImg(t, b))
			}
			rep, _, out, err := check(t, b, tt.opts)
			if rep.ExitCode != tt.exit || rep.Clean != tt.clean {
				t.Errorf("exit %d clean %v, want exit %d clean %v\n%s", rep.ExitCode, rep.Clean, tt.exit, tt.clean, out)
			}
			if (tt.err == nil) != (err == nil) || (tt.err != nil && !errors.Is(err, tt.err)) {
				t.Errorf("error %v, want %v", err, tt.err)
			}
			if !tt.clean && tt.err == nil && len(rep.Problems) == 0 {
				t.Errorf("no problems reported\n%s", out)
			}
			if tt.want != "" && !strings.Contains(out, tt.want) {
				t.Errorf("transcript lacks %q:\n%s", tt.want, out)
			}
			if tt.notWant != "" && strings.Contains(out, tt.notWant) {
				t.Errorf("transcript has %q:\n%s", tt.notWant, out)
			}
		})
	}
}

// TestExitInterrupted: a cancelled check reports fsck_ffs's status for an
// interrupt.
func TestExitInterrupted(t *testing.T) {
	b := image(t, specSmall)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := Check(ctx, blockdev.NewMemBytes(b).ReadOnlyView(), Options{Mode: No, Force: true})
	if !errors.Is(err, context.Canceled) || rep == nil || rep.ExitCode != ExitInterrupted {
		t.Fatalf("cancelled check: %v, report %+v", err, rep)
	}
}
