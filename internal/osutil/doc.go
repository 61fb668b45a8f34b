// Package osutil is copper's one home for Linux plumbing that product,
// tests, benchmarks and slurmtest all need: whether a pid still runs,
// /proc/self/mountinfo, durable atomic file replacement and errno
// extraction. It imports nothing of copper and nothing that links FUSE,
// so any command may use it.
package osutil
