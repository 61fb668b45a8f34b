package report

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/hpc-copper/copper/profile/schema"
)

// csvSchema describes one per-node CSV kind of docs/PROFILING.md.
//
// The header must start with columns[:required] exactly. Columns after
// that are optional so that Copper 1.0 files (which lack copper's extra
// columns) still read, but when present they must be in this order; any
// further columns are unknown to this version and ignored.
type csvSchema struct {
	kind     string
	columns  []string
	required int
}

// The schemas take their columns from the writer's headers (package
// schema), so writer and reader cannot drift apart.
var (
	operationsSchema  = newSchema("profiling_operations", schema.OperationsHeader, schema.Copper10OperationsColumns)
	errorsSchema      = newSchema("profiling_errors", schema.ErrorsHeader, -1)
	metricsSchema     = newSchema("profiling_aggregate", schema.AggregateHeader, -1)
	topPathsSchema    = newSchema("profiling_top_paths", schema.TopPathsHeader, -1)
	pathsFullSchema   = newSchema("profiling_paths_full", schema.PathsFullHeader, schema.PathsFullRequiredColumns)
	largeFilesSchema  = newSchema("profiling_large_files", schema.LargeFilesHeader, -1)
	cacheTablesSchema = newSchema("cache_tables", schema.CacheTablesHeader, -1)
)

// newSchema makes the schema of a header; required < 0 means every
// column of it.
func newSchema(kind, header string, required int) csvSchema {
	cols := strings.Split(header, ",")
	if required < 0 {
		required = len(cols)
	}
	return csvSchema{kind: kind, columns: cols, required: required}
}

// csvRow is one data record with the line it started on.
type csvRow struct {
	line   int
	fields []string
}

// readCSV reads a whole file of kind s, checking the header; name is used
// in every error ("name:line: ...").
func readCSV(r io.Reader, name string, s csvSchema) (header []string, rows []csvRow, err error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 0 // every record as wide as the header
	header, err = cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("%s: empty file, expected header %q", name, strings.Join(s.columns[:s.required], ","))
	}
	if err != nil {
		return nil, nil, csvError(name, err)
	}
	header[0] = strings.TrimPrefix(header[0], "\uFEFF") // spreadsheet round trips add a BOM
	if err := checkHeader(header, s); err != nil {
		return nil, nil, fmt.Errorf("%s:1: %w", name, err)
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return header, rows, nil
		}
		if err != nil {
			return nil, nil, csvError(name, err)
		}
		line, _ := cr.FieldPos(0)
		rows = append(rows, csvRow{line: line, fields: rec})
	}
}

func checkHeader(header []string, s csvSchema) error {
	for i, want := range s.columns {
		if i >= len(header) {
			if i < s.required {
				return fmt.Errorf("%s header has %d columns, missing %q (expected %q)",
					s.kind, len(header), want, strings.Join(s.columns[:s.required], ","))
			}
			return nil
		}
		if header[i] != want {
			return fmt.Errorf("%s header column %d is %q, expected %q (expected header %q)",
				s.kind, i+1, header[i], want, strings.Join(s.columns, ","))
		}
	}
	return nil
}

func csvError(name string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s:%d: %w", name, pe.Line, pe.Err)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// fieldScanner converts the fields of one row, keeping the first error so
// that row parsers read as a flat list of assignments.
type fieldScanner struct {
	name   string
	header []string
	row    csvRow
	err    error
}

func (f *fieldScanner) failf(col int, format string, args ...any) {
	if f.err == nil {
		f.err = fmt.Errorf("%s:%d: column %s: %s", f.name, f.row.line, f.header[col], fmt.Sprintf(format, args...))
	}
}

// present reports whether the file has column col (optional columns may
// be absent from Copper 1.0 files).
func (f *fieldScanner) present(col int) bool { return col < len(f.row.fields) }

func (f *fieldScanner) text(col int) string {
	if !f.present(col) {
		return ""
	}
	return f.row.fields[col]
}

func (f *fieldScanner) nonEmpty(col int) string {
	v := f.text(col)
	if v == "" {
		f.failf(col, "empty")
	}
	return v
}

func (f *fieldScanner) count(col int) uint64 {
	if !f.present(col) {
		return 0
	}
	v, err := strconv.ParseUint(f.row.fields[col], 10, 64)
	if err != nil {
		f.failf(col, "%q is not a non-negative integer", f.row.fields[col])
	}
	return v
}

func (f *fieldScanner) integer(col int) int64 {
	if !f.present(col) {
		return 0
	}
	v, err := strconv.ParseInt(f.row.fields[col], 10, 64)
	if err != nil {
		f.failf(col, "%q is not an integer", f.row.fields[col])
	}
	return v
}

func (f *fieldScanner) real(col int) float64 {
	if !f.present(col) {
		return 0
	}
	v, err := parseNonNegative(f.row.fields[col])
	if err != nil {
		f.failf(col, "%v", err)
	}
	return v
}

func (f *fieldScanner) path(col int) string {
	p := f.text(col)
	// Not op.CheckPath: a probe of an over-long name is still worth
	// reporting; only the shape that every view path has is required.
	if p == "" || p[0] != '/' || strings.IndexByte(p, 0) >= 0 {
		f.failf(col, "%q is not an absolute view path", p)
	}
	return p
}

func parseNonNegative(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, fmt.Errorf("%q is not a non-negative number", s)
	}
	return v, nil
}
