package pfsbench

import (
	"context"
	"fmt"
	"path/filepath"
)

// DefaultLargeRef is the scale model's reference: 2,048 nodes reading a
// file on one OST of 5 GB/s. The per-OST figure is an assumption (an
// NVMe or large-HDD ClusterStor OST); Orion, Frontier's Lustre, reads
// 14 TB/s in aggregate over all of its OSTs.
const (
	DefaultLargeRefNodes     = 2048
	DefaultLargeRefBandwidth = 5_000_000_000
)

// ScaleBandwidth is the emulated server's bandwidth in the scale model.
func (lc LargeConfig) ScaleBandwidth() int64 {
	if lc.RefNodes <= 0 {
		return 0
	}
	return lc.RefServerBandwidth * int64(lc.Nodes) / int64(lc.RefNodes)
}

// largeScale runs the scale model's passes (LargeConfig.ScaleBytes).
func (r *runner) largeScale(ctx context.Context, lc LargeConfig, res *LargeResult, flags []string) error {
	if lc.ScaleBytes <= 0 || lc.ScaleBandwidth() <= 0 {
		return nil
	}
	res.RefNodes, res.RefServerBandwidth = lc.RefNodes, lc.RefServerBandwidth
	params := r.cfg.Params
	params.Bandwidth = lc.ScaleBandwidth()
	r.progress("large file, scale model: writing %d MiB; server %.1f MiB/s = %d B/s × %d / %d nodes",
		lc.ScaleBytes>>20, float64(params.Bandwidth)/(1<<20), lc.RefServerBandwidth, lc.Nodes, lc.RefNodes)
	sum, err := writeLargeFile(filepath.Join(r.backing, largeScaleFile), lc.ScaleBytes)
	if err != nil {
		return err
	}
	direct, err := r.largeDirect(ctx, lc, largeScaleFile, lc.ScaleBytes, sum, params)
	if err != nil {
		return fmt.Errorf("scale model: %w", err)
	}
	mark := r.cleanup.mark()
	copperRow, _, _, err := r.largeCopper(ctx, lc, largeScaleFile, lc.ScaleBytes, sum, params, flags)
	if err != nil {
		return fmt.Errorf("scale model: %w", err)
	}
	if err := r.cleanup.popTo(mark); err != nil {
		return err
	}
	direct.Model, copperRow.Model = "scale", "scale"
	res.Passes = append(res.Passes, direct, copperRow)
	return nil
}
