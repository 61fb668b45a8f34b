package spill

// Stats is the store's state and counters.
type Stats struct {
	Dir         string `json:"dir"`  // this run's directory; "" in memory mode
	Mode        string `json:"mode"` // "disk" or "memory"
	Bytes       int64  `json:"bytes"`
	BudgetBytes int64  `json:"budget_bytes"`
	Chunks      int    `json:"chunks"`
	Spilled     int64  `json:"spilled"` // chunks written to disk
	Evicted     int64  `json:"evicted"`
	Hits        int64  `json:"hits"`
	Misses      int64  `json:"misses"`
	Failures    int64  `json:"failures"` // times the disk was found unusable
}

// Stats returns the store's state and counters.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	st := Stats{Bytes: s.bytes, Chunks: len(s.entries), Mode: "memory", BudgetBytes: s.cfg.MemoryBytes}
	if s.disk {
		st.Dir, st.Mode, st.BudgetBytes = s.dir, "disk", s.cfg.BudgetBytes
	}
	s.mu.Unlock()
	st.Spilled, st.Evicted, st.Hits, st.Misses, st.Failures =
		s.spilled.Load(), s.evicted.Load(), s.hits.Load(), s.misses.Load(), s.failures.Load()
	return st
}
