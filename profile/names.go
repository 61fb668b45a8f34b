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
// writes are the hot ones: a switch on op's constants compares them
// inline, where a loop over the table calls memequal for each (about
// 10 ns more per FUSE operation). TestFuseSlotsFollowTheTable keeps the
// switch in the table's order.
func fuseSlot(name string) int {
	switch name {
	case op.FuseGetattr:
		return 0
	case op.FuseLookup:
		return 1
	case op.FuseReaddir:
		return 2
	case op.FuseReadlink:
		return 3
	case op.FuseOpen:
		return 4
	case op.FuseRead:
		return 5
	case op.FuseStatfs:
		return 6
	case op.FuseGetxattr:
		return 7
	case op.FuseIoctl:
		return 8
	}
	for i := alwaysRows; i < len(fuseOps); i++ {
		if fuseOps[i] == name {
			return i
		}
	}
	return -1
}

// nodeOpOf is the distributed operation whose node-level counters share
// a row; 0 for rows without one.
func nodeOpOf(name string) op.Op { return op.FuseOpOf(name) }

// nodeOnlyOps are op.NodeOnlyOps: rows no FUSE operation maps to. Written
// once counted.
var nodeOnlyOps = op.NodeOnlyOps
