package service

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpc-copper/copper/node"
)

// TestStatusJSONKeys pins the keys of `copper-node stats --json` that
// scripts (scripts/memcheck.sh), the benchmark and the e2e tests read:
// they decode into Status itself, so a renamed field would pass them all.
// Every key is snake_case.
func TestStatusJSONKeys(t *testing.T) {
	st := Status{Node: node.Stats{Ops: []node.OpStats{{Op: "read"}}}}
	raw, err := json.Marshal(st)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(raw, &doc))

	for _, path := range [][]string{
		{"mount"}, {"parent"}, {"pid"}, {"depth"},
		{"node", "rank"}, {"node", "root"}, {"node", "tree_ready"}, {"node", "failovers"}, {"node", "forward_errors"}, {"node", "ready_probes"}, {"node", "ready_held"},
		{"node", "cache", "bytes"}, {"node", "cache", "budget_bytes"}, {"node", "cache", "data", "entries"},
		{"node", "cache", "hits"}, {"node", "cache", "misses"}, {"node", "cache", "negative_serves"},
		{"node", "ops", "0", "op"}, {"node", "ops", "0", "hits"}, {"node", "ops", "0", "misses"},
		{"node", "ops", "0", "coalesced_waits"}, {"node", "ops", "0", "forwarded"}, {"node", "ops", "0", "backend_ops"},
	} {
		var v any = doc
		for _, k := range path {
			switch m := v.(type) {
			case map[string]any:
				var ok bool
				v, ok = m[k]
				require.True(t, ok, "stats JSON has no %v (at %q): %s", path, k, raw)
			case []any:
				require.NotEmpty(t, m, "%v", path)
				v = m[0]
			}
		}
	}
	assertSnakeCase(t, doc, "")
}

func assertSnakeCase(t *testing.T, v any, at string) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, sub := range v {
			for _, r := range k {
				assert.False(t, r >= 'A' && r <= 'Z', "key %s.%s is not snake_case", at, k)
			}
			assertSnakeCase(t, sub, at+"."+k)
		}
	case []any:
		for _, sub := range v {
			assertSnakeCase(t, sub, at+"[]")
		}
	}
}
