// Package testkit is the test infrastructure that copper's integration
// tests share: reading /proc/self/mountinfo, detaching leftover mounts
// and aborting stuck FUSE connections, running child processes bounded
// in time, finding processes by what their command line names, picking
// free loopback addresses and building the binaries under test.
//
// It is an ordinary (non-_test) package only because Go cannot share
// _test.go files between packages: nothing but _test.go files may import
// it, and production code must never depend on it. Being internal, it is
// importable only from inside this module.
//
// Everything here assumes Linux, and the FUSE helpers assume root, as
// the tests that use them do.
package testkit
