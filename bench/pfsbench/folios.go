package pfsbench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"unsafe"
)

// FolioShare is the part of a mapping's bytes held in page-cache folios
// of one size.
type FolioShare struct {
	FolioBytes int64   `json:"folio_bytes"`
	Share      float64 `json:"share"` // of the mapping's resident bytes
}

// Bits of /proc/kpageflags (Documentation/admin-guide/mm/pagemap.rst).
const (
	kpfCompoundHead = 1 << 15
	kpfCompoundTail = 1 << 16
	pagemapPresent  = 1 << 63
	pagemapPFNMask  = 1<<55 - 1
	censusPage      = 4096
)

// folioCensus reads which folios back the resident pages of m: each
// page's frame from /proc/self/pagemap, its flags from /proc/kpageflags
// (a head page starts a large folio, tail pages continue it; a page with
// neither is a folio of its own). It says why the kernel maps a file a
// fault-around window or a whole folio per fault. Both files give frame
// numbers and flags to root only (CAP_SYS_ADMIN); others get an error.
func folioCensus(m []byte) ([]FolioShare, error) {
	if len(m) == 0 {
		return nil, errors.New("folio census: empty mapping")
	}
	pagemap, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return nil, fmt.Errorf("folio census: %w", err)
	}
	defer pagemap.Close()
	flags, err := os.Open("/proc/kpageflags")
	if err != nil {
		return nil, fmt.Errorf("folio census: %w", err)
	}
	defer flags.Close()
	pages := (len(m) + censusPage - 1) / censusPage
	entries := make([]byte, 8*pages)
	start := uintptr(unsafe.Pointer(&m[0])) / censusPage
	if _, err := pagemap.ReadAt(entries, int64(start*8)); err != nil {
		return nil, fmt.Errorf("folio census: /proc/self/pagemap: %w", err)
	}
	sizes := map[int]int{} // folio size in pages → pages of the mapping in such folios
	run := 0               // pages of the current large folio seen so far
	end := func() {
		if run > 0 {
			sizes[run] += run
		}
		run = 0
	}
	word := make([]byte, 8)
	for i := range pages {
		e := binary.LittleEndian.Uint64(entries[8*i:])
		pfn := e & pagemapPFNMask
		if e&pagemapPresent == 0 {
			end()
			continue
		}
		if pfn == 0 {
			return nil, errors.New("folio census: /proc/self/pagemap hides page frames (needs root)")
		}
		if _, err := flags.ReadAt(word, int64(pfn*8)); err != nil {
			return nil, fmt.Errorf("folio census: /proc/kpageflags: %w", err)
		}
		switch f := binary.LittleEndian.Uint64(word); {
		case f&kpfCompoundHead != 0:
			end()
			run = 1
		case f&kpfCompoundTail != 0 && run > 0:
			run++
		default:
			end()
			sizes[1]++
		}
	}
	end()
	return folioShares(sizes), nil
}

// folioShares turns pages per folio size into shares, largest folio
// first.
func folioShares(sizes map[int]int) []FolioShare {
	total := 0
	for _, n := range sizes {
		total += n
	}
	if total == 0 {
		return nil
	}
	out := make([]FolioShare, 0, len(sizes))
	for pages, n := range sizes {
		out = append(out, FolioShare{FolioBytes: int64(pages) * censusPage, Share: float64(n) / float64(total)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FolioBytes > out[j].FolioBytes })
	return out
}

// folioText is a census as prose: "92% in 2 MiB folios, 8% in 4 KiB".
// Shares under 1% are summed into "the rest".
func folioText(shares []FolioShare) string {
	var parts []string
	rest := 0.0
	for _, s := range shares {
		if s.Share < 0.01 {
			rest += s.Share
			continue
		}
		parts = append(parts, fmt.Sprintf("%.0f%% in %s", 100*s.Share, sizeText(s.FolioBytes)))
	}
	if rest > 0 {
		parts = append(parts, fmt.Sprintf("%.1f%% in other sizes", 100*rest))
	}
	if len(parts) > 0 {
		parts[0] += " folios"
	}
	return strings.Join(parts, ", ")
}

// sizeText writes a power-of-two size as KiB or MiB; a folio's size
// that is no power of two (a folio cut by the end of the mapping) in
// KiB.
func sizeText(b int64) string {
	if b >= 1<<20 && b%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", b>>20)
	}
	return fmt.Sprintf("%d KiB", b>>10)
}
