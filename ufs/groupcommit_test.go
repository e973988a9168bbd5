package ufs

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ufs2/ufs2/internal/blockdev"
	"github.com/ufs2/ufs2/ondisk"
)

// syncCounter counts device flushes and makes each take a while, as a
// disk's does, so that fsyncs of several writers overlap.
type syncCounter struct {
	blockdev.Device
	n atomic.Int64
}

func (d *syncCounter) Sync() error {
	d.n.Add(1)
	time.Sleep(2 * time.Millisecond)
	return d.Device.Sync()
}

// TestFsyncsShareFlushes: writers fsyncing at once share device flushes
// (group commit): a wait that finds a round running waits for it and looks
// again instead of queueing a round of its own behind it. Every fsync
// still returns only once its data is durable (the crash tests hold that);
// here the flushes are counted against the fsyncs.
func TestFsyncsShareFlushes(t *testing.T) {
	mem := blockdev.NewMemBytes(emptyImage(t, geomBigSU))
	dev := &syncCounter{Device: mem}
	fsys, err := Open(dev, Options{SyncInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	const writers, steps = 8, 20
	var inos [writers]ondisk.Ino
	for i := range inos {
		inos[i] = mustIno(t)(fsys.Create(fsys.Root(), "f"+itoa(i), 0o644, 0, 0))
	}
	before := dev.n.Load()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 5000)
			for s := range steps {
				if _, err := fsys.WriteAt(inos[w], buf, int64(s)*5000); err != nil {
					t.Error(err)
					return
				}
				if err := fsys.Fsync(inos[w], false); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	flushes := dev.n.Load() - before
	t.Logf("%d fsyncs, %d device flushes (%.2f per fsync)", writers*steps, flushes, float64(flushes)/float64(writers*steps))
	if flushes >= writers*steps {
		t.Errorf("%d flushes for %d concurrent fsyncs: none shared", flushes, writers*steps)
	}
	must(t, fsys.Close())
	fsys, err = Open(mem, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	checkFS(t, fsys)
	must(t, fsys.Close())
}
