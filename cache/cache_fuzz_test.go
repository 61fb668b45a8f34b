package cache

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/hpc-copper/copper/op"
)

// FuzzOperations drives a small cache with an arbitrary sequence of stores,
// lookups, clock moves and clears, and checks the byte accounting and the
// budget after every step. Each step is 3 bytes: action+op, path, size.
func FuzzOperations(f *testing.F) {
	f.Add([]byte{0x02, 1, 10, 0x05, 2, 200, 0x15, 1, 0, 0x35, 2, 0})
	f.Add([]byte{0x12, 1, 0, 0x22, 1, 0, 0x42, 1, 0, 0x22, 1, 0})
	f.Add([]byte{0x05, 1, 255, 0x05, 2, 255, 0x05, 3, 255, 0x03, 4, 90, 0x04, 5, 30, 0x52, 0, 0})
	f.Add([]byte{0x05, 7, 255, 0x62, 0, 0, 0x05, 7, 1, 0x25, 7, 0})
	f.Fuzz(func(t *testing.T, script []byte) {
		c, clock := newTestCache(t, 2000, testTTL)
		for i := 0; i+2 < len(script); i += 3 {
			o := op.Op((script[i]&0x0f)%uint8(len(op.All)) + 1)
			// Paths below /pN are the names a dirplus of /pN stores.
			path := fmt.Sprintf("/p%d", script[i+1]%16)
			if script[i+1]&0x80 != 0 {
				path = fmt.Sprintf("/p%d/c%02d", script[i+1]%4, script[i+1]>>4&7)
			}
			n := int(script[i+2]) * 8
			switch (script[i] >> 4) % 7 {
			case 0: // store a success
				entries := make([]op.DirEntry, n/64)
				plus := make([]op.PlusEntry, n/128)
				for j := range plus {
					plus[j] = op.PlusEntry{Name: fmt.Sprintf("c%02d", j), Attr: fileAttr(int64(j)), Target: "t", HasTarget: j%2 == 0}
				}
				c.Store(o, path, op.Result{Attr: fileAttr(int64(n)), Entries: entries, Plus: plus, Target: path, Data: make([]byte, n)})
			case 1: // store ENOENT
				c.Store(o, path, op.Fail(syscall.ENOENT))
			case 2, 3: // lookup
				r, ok := c.Lookup(o, path)
				if ok && !r.OK() && r.Errno != syscall.ENOENT {
					t.Fatalf("step %d: cached errno %v", i/3, r.Errno)
				}
			case 4: // store another error
				c.Store(o, path, op.Fail(syscall.EACCES))
			case 5: // move the clock
				clock.Advance(time.Duration(n) * time.Millisecond)
			case 6:
				c.Clear()
			}
			checkInvariants(t, c)
		}
	})
}
