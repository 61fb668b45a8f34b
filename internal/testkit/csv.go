package testkit

import (
	"bytes"
	"encoding/csv"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// ReadCSV parses the CSV file at path, requires its first record to be
// header (the writer's own constant, so writer and reader cannot drift),
// and returns the records after it.
func ReadCSV(t testing.TB, path, header string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	require.NoError(t, err, path)
	require.NotEmpty(t, recs, path)
	require.Equal(t, header, strings.Join(recs[0], ","), path)
	return recs[1:]
}
