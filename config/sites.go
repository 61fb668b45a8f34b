package config

import (
	"embed"
	"fmt"
	"slices"
	"strings"
)

// siteFS holds the site files. Each lists every key, so a user can copy one
// as the start of their own file (copper --print-site NAME, say).
//
//go:embed sites/*.toml
var siteFS embed.FS

// Default returns the built-in settings every file is laid over.
func Default() Settings {
	return Settings{
		Target: "/",
		Mount:  "/tmp/$USER/copper",

		LogLevel: 0,
		LogType:  "file",
		LogDir:   "~/copper-logs",

		Trees:  1,
		Fanout: 0,

		MaxCacheableBytes: 10 * mib,
		MdEnoentTTLMs:     2000,
		CacheMemoryBytes:  0,
		CacheMemoryPct:    25,
		BackendParallel:   64,
		DirFilesMaxBytes:  64 * kib,

		LargeFiles:       "chunked",
		ChunkBytes:       4 * mib,
		SpillDir:         "/tmp/copper-spill-$USER",
		SpillBudgetBytes: 2 * gib,
		ReadaheadChunks:  4,

		EntryTimeoutS:    3600,
		AttrTimeoutS:     3600,
		NegativeTimeoutS: 60,
		MaxReadBytes:     1 * mib,
		MaxReadaheadB:    1 * mib,
		AllowOther:       false,

		MaxFrameBytes:       0,
		RPCTimeoutS:         60,
		ReadyProbeInitialMs: 10,
		ReadyProbeMaxMs:     1000,
		ReadyTimeoutS:       120,

		HeartbeatTimeoutMs: 1000,
		RootFailover:       "successor",
		DirectOpsPerS:      100,

		AddressBookSource: "discover",
		Port:              0,
		BootstrapPort:     47000,
		BootstrapTimeoutS: 60,
		KeyFile:           "~/.copper/key",
	}
}

// Sites lists the embedded site names, the default (local) first.
func Sites() []string { return []string{"local", "aurora", "frontier"} }

// SiteFile returns the embedded TOML file of a site.
func SiteFile(name string) ([]byte, error) {
	if !isSite(name) {
		return nil, fmt.Errorf("unknown site %q (sites: %s)", name, strings.Join(Sites(), ", "))
	}
	return siteFS.ReadFile("sites/" + name + ".toml")
}

func isSite(name string) bool { return slices.Contains(Sites(), name) }
