package backend

import "encoding/binary"

// linux_dirent64 is in host byte order; every platform copper targets
// (x86_64, aarch64) is little-endian.
func nativeU16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }
func nativeU64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
