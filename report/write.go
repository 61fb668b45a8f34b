package report

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hpc-copper/copper/internal/osutil"
)

// outputFile is one file a command produces.
type outputFile struct {
	name string
	data []byte
}

// writeAll creates dir and writes every file into it atomically,
// returning the paths written.
func writeAll(dir string, files []outputFile) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	paths := make([]string, 0, len(files))
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := osutil.WriteFile(p, f.data, 0o644); err != nil {
			return paths, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// humanBytes formats n with binary units: "512 B", "36.6 MiB".
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	v, i := float64(n)/unit, 0
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[i])
}

// percent is part/whole as "6.81%" ("0.00%" when whole is 0).
func percent(part, whole uint64) string {
	if whole == 0 {
		return "0.00%"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(part)/float64(whole))
}

// micros and seconds format latencies as the node files do.
func micros(v float64) string  { return strconv.FormatFloat(v, 'f', 3, 64) }
func seconds(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }

// mdCell makes text safe inside a Markdown table cell.
func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(s)
}

// pathLine makes one line of a path list: a path that holds a line break
// (legal on Linux) is written Go-quoted so the one-path-per-line format
// survives; every other path is written as is.
func pathLine(p string) string {
	if strings.ContainsAny(p, "\n\r") {
		return strconv.Quote(p)
	}
	return p
}
