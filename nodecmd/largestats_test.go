package nodecmd

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/hpc-copper/copper/node"
	"github.com/hpc-copper/copper/service"
	"github.com/hpc-copper/copper/spill"
)

func TestPrintStatusLargeFiles(t *testing.T) {
	st := service.Status{LargeFiles: service.LargeFilesStatus{Mode: "chunked", KernelPath: "page_cache", ChunkBytes: 4 << 20, Opened: 2}}
	st.Node.Chunks = &node.ChunkStats{Fetched: 3, FetchedB: 12 << 20, Served: 5, LocalBytes: 7,
		Store: spill.Stats{Mode: "disk", Dir: "/tmp/s/run-1", Chunks: 3, Bytes: 12 << 20, BudgetBytes: 1 << 30, Spilled: 3}}
	var b strings.Builder
	printStatus(&b, st)
	out := b.String()
	assert.Contains(t, out, "large files: chunked, kernel path page_cache (passthrough not offered), chunks of 4.0 MiB; files opened 2")
	assert.Contains(t, out, "chunks: fetched 3 (12.0 MiB), served 5")
	assert.Contains(t, out, "chunk store: /tmp/s/run-1, 3 chunks")

	st = service.Status{LargeFiles: service.LargeFilesStatus{Mode: "direct", KernelPath: "page_cache", KernelOffersPassthrough: true}}
	b.Reset()
	printStatus(&b, st)
	assert.Contains(t, b.String(), "large files: direct, kernel path page_cache (passthrough offered, unused)\n")
	assert.NotContains(t, b.String(), "chunk store")
}
