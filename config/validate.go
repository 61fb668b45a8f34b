package config

import (
	"errors"
	"fmt"
	"slices"
)

// Validate checks every key against its range and the keys that constrain
// each other, and reports all problems at once, each naming its key.
// It does not require address_book for facility or prepared: site files
// ship with it empty, and the launcher reports it when it needs the book.
func (s *Settings) Validate() error {
	var errs []error
	bad := map[string]bool{}
	for _, f := range fields() {
		if f.rule == nil {
			continue
		}
		if err := f.rule.check(f.key, f.value(s)); err != nil {
			errs = append(errs, err)
			bad[f.key] = true
		}
	}
	for _, c := range s.crossChecks() {
		// A key already out of range would only repeat itself here.
		if slices.ContainsFunc(c.keys, func(k string) bool { return bad[k] }) {
			continue
		}
		if err := c.check(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

type crossCheck struct {
	keys  []string
	check func() error
}

func (s *Settings) crossChecks() []crossCheck {
	return []crossCheck{
		{[]string{"log_type", "log_dir"}, func() error {
			if s.LogType != "stdout" && s.LogDir == "" {
				return fmt.Errorf("log_dir: must not be empty when log_type is %q", s.LogType)
			}
			return nil
		}},
		{[]string{"ready_probe_initial_ms", "ready_probe_max_ms"}, func() error {
			if s.ReadyProbeMaxMs < s.ReadyProbeInitialMs {
				return fmt.Errorf("ready_probe_max_ms %d: must be ≥ ready_probe_initial_ms %d",
					s.ReadyProbeMaxMs, s.ReadyProbeInitialMs)
			}
			return nil
		}},
		// A cacheable file travels whole in one response frame.
		{[]string{"max_frame_bytes", "max_cacheable_bytes"}, func() error {
			if s.MaxFrameBytes != 0 && s.MaxFrameBytes <= s.MaxCacheableBytes {
				return fmt.Errorf("max_frame_bytes %d: must be 0 (derived) or > max_cacheable_bytes %d",
					s.MaxFrameBytes, s.MaxCacheableBytes)
			}
			return nil
		}},
		// A chunk travels whole in one response frame.
		{[]string{"max_frame_bytes", "chunk_bytes"}, func() error {
			if s.LargeFiles == "chunked" && s.ChunkBytes+ChunkFrameOverhead > s.FrameCap() {
				return fmt.Errorf("chunk_bytes %d: must be at least %d bytes below the frame cap %d (max_frame_bytes)",
					s.ChunkBytes, ChunkFrameOverhead, s.FrameCap())
			}
			return nil
		}},
		// Rank 0 runs both listeners on one host.
		{[]string{"port", "bootstrap_port"}, func() error {
			if s.Port != 0 && s.Port == s.BootstrapPort {
				return fmt.Errorf("port %d: must differ from bootstrap_port", s.Port)
			}
			return nil
		}},
	}
}
