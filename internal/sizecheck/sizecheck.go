// Package sizecheck measures the module's non-test Go sources so that a
// test can hold the line issue #11 drew: no function over MaxFuncLines,
// and no file over MaxFileLines unless it is listed with the one job it
// does. It reads files as text through go/parser; it never builds them.
package sizecheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The limits. A function is counted from its "func" line to its closing
// brace, doc comment excluded; a file by its newline count.
const (
	MaxFuncLines = 80
	MaxFileLines = 400
)

// Func is one function or method longer than MaxFuncLines.
type Func struct {
	File  string // slash-separated, relative to the module root
	Name  string // "Recv.Name" for methods, "Name" otherwise
	Line  int    // line of the func keyword
	Lines int
}

// Key names the function independent of where it starts in the file.
func (f Func) Key() string { return f.File + ":" + f.Name }

// File is one source file longer than MaxFileLines.
type File struct {
	Path  string // slash-separated, relative to the module root
	Lines int
}

// Report is what Scan found over the limits, sorted by path then line.
type Report struct {
	Funcs []Func
	Files []File
}

// Scan walks root and measures every .go file that is not a test, not
// generated ("Code generated ... DO NOT EDIT."), and not under testdata,
// vendor or a hidden directory.
func Scan(root string) (Report, error) {
	var rep Report
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return fmt.Errorf("sizecheck: %s: %w", path, err)
		}
		return measure(fset, path, filepath.ToSlash(rel), &rep)
	})
	if err != nil {
		return Report{}, err
	}
	sort.Slice(rep.Funcs, func(i, j int) bool {
		a, b := rep.Funcs[i], rep.Funcs[j]
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
	sort.Slice(rep.Files, func(i, j int) bool { return rep.Files[i].Path < rep.Files[j].Path })
	return rep, nil
}

func measure(fset *token.FileSet, path, rel string, rep *Report) error {
	src, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("sizecheck: %w", err)
	}
	f, err := parser.ParseFile(fset, path, src, parser.ParseComments)
	if err != nil {
		return fmt.Errorf("sizecheck: %w", err)
	}
	if ast.IsGenerated(f) {
		return nil
	}
	if n := strings.Count(string(src), "\n"); n > MaxFileLines {
		rep.Files = append(rep.Files, File{Path: rel, Lines: n})
	}
	for _, decl := range f.Decls {
		fn, ok := decl.(*ast.FuncDecl)
		if !ok || fn.Body == nil {
			continue
		}
		start := fset.Position(fn.Type.Func).Line
		n := fset.Position(fn.Body.Rbrace).Line - start + 1
		if n > MaxFuncLines {
			rep.Funcs = append(rep.Funcs, Func{File: rel, Name: funcName(fn), Line: start, Lines: n})
		}
	}
	return nil
}

func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	t := fn.Recv.List[0].Type
	for {
		switch x := t.(type) {
		case *ast.StarExpr:
			t = x.X
			continue
		case *ast.IndexExpr:
			t = x.X
			continue
		case *ast.IndexListExpr:
			t = x.X
			continue
		case *ast.Ident:
			return x.Name + "." + fn.Name.Name
		}
		return fn.Name.Name
	}
}
