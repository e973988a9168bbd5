package ufs

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
)

// gateSource is a Source whose fetches wait for the test: each Fetch is
// recorded and sent on asked; the test then fills and moves the barrier.
type gateSource struct {
	mu    sync.Mutex
	calls [][2]int64
	asked chan [2]int64
	err   error
}

func (s *gateSource) Fetch(ino ondisk.Ino, off, end int64) error {
	s.mu.Lock()
	s.calls = append(s.calls, [2]int64{off, end})
	err := s.err
	s.mu.Unlock()
	if err == nil {
		s.asked <- [2]int64{off, end}
	}
	return err
}

// TestResidency: reads below the barrier go on without the source; a read
// past it asks the source for the range and waits until the barrier
// passes the end of the read, then sees what the source filled in; writes
// and truncations wait for the whole file; a failed fetch fails the
// waiting read with ErrFetch; an interrupted wait returns at once.
func TestResidency(t *testing.T) {
	fsys, err := Open(blockdev.NewMemBytes(emptyImage(t, geomBigSU)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		checkFS(t, fsys)
		must(t, fsys.Close())
	})
	const size, barrier = 300 << 10, 64 << 10
	want := make([]byte, size)
	for i := range want {
		want[i] = byte(i*7 + i>>9)
	}
	ino := mustIno(t)(fsys.Create(fsys.Root(), "f", 0o644, 0, 0))
	if _, err := fsys.WriteAt(ino, want, 0); err != nil {
		t.Fatal(err)
	}
	// What the engine holds past the barrier is stale: the source has the
	// real data.
	if _, err := fsys.WriteAt(ino, make([]byte, size-barrier), barrier); err != nil {
		t.Fatal(err)
	}
	src := &gateSource{asked: make(chan [2]int64, 4)}
	must(t, fsys.MakeNonResident(ino, barrier, src))
	if b, ok := fsys.Barrier(ino); !ok || b != barrier {
		t.Fatalf("Barrier = %d, %v", b, ok)
	}

	buf := make([]byte, 32<<10)
	if _, err := fsys.ReadAt(ino, buf, 0); err != nil || !bytes.Equal(buf, want[:len(buf)]) {
		t.Fatalf("read below the barrier: %v", err)
	}
	if len(src.calls) != 0 {
		t.Fatalf("a read below the barrier asked the source: %v", src.calls)
	}

	// A read past the barrier waits for the source.
	got := make([]byte, 100<<10)
	done := make(chan error, 1)
	go func() {
		_, err := fsys.ReadAt(ino, got, 50<<10)
		done <- err
	}()
	r := <-src.asked
	if r != [2]int64{barrier, 150 << 10} {
		t.Errorf("source asked for %v, want [%d %d]", r, barrier, 150<<10)
	}
	select {
	case err := <-done:
		t.Fatalf("the read returned (%v) before the data was there", err)
	case <-time.After(50 * time.Millisecond):
	}
	must(t, fsys.Fill(ino, want[barrier:200<<10], barrier))
	must(t, fsys.SetBarrier(ino, 200<<10))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want[50<<10:150<<10]) {
		t.Error("the read past the old barrier does not see what the source filled in")
	}

	// A write waits for the whole file; so does a truncation.
	wdone := make(chan error, 2)
	go func() {
		_, err := fsys.WriteAt(ino, []byte("after"), 10)
		wdone <- err
	}()
	go func() {
		sz := uint64(size)
		_, err := fsys.Setattr(ino, SetAttr{Size: &sz})
		wdone <- err
	}()
	for range 2 {
		if r := <-src.asked; r != [2]int64{200 << 10, size} {
			t.Errorf("a write asked the source for %v, want the rest of the file", r)
		}
	}
	select {
	case err := <-wdone:
		t.Fatalf("a write returned (%v) before the file was resident", err)
	case <-time.After(50 * time.Millisecond):
	}
	must(t, fsys.Fill(ino, want[200<<10:], 200<<10))
	must(t, fsys.SetBarrier(ino, size))
	for range 2 {
		if err := <-wdone; err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := fsys.Barrier(ino); ok {
		t.Error("the file is still non-resident with the barrier at its size")
	}
	copy(want[10:], "after")
	all := make([]byte, size)
	if _, err := fsys.ReadAt(ino, all, 0); err != nil || !bytes.Equal(all, want) {
		t.Fatalf("the resident file: %v, equal %v", err, bytes.Equal(all, want))
	}

	// A fetch that fails fails the read; an interrupted wait stops.
	must(t, fsys.MakeNonResident(ino, barrier, src))
	rdone := make(chan error, 1)
	go func() {
		_, err := fsys.ReadAt(ino, buf, barrier)
		rdone <- err
	}()
	<-src.asked
	fsys.FailFetch(ino, errors.New("archive volume missing"))
	if err := <-rdone; !errors.Is(err, ErrFetch) {
		t.Errorf("read after a failed fetch: %v, want ErrFetch", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cdone := make(chan error, 1)
	go func() { cdone <- fsys.WaitResident(ctx, ino, barrier, barrier+1) }()
	<-src.asked
	cancel()
	if err := <-cdone; !errors.Is(err, context.Canceled) {
		t.Errorf("interrupted wait: %v", err)
	}
	must(t, fsys.SetBarrier(ino, size))
}
