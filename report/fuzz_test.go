package report

import (
	"strings"
	"testing"
)

// FuzzParsers feeds the same bytes to every CSV reader: none may panic,
// and every error must name the file it came from.
func FuzzParsers(f *testing.F) {
	for _, n := range fixtureNodes {
		for _, content := range n.files {
			f.Add(expand.Replace(content))
		}
	}
	for _, content := range fixtureTables {
		f.Add(content)
	}
	f.Add("")
	f.Add(opsHeader + "\n\"unterminated\n")
	f.Add(copper10OpsHeader + "\ngetattr,1,1,0,0,1e309,0\n")
	f.Add(fullHeader + "\n/a,1,0,0,0,1,0,0,hit,0,extra\n")
	f.Add("metric,value\nrank,99999999999999999999\n")
	f.Add("path,size_bytes,opens,bytes_read\n/bin/app,220200960,4,220200960\n")
	f.Fuzz(func(t *testing.T, input string) {
		for kind, parse := range parsers {
			rows, err := parse(input)
			if err != nil {
				if !strings.HasPrefix(err.Error(), "n-1-") {
					t.Errorf("%s: error does not name the file: %v", kind, err)
				}
				continue
			}
			if rows < 0 || rows > strings.Count(input, "\n")+strings.Count(input, "\r")+1 {
				t.Errorf("%s: %d rows from %d lines", kind, rows, strings.Count(input, "\n")+1)
			}
		}
	})
}
