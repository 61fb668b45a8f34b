package pfsbench

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"
)

// largeStatus is the part of `copper-node stats --json` the workload reads.
type largeStatus struct {
	PID  int `json:"pid"`
	Node struct {
		Rank   int `json:"rank"`
		Chunks *struct {
			Fetched    int64 `json:"fetched"`
			Served     int64 `json:"served"`
			LocalBytes int64 `json:"local_bytes"`
			Store      struct {
				Mode        string `json:"mode"`
				Bytes       int64  `json:"bytes"`
				BudgetBytes int64  `json:"budget_bytes"`
			} `json:"store"`
		} `json:"chunks"`
	} `json:"node"`
	LargeFiles struct {
		KernelPath  string `json:"kernel_path"`
		Passthrough bool   `json:"kernel_offers_passthrough"`
	} `json:"large_files"`
}

// chunkLocalBytes is the large-file bytes mount's copper-node has read
// for its own mount (stats chunks.local_bytes).
func (r *runner) chunkLocalBytes(ctx context.Context, mount string) (int64, error) {
	res, err := runBounded(ctx, 30*time.Second, r.copperEnv(), filepath.Join(r.cfg.Bin, "copper-node"), "stats", "--mount", mount, "--json")
	if err != nil {
		return 0, err
	}
	var st largeStatus
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		return 0, fmt.Errorf("copper-node stats --mount %s --json: %w", mount, err)
	}
	if st.Node.Chunks == nil {
		return 0, fmt.Errorf("%s: no chunk store in its stats", mount)
	}
	return st.Node.Chunks.LocalBytes, nil
}

// largeMemory reads every node's RSS and chunk store.
func largeMemory(ctx context.Context, t *copperTree, cacheBudget int64) ([]LargeNodeMemory, string, error) {
	out := make([]LargeNodeMemory, len(t.mounts))
	kernel := ""
	for rank, m := range t.mounts {
		res, err := runBounded(ctx, 30*time.Second, t.r.copperEnv(), filepath.Join(t.r.cfg.Bin, "copper-node"), "stats", "--mount", m, "--json")
		if err != nil {
			return nil, "", err
		}
		var st largeStatus
		if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
			return nil, "", fmt.Errorf("copper-node stats --mount %s --json: %w", m, err)
		}
		if st.Node.Chunks == nil {
			return nil, "", fmt.Errorf("rank %d: no chunk store in its stats", rank)
		}
		rss, err := rssBytes(st.PID)
		if err != nil {
			return nil, "", fmt.Errorf("rank %d pid %d: %w", rank, st.PID, err)
		}
		c := st.Node.Chunks
		out[rank] = LargeNodeMemory{Rank: rank, RSSBytes: rss, CacheBudget: cacheBudget, LimitBytes: cacheBudget + 64<<20,
			SpillMode: c.Store.Mode, SpillBytes: c.Store.Bytes, SpillBudget: c.Store.BudgetBytes, Fetched: c.Fetched, Served: c.Served}
		kernel = st.LargeFiles.KernelPath
		if st.LargeFiles.Passthrough {
			kernel += " (this kernel offers FUSE passthrough; unused)"
		} else {
			kernel += " (this kernel does not offer FUSE passthrough)"
		}
	}
	return out, kernel, nil
}
