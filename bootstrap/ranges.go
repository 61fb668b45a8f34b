package bootstrap

import (
	"strconv"
	"strings"
)

// maxListedRanges keeps error messages (which travel in error frames to
// every rank) short even when thousands of scattered ranks are missing.
const maxListedRanges = 64

// formatRanks writes ascending ranks as ranges, "3,7-9", listing at most
// maxListedRanges ranges and counting the rest.
func formatRanks(ranks []int) string {
	var b strings.Builder
	listed := 0
	for i := 0; i < len(ranks); {
		j := i
		for j+1 < len(ranks) && ranks[j+1] == ranks[j]+1 {
			j++
		}
		if listed == maxListedRanges {
			rest := 0
			for k := i; k < len(ranks); k++ {
				if k == i || ranks[k] != ranks[k-1]+1 {
					rest++
				}
			}
			b.WriteString(",... and " + strconv.Itoa(rest) + " more ranges")
			break
		}
		if listed > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(ranks[i]))
		if j > i {
			b.WriteString("-" + strconv.Itoa(ranks[j]))
		}
		listed++
		i = j + 1
	}
	return b.String()
}

// rankWord is "rank" or "ranks" for n.
func rankWord(n int) string {
	if n == 1 {
		return "rank"
	}
	return "ranks"
}
