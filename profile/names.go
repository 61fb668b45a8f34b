package profile

import (
	"github.com/hpc-copper/copper/op"
	"github.com/hpc-copper/copper/profile/schema"
)

// Category names of profiling_top_paths.csv, in file order.
const (
	CategoryMetadata    = schema.CategoryMetadata
	CategoryData        = schema.CategoryData
	CategoryTree        = schema.CategoryTree
	CategoryLink        = schema.CategoryLink
	CategoryMetadataTTL = schema.CategoryMetadataTTL
)

// categories lists the categories in file order (read-only).
var categories = [...]string{CategoryMetadata, CategoryData, CategoryTree, CategoryLink, CategoryMetadataTTL}

// categoryOf is the category of an operation's paths; -1 for none.
func categoryOf(o op.Op) int {
	switch o {
	case op.Getattr:
		return 0
	case op.Read:
		return 1
	case op.Readdir, op.DirPlus, op.DirPlusNext:
		return 2
	case op.Readlink:
		return 3
	}
	return -1
}

const ttlCategory = 4

// fuseOps are the FUSE operation names as the fuse package reports them,
// in profiling_operations.csv order: op's table.
var fuseOps = op.FuseOps

const alwaysRows = op.FuseAlwaysRows

// fuseSlot is the index of name in fuseOps, or -1. The rows every node
// writes are the common case and come first.
func fuseSlot(name string) int {
	for i, n := range fuseOps {
		if n == name {
			return i
		}
	}
	return -1
}

// nodeOpOf is the distributed operation whose node-level counters share
// a row; 0 for rows without one.
func nodeOpOf(name string) op.Op { return op.FuseOpOf(name) }

// nodeOnlyOps are rows of distributed operations no FUSE operation maps
// to: a node fetches a directory as a dirplus for the lookups, getattrs
// and readdirs in it, and children ask for them. Written once counted.
var nodeOnlyOps = [...]op.Op{op.DirPlus, op.DirPlusNext}
