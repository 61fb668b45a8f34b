// Package e2e tests the real copper-node binary through real FUSE mounts:
// several nodes on loopback form a tree, and the tests walk, read, mutate,
// kill and restart them the way a job would. It holds tests only; run it
// with `go test ./e2e/` as root with fuse3 installed (`make test` or
// scripts/setup-test-deps.sh install what it needs).
package e2e
