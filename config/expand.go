package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Lookup finds an environment variable, like os.LookupEnv.
type Lookup func(name string) (string, bool)

// Expand rewrites the path keys (target, mount, log_dir, address_book,
// prefetch, key_file)
// for this process: see ExpandWith. USER and HOME fall back to the user
// database when unset, as in batch jobs with a scrubbed environment.
func (s *Settings) Expand(rank int) error { return s.ExpandWith(rank, processEnv) }

// ExpandWith rewrites the path keys: $NAME and ${NAME} become the
// variable's value ($$ is a literal $), a leading ~ or ~/ becomes $HOME,
// and {rank} becomes rank (left as is when rank < 0, so a launcher can
// expand once before ranks exist). Non-empty results are cleaned; target
// and mount must end up absolute. An unset variable is an error naming
// the key. Expand once: a second pass would re-read a "$" that came
// from a variable's value or from "$$".
func (s *Settings) ExpandWith(rank int, env Lookup) error {
	var errs []error
	for _, f := range fields() {
		if !f.path {
			continue
		}
		v := f.value(s)
		out, err := expandPath(v.String(), rank, env)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", f.key, v.String(), err))
			continue
		}
		if (f.key == "target" || f.key == "mount") && !filepath.IsAbs(out) {
			errs = append(errs, fmt.Errorf("%s %q: must be an absolute path (got %q)", f.key, v.String(), out))
			continue
		}
		v.SetString(out)
	}
	return errors.Join(errs...)
}

func processEnv(name string) (string, bool) {
	if v, ok := os.LookupEnv(name); ok {
		return v, true
	}
	switch name {
	case "USER":
		if u, err := user.Current(); err == nil {
			return u.Username, true
		}
	case "HOME":
		if h, err := os.UserHomeDir(); err == nil {
			return h, true
		}
		if u, err := user.Current(); err == nil && u.HomeDir != "" {
			return u.HomeDir, true
		}
	}
	return "", false
}

func expandPath(p string, rank int, env Lookup) (string, error) {
	if p == "" {
		return "", nil
	}
	if p == "~" || strings.HasPrefix(p, "~/") {
		p = "${HOME}" + p[1:]
	} else if strings.HasPrefix(p, "~") {
		return "", errors.New("~user is not supported; write the path or $HOME")
	}
	var b strings.Builder
	for i := 0; i < len(p); {
		if p[i] != '$' {
			b.WriteByte(p[i])
			i++
			continue
		}
		name, width, err := varAt(p[i:])
		if err != nil {
			return "", err
		}
		i += width
		if name == "$" {
			b.WriteByte('$')
			continue
		}
		val, ok := env(name)
		if !ok {
			return "", fmt.Errorf("$%s is not set", name)
		}
		b.WriteString(val)
	}
	out := b.String()
	if rank >= 0 {
		out = strings.ReplaceAll(out, "{rank}", strconv.Itoa(rank))
	}
	return filepath.Clean(out), nil
}

// varAt parses the variable reference at the start of s (which begins
// with '$') and returns its name ("$" for $$) and length.
func varAt(s string) (name string, width int, err error) {
	if len(s) > 1 && s[1] == '$' {
		return "$", 2, nil
	}
	if len(s) > 1 && s[1] == '{' {
		end := strings.IndexByte(s, '}')
		if end < 0 {
			return "", 0, errors.New("unterminated ${")
		}
		name = s[2:end]
		if !isVarName(name) {
			return "", 0, fmt.Errorf("bad variable name ${%s}", name)
		}
		return name, end + 1, nil
	}
	n := 1
	for n < len(s) && isVarChar(s[n], n == 1) {
		n++
	}
	if n == 1 {
		return "", 0, errors.New("'$' must start a variable ($NAME or ${NAME}); write $$ for a literal $")
	}
	return s[1:n], n, nil
}

func isVarName(s string) bool {
	for i := range len(s) {
		if !isVarChar(s[i], i == 0) {
			return false
		}
	}
	return s != ""
}

func isVarChar(c byte, first bool) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && c >= '0' && c <= '9'
}

// seconds converts a validated (finite, ≥ 0) seconds value, saturating
// instead of overflowing.
func seconds(s float64) time.Duration {
	ns := s * float64(time.Second)
	if ns >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(ns)
}

func millis(ms int64) time.Duration {
	if ms > math.MaxInt64/int64(time.Millisecond) {
		return math.MaxInt64
	}
	return time.Duration(ms) * time.Millisecond
}

// NegativeTTL is how long a node caches "no such file" (md_enoent_ttl_ms).
func (s *Settings) NegativeTTL() time.Duration { return millis(s.MdEnoentTTLMs) }

// EntryTimeout is the kernel's name-lookup cache lifetime.
func (s *Settings) EntryTimeout() time.Duration { return seconds(s.EntryTimeoutS) }

// AttrTimeout is the kernel's attribute cache lifetime.
func (s *Settings) AttrTimeout() time.Duration { return seconds(s.AttrTimeoutS) }

// NegativeTimeout is the kernel's "no such file" cache lifetime.
func (s *Settings) NegativeTimeout() time.Duration { return seconds(s.NegativeTimeoutS) }

// RPCTimeout is the deadline of one request to a parent; 0 = none.
func (s *Settings) RPCTimeout() time.Duration { return seconds(s.RPCTimeoutS) }

// HeartbeatTimeout is how long a silent parent is trusted; 0 = off.
func (s *Settings) HeartbeatTimeout() time.Duration { return millis(s.HeartbeatTimeoutMs) }

// ReadyTimeout bounds the wait for tree readiness; 0 = forever.
func (s *Settings) ReadyTimeout() time.Duration { return seconds(s.ReadyTimeoutS) }

// BootstrapTimeout bounds address discovery; 0 = forever.
func (s *Settings) BootstrapTimeout() time.Duration { return seconds(s.BootstrapTimeoutS) }

// ReadyProbeInitial is the first delay between readiness probes.
func (s *Settings) ReadyProbeInitial() time.Duration { return millis(s.ReadyProbeInitialMs) }

// ProfileSnapshotInterval is the time between profiling snapshots; 0 =
// none.
func (s *Settings) ProfileSnapshotInterval() time.Duration {
	return seconds(float64(s.ProfileSnapshotIntervalS))
}

// ReadyProbeMax is the longest delay between readiness probes.
func (s *Settings) ReadyProbeMax() time.Duration { return millis(s.ReadyProbeMaxMs) }

// FrameCap is the wire frame cap: max_frame_bytes, or when 0, the
// larger of max_cacheable_bytes and chunk_bytes, + 1 MiB (room for the
// largest cacheable file or a chunk plus its header and attributes).
func (s *Settings) FrameCap() int64 {
	if s.MaxFrameBytes > 0 {
		return s.MaxFrameBytes
	}
	return max(s.MaxCacheableBytes, s.ChunkBytes) + mib
}

// ChunkFrameOverhead is what a chunk's response frame holds besides the
// chunk: header, errno, attributes, length.
const ChunkFrameOverhead = 4 * kib

// CacheBudget is the cache memory budget in bytes: cache_memory_bytes, or
// when 0, cache_memory_percent of MemTotal in /proc/meminfo.
func (s *Settings) CacheBudget() (int64, error) {
	if s.CacheMemoryBytes > 0 {
		return s.CacheMemoryBytes, nil
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("cache budget from cache_memory_percent: %w", err)
	}
	defer f.Close()
	total, err := parseMemTotal(f)
	if err != nil {
		return 0, fmt.Errorf("cache budget from cache_memory_percent: /proc/meminfo: %w", err)
	}
	return percentOf(total, s.CacheMemoryPct), nil
}

// percentOf is total*pct/100 without overflowing for any RAM size.
func percentOf(total int64, pct int) int64 {
	return total/100*int64(pct) + total%100*int64(pct)/100
}

// parseMemTotal reads the "MemTotal: N kB" line of /proc/meminfo.
func parseMemTotal(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		fieldsOf := strings.Fields(rest)
		if len(fieldsOf) != 2 || fieldsOf[1] != "kB" {
			return 0, fmt.Errorf("MemTotal line %q: want \"MemTotal: N kB\"", sc.Text())
		}
		kb, err := strconv.ParseInt(fieldsOf[0], 10, 64)
		if err != nil || kb <= 0 || kb > math.MaxInt64/1024 {
			return 0, fmt.Errorf("MemTotal line %q: bad size", sc.Text())
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no MemTotal line")
}
