package crashtest

import (
	"testing"

	"github.com/ufs2/ufs2/ondisk"
)

// TestCheckPattern: CheckContents accepts a file's own pattern and zeros
// (also mixed inside a word, where a write began), and finds another
// file's data and data from another offset.
func TestCheckPattern(t *testing.T) {
	const ino = ondisk.Ino(4242)
	pattern := func(ino ondisk.Ino, off int64, n int, v byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = patternByte(ino, off+int64(i), v)
		}
		return b
	}
	mixed := pattern(ino, 4096, 64, 7)
	clear(mixed[:16]) // a write that began at byte 16
	half := pattern(ino, 0, 16, 3)
	clear(half[9:11])
	tests := []struct {
		name string
		data []byte
		off  int64
		ok   bool
		bad  int64
	}{
		{"own", pattern(ino, 8192, 4096, 9), 8192, true, 0},
		{"zeros", make([]byte, 512), 0, true, 0},
		{"mixed", mixed, 4096, true, 0},
		{"short tail", pattern(ino, 0, 13, 1), 0, true, 0},
		{"another file", pattern(ino+1, 512, 512, 1), 512, false, 512},
		{"another offset", pattern(ino, 0, 512, 1), 4096, false, 4096},
		{"half a word", half, 0, false, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad, ok := checkPattern(ino, tc.data, tc.off)
			if ok != tc.ok || bad != tc.bad {
				t.Errorf("checkPattern = %d, %v; want %d, %v", bad, ok, tc.bad, tc.ok)
			}
		})
	}
}
