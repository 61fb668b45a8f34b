// Package report turns the per-node profiling files that copper-node
// writes into a job directory (docs/PROFILING.md) into cluster reports:
//
//   - Aggregate: totals, per-operation table, hottest paths, path classes,
//     a Markdown summary and an SVG chart in profiling/cluster/;
//   - Paths: which files and directories under a usage root the job used;
//   - Cache: cache table sizes summed over the nodes.
//
// The CSV parsers are strict about headers (errors name file:line) and
// ignore unknown trailing columns, so newer writers keep working with
// older readers; Copper 1.0 operations files (without copper's extra
// columns) are read too.
package report
