package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// KeyInfo describes one setting for README tables and --help.
type KeyInfo struct {
	Key     string // TOML key, e.g. max_cacheable_bytes
	Flag    string // long flag, e.g. --max-cacheable-bytes
	Type    string // TOML type: string, integer, float, boolean, array of integers
	Default string // current value as a TOML literal
	Range   string // allowed values, e.g. "0..5"; empty = any
	Doc     string
}

// Describe lists every key in struct order with s's values as defaults.
func (s *Settings) Describe() []KeyInfo {
	fs := fields()
	out := make([]KeyInfo, len(fs))
	for i, f := range fs {
		out[i] = KeyInfo{
			Key:     f.key,
			Flag:    "--" + f.flagName(),
			Type:    f.typeName(),
			Default: formatValue(f.value(s)),
			Doc:     f.doc,
		}
		if f.rule != nil {
			out[i].Range = f.rule.text()
		}
	}
	return out
}

// RegisterFlags defines one long flag per key, bound to s, with s's current
// values as defaults: call it after Load so that flags beat the file.
func (s *Settings) RegisterFlags(fs *pflag.FlagSet) {
	for _, f := range fields() {
		usage := f.doc
		if _, enum := f.rule.(oneOf); f.rule != nil && !enum { // enum docs already list their values
			usage += " (" + f.rule.text() + ")"
		}
		name := f.flagName()
		switch p := f.value(s).Addr().Interface().(type) {
		case *string:
			fs.StringVar(p, name, *p, usage)
		case *int:
			fs.IntVar(p, name, *p, usage)
		case *int64:
			fs.Int64Var(p, name, *p, usage)
		case *float64:
			fs.Float64Var(p, name, *p, usage)
		case *bool:
			fs.BoolVar(p, name, *p, usage)
		case *[]int:
			fs.IntSliceVar(p, name, *p, usage)
		default:
			// Reached only if a field of a new type is added without a case
			// here; the flag test catches it before anyone runs copper.
			panic(fmt.Sprintf("config: no flag type for %s (%T)", f.key, p))
		}
	}
}

// LegacyFlagPrefix starts the long names of the Copper 1.0 short options.
// pflag has no shorthand-only flags, so -l is the shorthand of a flag
// named "copper1-l"; the long names work too but are meant for -h only.
const LegacyFlagPrefix = "copper1-"

// RegisterLegacyShortFlags defines Copper 1.0's launch-wrapper short
// options (-l -t -d -T -M -E -P -N -A -I -s -b -F -a -n -v), bound to s.
// Register them after RegisterFlags; after parsing call Finish, and log
// LegacyNotes once logging is set up.
func (s *Settings) RegisterLegacyShortFlags(fs *pflag.FlagSet) {
	legacy := func(short, key string) (name, usage string) {
		return LegacyFlagPrefix + short, "Copper 1.0 -" + short + ": same as --" + strings.ReplaceAll(key, "_", "-")
	}
	n, u := legacy("l", "log_level")
	fs.IntVarP(&s.LogLevel, n, "l", s.LogLevel, u)
	n, u = legacy("t", "log_type")
	fs.VarP(&logTypeValue{&s.LogType}, n, "t", u+` ("file_and_stdout" means both)`)
	n, u = legacy("d", "log_dir")
	fs.StringVarP(&s.LogDir, n, "d", s.LogDir, u)
	n, u = legacy("T", "trees")
	fs.IntVarP(&s.Trees, n, "T", s.Trees, u)
	n, u = legacy("M", "max_cacheable_bytes")
	fs.Int64VarP(&s.MaxCacheableBytes, n, "M", s.MaxCacheableBytes, u)
	n, u = legacy("E", "md_enoent_ttl_ms")
	fs.Int64VarP(&s.MdEnoentTTLMs, n, "E", s.MdEnoentTTLMs, u)
	n, u = legacy("P", "profile_metrics")
	fs.BoolVarP(&s.ProfileMetrics, n, "P", s.ProfileMetrics, u)
	n, u = legacy("N", "profile_top_n")
	fs.VarP(&implyMetrics{intValue{&s.ProfileTopN}, &s.ProfileMetrics}, n, "N", u+"; implies -P")
	n, u = legacy("A", "profile_paths_full")
	fs.VarPF(&implyMetrics{boolValue{&s.ProfilePathsFull}, &s.ProfileMetrics}, n, "A", u+"; implies -P").NoOptDefVal = "true"
	n, u = legacy("I", "profile_snapshot_interval_s")
	fs.VarP(&implyMetrics{intValue{&s.ProfileSnapshotIntervalS}, &s.ProfileMetrics}, n, "I", u+"; implies -P")
	fs.VarP(&ignoredValue{}, LegacyFlagPrefix+"s", "s", "Copper 1.0 -s (sleep after launch): accepted and ignored, copper waits until its tree is ready")
	n, u = legacy("b", "service_cores")
	fs.IntSliceVarP(&s.ServiceCores, n, "b", s.ServiceCores, u)
	n, u = legacy("F", "address_book")
	fs.StringVarP(&s.AddressBook, n, "F", s.AddressBook, u)
	n, u = legacy("a", "address_book_source")
	fs.StringVarP(&s.AddressBookSource, n, "a", s.AddressBookSource, u)
	n, u = legacy("n", "interface")
	fs.VarP(&interfaceValue{dst: &s.Interface}, n, "n", u+"; Copper 1.0 network types (cxi, tcp, na+sm, ...) are ignored")
	n, u = legacy("v", "mount")
	fs.StringVarP(&s.Mount, n, "v", s.Mount, u)
}

// LegacyNotes explains Copper 1.0 options that were accepted but had no
// effect, for the launcher to log once logging is set up.
func LegacyNotes(fs *pflag.FlagSet) []string {
	var notes []string
	if f := fs.Lookup(LegacyFlagPrefix + "s"); f != nil && f.Changed {
		notes = append(notes, fmt.Sprintf("-s %s ignored: copper needs no sleep after launch, nodes wait until their tree is ready", f.Value))
	}
	if f := fs.Lookup(LegacyFlagPrefix + "n"); f != nil {
		if v, ok := f.Value.(*interfaceValue); ok && v.ignored != "" {
			notes = append(notes, fmt.Sprintf("-n %s ignored: it is a Copper 1.0 network type; -n and --interface take a network interface name such as hsn0", v.ignored))
		}
	}
	return notes
}

// Finish applies the settings implied by others — profile_top_n > 0,
// profile_paths_full or profile_snapshot_interval_s > 0 turn on
// profile_metrics, as in Copper 1.0 — and then validates. Call it after
// parsing flags.
func (s *Settings) Finish() error {
	if s.ProfileTopN > 0 || s.ProfilePathsFull || s.ProfileSnapshotIntervalS > 0 {
		s.ProfileMetrics = true
	}
	return s.Validate()
}

// intValue and boolValue are minimal pflag.Values so the legacy wrappers
// below can add behaviour to a plain setting.
type intValue struct{ p *int }

func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("want an integer: %w", err)
	}
	*v.p = n
	return nil
}
func (v intValue) String() string { return strconv.Itoa(*v.p) }
func (v intValue) Type() string   { return "int" }

type boolValue struct{ p *bool }

func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false: %w", err)
	}
	*v.p = b
	return nil
}
func (v boolValue) String() string   { return strconv.FormatBool(*v.p) }
func (v boolValue) Type() string     { return "bool" }
func (v boolValue) IsBoolFlag() bool { return true }

// implyMetrics sets profile_metrics whenever the wrapped option is given
// (Copper 1.0's -N, -A and -I imply -P even with a zero value).
type implyMetrics struct {
	pflag.Value
	metrics *bool
}

func (v *implyMetrics) Set(s string) error {
	if err := v.Value.Set(s); err != nil {
		return err
	}
	if b, ok := v.Value.(boolValue); !ok || *b.p {
		*v.metrics = true
	}
	return nil
}

func (v *implyMetrics) IsBoolFlag() bool {
	b, ok := v.Value.(boolValue)
	return ok && b.IsBoolFlag()
}

// logTypeValue accepts Copper 1.0's "file_and_stdout" as "both".
type logTypeValue struct{ p *string }

func (v *logTypeValue) Set(s string) error {
	if s == "file_and_stdout" {
		s = "both"
	}
	*v.p = s
	return nil
}
func (v *logTypeValue) String() string { return *v.p }
func (v *logTypeValue) Type() string   { return "string" }

// ignoredValue takes -s's seconds and drops them.
type ignoredValue struct{ last string }

func (v *ignoredValue) Set(s string) error {
	if _, err := strconv.ParseFloat(s, 64); err != nil {
		return fmt.Errorf("want seconds: %w", err)
	}
	v.last = s
	return nil
}
func (v *ignoredValue) String() string { return v.last }
func (v *ignoredValue) Type() string   { return "seconds" }

// interfaceValue sets interface, except for Copper 1.0 network types
// (-n cxi in old scripts), which name no interface and are remembered
// for LegacyNotes instead.
type interfaceValue struct {
	dst     *string
	ignored string
}

func (v *interfaceValue) Set(s string) error {
	if isCopper1NetType(s) {
		v.ignored = s
		return nil
	}
	*v.dst = s
	return nil
}
func (v *interfaceValue) String() string { return *v.dst }
func (v *interfaceValue) Type() string   { return "string" }

// isCopper1NetType recognises Mercury/libfabric transports: cxi, tcp,
// na+sm, ofi+cxi://..., cxi://cxi1, verbs.
func isCopper1NetType(s string) bool {
	switch s {
	case "cxi", "tcp", "sm", "verbs", "na+sm":
		return true
	}
	return strings.Contains(s, "://") || strings.Contains(s, "+")
}
