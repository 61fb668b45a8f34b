package pfsbench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// largeWarm reads leaf (a non-root mount's copy of the file) and host
// (the same file in this host's page cache) alternately, sequentially
// and by mmap, and records the medians.
func (r *runner) largeWarm(lc LargeConfig, res *LargeResult, leaf, host string, sum uint32) error {
	r.progress("large file: warm sequential read and mmap, %s vs native, %d rounds", leaf, lc.WarmRounds)
	if _, _, err := readSum(host); err != nil { // native pages in
		return err
	}
	var seq, nseq, mm, nmm, flt, nflt []float64
	var leafX byte
	for round := range lc.WarmRounds {
		census := round == lc.WarmRounds-1 // once, after the timing of its round
		for _, p := range []string{leaf, host} {
			start := time.Now()
			n, got, err := readSum(p)
			if err != nil || n != lc.Bytes || got != sum {
				return fmt.Errorf("warm read %s: %d bytes crc32c %08x: %v", p, n, got, err)
			}
			v := mibPerS(n, time.Since(start))
			dm, faults, x, folios, err := mmapTouch(p, census)
			if err != nil {
				return err
			}
			if p == leaf {
				leafX, res.WarmFolios = x, folios
				seq, mm, flt = append(seq, v), append(mm, mibPerS(n, dm)), append(flt, float64(faults))
			} else {
				if x != leafX {
					return fmt.Errorf("mmap of %s and %s: pages differ", leaf, p)
				}
				nseq, nmm, nflt = append(nseq, v), append(nmm, mibPerS(n, dm)), append(nflt, float64(faults))
				res.NativeFolios = folios
			}
		}
	}
	res.WarmSeqMiBs, res.NativeSeqMiBs = medianF(seq), medianF(nseq)
	res.WarmMmapMiBs, res.NativeMmapMiBs = medianF(mm), medianF(nmm)
	res.WarmMmapFaults, res.NativeMmapFaults = int64(medianF(flt)), int64(medianF(nflt))
	return nil
}

// mmapTouch maps path and reads one byte of every page; it returns the
// time of the touching alone, its minor page faults (this process's:
// nothing else runs during the warm pass) and the XOR of the bytes read
// (used, so the compiler keeps the loads, and compared between copies
// of the file). With census, it then reads which folios back the
// mapping (untimed; nil when that needs root and we are not).
func mmapTouch(path string, census bool) (time.Duration, int64, byte, []FolioShare, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, 0, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, 0, 0, nil, err
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return 0, 0, 0, nil, fmt.Errorf("mmap %s: %w", path, err)
	}
	defer unix.Munmap(m)
	var before, after unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &before)
	start := time.Now()
	var x byte
	for i := 0; i < len(m); i += 4096 {
		x ^= m[i]
	}
	d := time.Since(start)
	_ = unix.Getrusage(unix.RUSAGE_SELF, &after)
	var folios []FolioShare
	if census {
		folios, _ = folioCensus(m) // evidence, not a result: absent when not root
	}
	return d, after.Minflt - before.Minflt, x, folios, nil
}

// largeServed reads a file no node has read on leafMount, cold and then
// from the node's chunk store (servedReads), and checks that every read
// reached copper-node.
func (r *runner) largeServed(ctx context.Context, lc LargeConfig, res *LargeResult, leafMount string, servedSum uint32) error {
	served := filepath.Join(leafMount, largeServedFile)
	r.progress("large file: one reader, %s cold, then from its node's chunk store, %d rounds", served, lc.WarmRounds)
	before, err := r.chunkLocalBytes(ctx, leafMount)
	if err != nil {
		return err
	}
	if res.ServedColdMiBs, res.ServedSpillMiBs, err = servedReads(served, lc.Bytes, servedSum, lc.WarmRounds); err != nil {
		return err
	}
	after, err := r.chunkLocalBytes(ctx, leafMount)
	if err != nil {
		return err
	}
	// Every read must have reached copper-node, or the chunk-store
	// figure would be the page cache's.
	if want := int64(lc.WarmRounds+1) * lc.Bytes; after-before < want {
		return fmt.Errorf("served reads of %s: copper-node read %d bytes for the mount, want ≥ %d (pages not dropped?)", served, after-before, want)
	}
	return nil
}

// servedReads reads path (a file no node has read) once, then rounds
// times more with the mount's pages of it dropped before each read, so
// that every READ reaches copper-node and is answered from its chunk
// store; it returns the cold and the median chunk-store MiB/s.
// posix_fadvise(DONTNEED) drops a FUSE file's clean pages (the kernel's
// generic fadvise), and only this mount's: no global drop_caches.
func servedReads(path string, size int64, sum uint32, rounds int) (cold, spill float64, err error) {
	read := func() (float64, error) {
		start := time.Now()
		n, got, err := readSum(path)
		if err != nil || n != size || got != sum {
			return 0, fmt.Errorf("read %s: %d bytes crc32c %08x: %v", path, n, got, err)
		}
		return mibPerS(n, time.Since(start)), nil
	}
	if cold, err = read(); err != nil {
		return 0, 0, err
	}
	var v []float64
	for range rounds {
		f, err := os.Open(path)
		if err != nil {
			return 0, 0, err
		}
		err = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		f.Close()
		if err != nil {
			return 0, 0, fmt.Errorf("drop the pages of %s: %w", path, err)
		}
		m, err := read()
		if err != nil {
			return 0, 0, err
		}
		v = append(v, m)
	}
	return cold, medianF(v), nil
}
