//go:build ufs2bench

// Command dumpbench measures ufs2 dump and restore against the reference
// points of issue 11, in one run, and prints each as a ratio (higher is
// better for ufs2):
//
//	go run -tags ufs2bench ./bench/dumpbench -ufs2 /path/to/ufs2 [-files 100000] [-large 512]
//
//	dump-large    dump -0 -f /dev/null of an image of large files, in MB/s
//	              of dump, against cat IMAGE > /dev/null in MB/s   (aim >= 0.7)
//	dump-small    dump -0 -f /dev/null of N small files against tar -c
//	              of the same tree through a ufs2 mount            (aim >= 2)
//	restore       restore -r into the host filesystem against tar -x of
//	              the same tree there, both synced                 (aim >= 0.8)
//	zstd-size     the size of a -z zstd dump of the small files
//	              against the plain dump's
//
// Page caches of the image are dropped (posix_fadvise) before each read;
// the mount is fresh for the tar run. GNU tar does not read files when
// its archive is /dev/null, so tar -c writes to a pipe into /dev/null.
// Run as root (it mounts).
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

var (
	ufs2Bin = flag.String("ufs2", "ufs2", "the ufs2 program")
	workDir = flag.String("dir", "", "work directory (default: a new directory under $TMPDIR)")
	nfiles  = flag.Int("files", 100000, "small files")
	largeMB = flag.Int("large", 512, "MiB of large files (4 files)")
	keep    = flag.Bool("keep", false, "keep the work directory")
)

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "dumpbench: "+format+"\n", args...)
	os.Exit(1)
}

func run(dir string, name string, args ...string) time.Duration {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stderr = nil
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return time.Since(start)
}

func sh(dir, script string) time.Duration { return run(dir, "sh", "-c", script) }

// dropCache drops the page cache of a file.
func dropCache(p string) {
	f, err := os.Open(p)
	if err != nil {
		fatalf("%v", err)
	}
	defer f.Close()
	if err := unix.Fdatasync(int(f.Fd())); err != nil {
		fatalf("fdatasync %s: %v", p, err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		fatalf("fadvise %s: %v", p, err)
	}
}

func size(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		fatalf("%v", err)
	}
	return fi.Size()
}

func main() {
	flag.Parse()
	if os.Geteuid() != 0 {
		fatalf("dumpbench mounts a ufs2 image: run it as root")
	}
	base := *workDir
	if base == "" {
		var err error
		if base, err = os.MkdirTemp("", "dumpbench-"); err != nil {
			fatalf("%v", err)
		}
	}
	if !*keep {
		defer os.RemoveAll(base)
	}
	rng := rand.New(rand.NewPCG(11, 11))

	// large files: random data
	large := filepath.Join(base, "large")
	os.MkdirAll(large, 0o755)
	buf := make([]byte, 1<<20)
	for i := range 4 {
		f, err := os.Create(filepath.Join(large, fmt.Sprintf("big%d", i)))
		if err != nil {
			fatalf("%v", err)
		}
		for range *largeMB / 4 {
			for j := 0; j < len(buf); j += 8 {
				v := rng.Uint64()
				for k := range 8 {
					buf[j+k] = byte(v >> (8 * k))
				}
			}
			f.Write(buf)
		}
		f.Close()
	}
	// small files: text of 0 to 8 KiB, 100 to a directory
	small := filepath.Join(base, "small")
	words := strings.Fields("the quick brown fox jumps over a lazy dog while ufs2 dumps and restores its files in order")
	for i := range *nfiles {
		d := filepath.Join(small, fmt.Sprintf("d%03d", i/100))
		if i%100 == 0 {
			os.MkdirAll(d, 0o755)
		}
		var b strings.Builder
		for n := rng.IntN(8192); b.Len() < n; {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%05d.txt", i)), []byte(b.String()), 0o644); err != nil {
			fatalf("%v", err)
		}
	}
	sh(base, "sync")
	imgL, imgS := filepath.Join(base, "large.img"), filepath.Join(base, "small.img")
	// the large image is written through, so that cat reads blocks, not holes
	sizeL := *largeMB + *largeMB/8 + 64
	sh(base, fmt.Sprintf("dd if=/dev/zero of=%s bs=1M count=%d status=none", imgL, sizeL))
	run(base, *ufs2Bin, "newfs", "-n", "-s", fmt.Sprintf("%dm", sizeL), "--from", large, imgL)
	run(base, *ufs2Bin, "newfs", "-n", "-s", fmt.Sprintf("%dm", *nfiles*12/1024+256), "--from", small, imgS)

	dd := filepath.Join(base, "dumpdates")
	dumpTo := func(img, out string, extra ...string) time.Duration {
		dropCache(img)
		args := append([]string{"dump", "-0", "-D", dd, "-f", out}, extra...)
		return run(base, *ufs2Bin, append(args, img)...)
	}

	// dump-large: both read the image and write to /dev/null
	dL := filepath.Join(base, "large.dump")
	dumpTo(imgL, dL) // for its size
	tDumpL := dumpTo(imgL, "/dev/null")
	dropCache(imgL)
	tCat := sh(base, "cat "+imgL+" > /dev/null")
	mbDump := float64(size(dL)) / tDumpL.Seconds() / 1e6
	mbCat := float64(size(imgL)) / tCat.Seconds() / 1e6
	os.Remove(dL)

	// dump-small against tar through a mount, both to /dev/null
	dS := filepath.Join(base, "small.dump")
	dumpTo(imgS, dS) // for restore
	tDumpS := dumpTo(imgS, "/dev/null")
	mnt := filepath.Join(base, "mnt")
	os.MkdirAll(mnt, 0o755)
	dropCache(imgS)
	run(base, *ufs2Bin, "mount", "-o", "ro", imgS, mnt)
	tTar := sh(mnt, "tar -cf - . | cat > /dev/null")
	for i := 0; ; i++ {
		if err := exec.Command("umount", mnt).Run(); err == nil {
			break
		} else if i > 50 {
			fatalf("umount %s: %v", mnt, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// restore into the host filesystem against tar -x
	tarball := filepath.Join(base, "small.tar")
	sh(small, "tar -cf "+tarball+" .")
	rdir, tdir := filepath.Join(base, "restored"), filepath.Join(base, "untarred")
	os.MkdirAll(rdir, 0o755)
	os.MkdirAll(tdir, 0o755)
	dropCache(dS)
	tRestore := sh(rdir, *ufs2Bin+" restore -rf "+dS+" && sync -f .")
	dropCache(tarball)
	tUntar := sh(tdir, "tar -xf "+tarball+" && sync -f .")

	// zstd size
	dZ := filepath.Join(base, "small.dump.zst")
	tDumpZ := dumpTo(imgS, dZ, "-z", "zstd")

	fmt.Printf("%-12s %10s %10s %8s %s\n", "workload", "ufs2", "reference", "ratio", "aim")
	fmt.Printf("%-12s %7.1f MB/s %7.1f MB/s %8.2f >= 0.7   (%d MiB of large files; cat of the %d MiB image)\n",
		"dump-large", mbDump, mbCat, mbDump/mbCat, *largeMB, size(imgL)>>20)
	fmt.Printf("%-12s %9.2fs %9.2fs %8.2f >= 2     (%d small files; tar -c through a ufs2 mount)\n",
		"dump-small", tDumpS.Seconds(), tTar.Seconds(), tTar.Seconds()/tDumpS.Seconds(), *nfiles)
	fmt.Printf("%-12s %9.2fs %9.2fs %8.2f >= 0.8   (restore -r against tar -x, host filesystem, synced)\n",
		"restore", tRestore.Seconds(), tUntar.Seconds(), tUntar.Seconds()/tRestore.Seconds())
	fmt.Printf("%-12s %8dKB %8dKB %8.2f          (-z zstd dump of the small files, %.2fs, against the plain dump)\n",
		"zstd-size", size(dZ)>>10, size(dS)>>10, float64(size(dZ))/float64(size(dS)), tDumpZ.Seconds())
}
