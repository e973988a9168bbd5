//go:build ufs2bench

// Command loopback is go-fuse's example/loopback with one change: FUSE
// passthrough is turned off (fuse.CAP_PASSTHROUGH disabled), so that every
// read and write goes through the FUSE server, as it must for ufs2 (whose
// files are not host files). With passthrough, which go-fuse's example
// uses when run as root, the kernel serves file data from the backing
// file without the server. The benchmark reports both.
//
//	loopback MOUNTPOINT ORIGINAL
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: loopback MOUNTPOINT ORIGINAL")
		os.Exit(2)
	}
	root, err := fs.NewLoopbackRoot(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sec := time.Second
	opts := &fs.Options{
		// The example's settings.
		AttrTimeout:     &sec,
		EntryTimeout:    &sec,
		NullPermissions: true,
		MountOptions: fuse.MountOptions{
			DirectMount:          true,
			FsName:               os.Args[2],
			Name:                 "loopback",
			DisabledCapabilities: fuse.CAP_PASSTHROUGH,
		},
	}
	server, err := fs.Mount(os.Args[1], root, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-c
		server.Unmount()
	}()
	server.Wait()
}
