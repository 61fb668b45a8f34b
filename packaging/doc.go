// Package packaging holds what installs copper — the Lmod module file
// template (lmod/), the Spack recipe (spack/) — and the tests that run the
// real `make install`, `make dist`, Lmod's `module load` and `man` on
// what they produce. It has no Go code of its own.
package packaging
