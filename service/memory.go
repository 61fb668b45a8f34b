package service

import (
	"os"
	"runtime"

	"github.com/hpc-copper/copper/control"
	"github.com/hpc-copper/copper/internal/memstat"
)

// MemoryResult answers the "memory" control command: where the node's
// memory went (the runtime's classes and the resident set) beside what
// its cache holds, and, when asked, its heap profile.
type MemoryResult struct {
	PID int `json:"pid"`
	memstat.Memory
	CacheBytes int64 `json:"cache_bytes"`
	// HeapProfile is pprof's gzipped protocol buffer (base64 in JSON),
	// present when the request asked for it.
	HeapProfile []byte `json:"heap_profile,omitempty"`
}

// controlMemory answers "memory". Args: profile=1 adds the heap
// profile; gc=1 collects first, so the profile's in-use figures and the
// free heap are those of now rather than of the last GC.
func (svc *Service) controlMemory(req control.Request) (any, error) {
	gc := req.Args["gc"] != ""
	var res MemoryResult
	if req.Args["profile"] != "" {
		p, err := memstat.HeapProfile(gc)
		if err != nil {
			return nil, err
		}
		res.HeapProfile = p
	} else if gc {
		runtime.GC()
	}
	m, err := memstat.Read()
	if err != nil {
		return nil, err
	}
	res.Memory = m
	res.PID = os.Getpid()
	res.CacheBytes = svc.node.Stats().Cache.Bytes
	return res, nil
}
