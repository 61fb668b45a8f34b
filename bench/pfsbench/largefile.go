package pfsbench

import (
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"
)

// writeLargeFile writes n bytes of a fixed pattern that differs in every
// 4 KiB page (a page mixed up with another fails the checksum) and
// returns their CRC-32C.
func writeLargeFile(path string, n int64) (uint32, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, err
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	table := crc32.MakeTable(crc32.Castagnoli)
	var sum uint32
	buf := make([]byte, 1<<20)
	for off := int64(0); off < n; off += int64(len(buf)) {
		b := buf[:min(int64(len(buf)), n-off)]
		for i := 0; i < len(b); i += 8 {
			v := uint64(off+int64(i))*0x9E3779B97F4A7C15 + 1
			for k := 0; k < 8 && i+k < len(b); k++ {
				b[i+k] = byte(v >> (8 * k))
			}
		}
		sum = crc32.Update(sum, table, b)
		if _, err := f.Write(b); err != nil {
			return 0, fmt.Errorf("write %s: %w", path, err)
		}
	}
	return sum, f.Close()
}

// readSum reads path whole with 1 MiB reads and returns its size and CRC-32C.
func readSum(path string) (int64, uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	n, err := io.CopyBuffer(h, f, make([]byte, 1<<20))
	return n, h.Sum32(), err
}

func mibPerS(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / (1 << 20) / d.Seconds()
}
