package net

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/hpc-copper/copper/op"
)

// PlusPageSize is the bytes a dirplus page holding entries takes in a
// response payload after the errno, so that a node can cut pages to fit a
// frame before encoding them.
func PlusPageSize(entries []op.PlusEntry) int {
	n := 1 + 4 // more, count
	for _, e := range entries {
		n += PlusEntrySize(e)
	}
	return n
}

// PlusEntrySize is one entry's share of PlusPageSize.
func PlusEntrySize(e op.PlusEntry) int {
	n := 2 + len(e.Name) + AttrSize + 1 + 1
	if e.HasTarget {
		n += 4 + len(e.Target)
	}
	if e.HasData {
		n += 4 + len(e.Data)
	}
	return n
}

func appendPlus(b []byte, r op.Result) ([]byte, error) {
	if len(r.Plus) > math.MaxUint32 {
		return b, fmt.Errorf("cnet: dirplus of %d entries overflows the count field", len(r.Plus))
	}
	more := byte(0)
	if r.More {
		more = 1
	}
	b = append(b, more)
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.Plus)))
	for i, e := range r.Plus {
		if err := checkName(e.Name); err != nil {
			return b, err
		}
		// Receivers binary-search listings for local ENOENT answers.
		if i > 0 && r.Plus[i-1].Name >= e.Name {
			return b, fmt.Errorf("cnet: dirplus names not strictly sorted at %q", e.Name)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(e.Name)))
		b = append(b, e.Name...)
		b = appendAttr(b, e.Attr)
		if !e.HasTarget {
			b = append(b, 0)
		} else {
			if err := checkTarget(e.Target); err != nil {
				return b, err
			}
			b = append(b, 1)
			b = binary.BigEndian.AppendUint32(b, uint32(len(e.Target)))
			b = append(b, e.Target...)
		}
		if !e.HasData {
			b = append(b, 0)
			continue
		}
		if err := checkData(e); err != nil {
			return b, err
		}
		b = append(b, 1)
		b = binary.BigEndian.AppendUint32(b, uint32(len(e.Data)))
		b = append(b, e.Data...)
	}
	return b, nil
}

// checkData holds a dirplus entry's file content to what a Read of it
// would answer: a regular file's whole content under the entry's stat,
// so a peer cannot make a node cache bytes its stat does not vouch for.
func checkData(e op.PlusEntry) error {
	switch {
	case !e.Attr.IsRegular():
		return fmt.Errorf("cnet: dirplus entry %q carries data but is not a regular file (mode %#o)", e.Name, e.Attr.Mode)
	case int64(len(e.Data)) != e.Attr.Size:
		return fmt.Errorf("cnet: dirplus entry %q carries %d bytes of a file of size %d", e.Name, len(e.Data), e.Attr.Size)
	}
	return nil
}

// plus decodes a dirplus page: more flag, count, entries with strictly
// increasing names (a receiver binary-searches them to answer ENOENT).
// borrowed: payload is a netpoll buffer, so file data is copied out of it
// (one allocation per file: the cache charges and evicts each alone).
func (d *decoder) plus(borrowed bool) ([]op.PlusEntry, bool) {
	var more bool
	switch d.u8() {
	case 0:
	case 1:
		more = true
	default:
		d.fail("more flag is neither 0 nor 1")
	}
	count := d.u32()
	// Bound the allocation by what the payload can hold, not by the claim.
	if d.err == nil && uint64(count)*minPlusEntrySize > uint64(len(d.b)) {
		d.fail(fmt.Sprintf("%d entries cannot fit in %d bytes", count, len(d.b)))
	}
	if d.err != nil {
		return nil, false
	}
	entries := make([]op.PlusEntry, 0, count)
	for range count {
		e := d.plusEntry(borrowed)
		if d.err != nil {
			return nil, false
		}
		if n := len(entries); n > 0 && entries[n-1].Name >= e.Name {
			d.fail(fmt.Sprintf("names not strictly sorted at %q", e.Name))
			return nil, false
		}
		entries = append(entries, e)
	}
	return entries, more
}

// plusEntry decodes and checks one dirplus entry; d.err says if it failed.
func (d *decoder) plusEntry(borrowed bool) op.PlusEntry {
	var e op.PlusEntry
	e.Name = string(d.bytes(uint32(d.u16())))
	e.Attr = d.attr()
	switch d.u8() {
	case 0:
	case 1:
		e.HasTarget = true
		e.Target = string(d.bytes(d.u32()))
	default:
		d.fail("target flag is neither 0 nor 1")
	}
	switch d.u8() {
	case 0:
	case 1:
		e.HasData = true
		e.Data = d.bytes(d.u32())
		if borrowed && e.Data != nil {
			e.Data = append(make([]byte, 0, len(e.Data)), e.Data...) // non-nil when empty
		}
	default:
		d.fail("data flag is neither 0 nor 1")
	}
	if d.err != nil {
		return e
	}
	err := checkName(e.Name)
	if err == nil {
		err = checkTarget(e.Target)
	}
	if err == nil && e.HasData {
		err = checkData(e)
	}
	if err != nil {
		d.err = fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return e
}
