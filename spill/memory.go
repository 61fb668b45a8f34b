package spill

// Memory returns the held chunk key's bytes if the store keeps them in
// memory (in memory mode, or a hot chunk on disk), without a copy: the
// caller must not modify them. ok is false for a chunk held only in its
// file, or not held: a caller that wants its bytes then uses ReadAt.
func (s *Store) Memory(key string) (data []byte, ok bool) {
	s.mu.Lock()
	e, held := s.entries[key]
	if held {
		data = e.Value.(*entry).data
	}
	if data == nil {
		s.mu.Unlock()
		return nil, false
	}
	s.lru.MoveToFront(e)
	s.mu.Unlock()
	s.hits.Add(1)
	return data, true
}
