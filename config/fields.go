package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// spec is what the code cannot learn from a Settings field by reflection:
// its documentation, its allowed values and whether it is a path that
// Expand rewrites. TOML decoding, flags, Describe and Validate all walk
// fields(), so a new field gets all four or the spec test fails.
type spec struct {
	doc  string
	rule rule // nil: every value of the Go type is allowed
	path bool // expand $VAR, ~ and {rank}
}

const (
	kib = 1 << 10
	mib = 1 << 20
	gib = 1 << 30
)

// specs is read-only: keyed by TOML key.
var specs = map[string]spec{
	"target": {doc: "backing root exported at the mount root", rule: nonEmpty{}, path: true},
	"mount":  {doc: "mount (view) directory; {rank} is replaced by the node's rank", rule: nonEmpty{}, path: true},

	"log_level": {doc: "log verbosity: 0 none, 1 fatal, 2 error, 3 warn, 4 info, 5 debug", rule: intRange{lo: 0, hi: 5, bounded: true}},
	"log_type":  {doc: "where logs go: file, stdout or both", rule: oneOf{"file", "stdout", "both"}},
	"log_dir":   {doc: "job output base directory; the job's directory is log_dir/job_id", path: true},
	"job_id":    {doc: "job directory name; empty: PBS_JOBID, SLURM_JOB_ID or COPPER_JOB_ID, else generated", rule: fileName{}},

	"trees":  {doc: "number of independent overlay trees (segments)", rule: intRange{lo: 1}},
	"fanout": {doc: "children per tree node; 0 = automatic (depth <= 4)", rule: zeroOr{meaning: "auto", intRange: intRange{lo: 2}}},

	"max_cacheable_bytes":  {doc: "largest file cached whole in memory; larger files follow large_files", rule: intRange{lo: 0, hi: gib, bounded: true, bytes: true}},
	"md_enoent_ttl_ms":     {doc: "lifetime of a cached 'no such file' answer, in milliseconds", rule: intRange{lo: 0}},
	"cache_memory_bytes":   {doc: "cache memory budget in bytes; 0 = cache_memory_percent of RAM", rule: intRange{lo: 0}},
	"cache_memory_percent": {doc: "cache budget as a percentage of MemTotal when cache_memory_bytes is 0", rule: intRange{lo: 1, hi: 90, bounded: true}},
	"dir_files_max_bytes":  {doc: "regular files up to this size travel with their directory's listing (read once by the root, cached at every hop, at most 4 MiB of them per directory; capped by max_cacheable_bytes); 0 = off", rule: intRange{lo: 0, hi: 16 * mib, bounded: true, bytes: true}},
	"backend_parallel":     {doc: "concurrent backend (file system) operations at a tree root", rule: intRange{lo: 1, hi: 4096, bounded: true}},
	"large_files":          {doc: "files over max_cacheable_bytes: chunked (fetched once per tree in chunks, kept in the node-local chunk store) or direct (read from the backend on every node, as Copper 1.0)", rule: oneOf{"chunked", "direct"}},
	"chunk_bytes":          {doc: "chunk size of large files; must fit a wire frame", rule: intRange{lo: 64 * kib, hi: 256 * mib, bounded: true, bytes: true}},
	"spill_dir":            {doc: "node-local directory for the chunk store (a private per-run directory is made inside); empty or unusable = chunks kept in memory (16 MiB at most)", path: true},
	"spill_budget_bytes":   {doc: "bytes of chunks the chunk store keeps on disk per node, least recently used evicted", rule: intRange{lo: 0, bytes: true}},
	"readahead_chunks":     {doc: "chunks after the one read that a node fetches ahead for a sequential reader; 0 = none", rule: intRange{lo: 0, hi: 64, bounded: true}},
	"prefetch":             {doc: "manifest of host paths (e.g. an earlier run's used_paths_existing.txt) pulled into the cache in the background once the node is tree-ready; empty = off", path: true},

	"entry_timeout_s":     {doc: "kernel name-lookup cache lifetime, in seconds", rule: floatMin{0}},
	"attr_timeout_s":      {doc: "kernel attribute cache lifetime, in seconds", rule: floatMin{0}},
	"negative_timeout_s":  {doc: "kernel 'no such file' cache lifetime, in seconds", rule: floatMin{0}},
	"max_read_bytes":      {doc: "largest FUSE read request (capped at /proc/sys/fs/fuse/max_pages_limit pages: 1 MiB by default); a large-file read under 1 MiB - 8 KiB within one chunk is spliced from the chunk store", rule: intRange{lo: 4 * kib, hi: 16 * mib, bounded: true, bytes: true}},
	"max_readahead_bytes": {doc: "kernel readahead window; above 128 KiB it is set through the mount's /sys/class/bdi entry (root only, else 128 KiB, logged); 0 = kernel default", rule: intRange{lo: 0, hi: 16 * mib, bounded: true, bytes: true}},
	"allow_other":         {doc: "let users other than the mounter use the mount (needs user_allow_other in /etc/fuse.conf)"},

	"max_frame_bytes":        {doc: "hard cap on one wire frame; 0 = the larger of max_cacheable_bytes and chunk_bytes, + 1 MiB", rule: zeroOr{meaning: "derived", intRange: intRange{lo: 64 * kib, hi: math.MaxUint32, bounded: true, bytes: true}}},
	"rpc_timeout_s":          {doc: "deadline of one request to a parent, in seconds; 0 = none", rule: floatMin{0}},
	"ready_probe_initial_ms": {doc: "first delay between the starts of readiness probes after one that failed or was answered at once, doubling up to ready_probe_max_ms; a parent not listening yet is probed at this interval without doubling", rule: intRange{lo: 1}},
	"ready_probe_max_ms":     {doc: "longest delay between the starts of readiness probes; also how long a parent that is not yet tree-ready holds a child's probe before answering \"not ready\" (at most a quarter of rpc_timeout_s)", rule: intRange{lo: 1}},
	"ready_timeout_s":        {doc: "how long a node waits for its tree to become ready, in seconds; 0 = forever", rule: floatMin{0}},
	"heartbeat_timeout_ms":   {doc: "a parent that sends nothing for this long while requests wait on it is taken as hung and failed over; 0 = off (then only rpc_timeout_s)", rule: intRange{lo: 0}},
	"root_failover":          {doc: "when the root is gone: successor (the root's first child takes over from its own backend; once per tree) or direct (a node none of whose ancestors answers reads the filesystem itself, under direct_ops_per_s)", rule: oneOf{"successor", "direct"}},
	"direct_ops_per_s":       {doc: "per-node cap on the node's own filesystem operations once no ancestor (nor, with successor, the successor) answers; 0 = never read directly (EIO)", rule: intRange{lo: 0}},

	"address_book_source": {doc: "where node addresses come from: discover (all-gather at start), facility (site book) or prepared (job book)", rule: oneOf{"discover", "facility", "prepared"}},
	"address_book":        {doc: "address book file for facility or prepared", path: true},
	"interface":           {doc: "network interface whose address nodes listen on; empty = the hostname's address"},
	"port":                {doc: "copper-node listen port; 0 = ephemeral", rule: intRange{lo: 0, hi: 65535, bounded: true}},
	"bootstrap_port":      {doc: "rank 0's all-gather port for address discovery", rule: intRange{lo: 0, hi: 65535, bounded: true}},
	"bootstrap_timeout_s": {doc: "how long address discovery may take, in seconds; 0 = forever", rule: floatMin{0}},
	"service_cores":       {doc: "CPUs copper-node is pinned to, e.g. 48,49; empty = no pinning", rule: cpuList{}},
	"key_file":            {doc: "the job key (a secret only you can read): peers and the all-gather authenticate with it; created if missing; must be the same file on every node (a shared home)", rule: nonEmpty{}, path: true},

	"profile_metrics":             {doc: "collect aggregate operation profiling"},
	"profile_top_n":               {doc: "keep the N hottest paths; > 0 implies profile_metrics", rule: intRange{lo: 0}},
	"profile_paths_full":          {doc: "keep full path lists; implies profile_metrics"},
	"profile_snapshot_interval_s": {doc: "write a profiling snapshot every S seconds; 0 = never; > 0 implies profile_metrics", rule: intRange{lo: 0}},
}

// field is one Settings field with its key and spec.
type field struct {
	key   string
	index int // index in the Settings struct
	typ   reflect.Type
	spec
}

// flagName is the long flag of a key: '_' becomes '-'.
func (f field) flagName() string { return strings.ReplaceAll(f.key, "_", "-") }

// value returns the field inside s (addressable, so it can be set).
func (f field) value(s *Settings) reflect.Value { return reflect.ValueOf(s).Elem().Field(f.index) }

// typeName is the TOML type a key takes, for errors and Describe.
func (f field) typeName() string {
	switch f.typ.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int64:
		return "integer"
	case reflect.Float64:
		return "float"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice:
		return "array of integers"
	}
	return f.typ.String()
}

// fields lists every Settings field that has a toml key, in struct order.
func fields() []field {
	t := reflect.TypeFor[Settings]()
	out := make([]field, 0, t.NumField())
	for i := range t.NumField() {
		sf := t.Field(i)
		key, _, _ := strings.Cut(sf.Tag.Get("toml"), ",")
		if key == "" || key == "-" {
			continue
		}
		out = append(out, field{key: key, index: i, typ: sf.Type, spec: specs[key]})
	}
	return out
}

// fieldByKey finds the field of a TOML key.
func fieldByKey(key string) (field, bool) {
	for _, f := range fields() {
		if f.key == key {
			return f, true
		}
	}
	return field{}, false
}

// rule checks one value; text describes the allowed values for docs.
type rule interface {
	check(key string, v reflect.Value) error
	text() string
}

// intRange allows lo..hi, or lo.. when not bounded.
type intRange struct {
	lo, hi  int64
	bounded bool
	bytes   bool // show sizes with binary units in the range text
}

func (r intRange) check(key string, v reflect.Value) error {
	n := v.Int()
	if n < r.lo || (r.bounded && n > r.hi) {
		return fmt.Errorf("%s %d out of range %s", key, n, r.text())
	}
	return nil
}

func (r intRange) text() string {
	lo := strconv.FormatInt(r.lo, 10)
	if !r.bounded {
		return lo + ".."
	}
	s := lo + ".." + strconv.FormatInt(r.hi, 10)
	if r.bytes && r.hi%kib == 0 {
		s += " (" + humanBytes(r.hi) + ")"
	}
	return s
}

// zeroOr allows 0 with a special meaning, or a range.
type zeroOr struct {
	meaning string
	intRange
}

func (r zeroOr) check(key string, v reflect.Value) error {
	if n := v.Int(); n != 0 && r.intRange.check(key, v) != nil {
		return fmt.Errorf("%s %d: must be %s", key, n, r.text())
	}
	return nil
}

func (r zeroOr) text() string {
	if !r.bounded {
		return fmt.Sprintf("0 (%s) or ≥ %d", r.meaning, r.lo)
	}
	return fmt.Sprintf("0 (%s) or %s", r.meaning, r.intRange.text())
}

// floatMin allows finite numbers ≥ lo.
type floatMin struct{ lo float64 }

func (r floatMin) check(key string, v reflect.Value) error {
	x := v.Float()
	if math.IsNaN(x) || math.IsInf(x, 0) || x < r.lo {
		return fmt.Errorf("%s %v out of range %s", key, x, r.text())
	}
	return nil
}

func (r floatMin) text() string { return strconv.FormatFloat(r.lo, 'g', -1, 64) + ".." }

// oneOf allows a fixed set of strings.
type oneOf []string

func (r oneOf) check(key string, v reflect.Value) error {
	for _, ok := range r {
		if v.String() == ok {
			return nil
		}
	}
	return fmt.Errorf("%s %q: want %s", key, v.String(), r.text())
}

func (r oneOf) text() string {
	return strings.Join(r[:len(r)-1], ", ") + " or " + r[len(r)-1]
}

type nonEmpty struct{}

func (nonEmpty) check(key string, v reflect.Value) error {
	if v.String() == "" {
		return fmt.Errorf("%s: must not be empty", key)
	}
	return nil
}

func (nonEmpty) text() string { return "non-empty" }

// fileName allows names usable as one directory component (or empty).
type fileName struct{}

func (fileName) check(key string, v reflect.Value) error {
	s := v.String()
	if strings.ContainsAny(s, "/\x00") || s == "." || s == ".." {
		return fmt.Errorf("%s %q: must be usable as a directory name (no '/', not . or ..)", key, s)
	}
	return nil
}

func (fileName) text() string { return "a directory name" }

// cpuList allows distinct CPU numbers ≥ 0.
type cpuList struct{}

func (cpuList) check(key string, v reflect.Value) error {
	seen := make(map[int64]bool, v.Len())
	for i := range v.Len() {
		c := v.Index(i).Int()
		if c < 0 {
			return fmt.Errorf("%s: CPU %d out of range 0..", key, c)
		}
		if seen[c] {
			return fmt.Errorf("%s: CPU %d listed twice", key, c)
		}
		seen[c] = true
	}
	return nil
}

func (cpuList) text() string { return "distinct CPUs ≥ 0" }

// humanBytes shows n in the largest binary unit that divides it.
func humanBytes(n int64) string {
	for _, u := range []struct {
		size int64
		name string
	}{{gib, "GiB"}, {mib, "MiB"}, {kib, "KiB"}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d %s", n/u.size, u.name)
		}
	}
	return fmt.Sprintf("%d B", n)
}

// formatValue renders a value as a TOML literal, for Describe and errors.
func formatValue(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		return strconv.Quote(v.String())
	case reflect.Int, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Float64:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = formatValue(v.Index(i))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v.Interface())
}
