# Spack package recipe for copper. Copy this directory into a Spack
# repository as packages/copper/ (spack repo create; cp), then
#   spack install copper
# The build is the project's own `make install`, with the arguments in
# install_args() below; packaging/packaging_test.go runs this file's
# install() outside Spack (with a stand-in for spack.package), so the
# recipe's build is tested on every `make test`.

from spack.package import *


class Copper(MakefilePackage):
    """Read-only cooperative FUSE cache that makes HPC job startup (Python
    imports, shared libraries) fast and flat as node counts grow: one
    daemon per node, an overlay tree in which only the root reads the
    parallel file system."""

    homepage = "https://github.com/hpc-copper/copper"
    git = "https://github.com/hpc-copper/copper.git"

    # No license() yet: the repository has no LICENSE file to name.

    version("main", branch="main")

    # go.mod asks for Go 1.26; building also downloads the Go modules in
    # go.sum (GOPROXY must be reachable, or a GOMODCACHE filled in advance).
    depends_on("go@1.26:", type="build")
    depends_on("gmake", type="build")
    # copper-node mounts with the host's fusermount3 (FUSE 3), which must be
    # setuid root: a system package, not something Spack can provide.

    def setup_build_environment(self, env):
        # Downloaded modules go to the stage, not $HOME, and are writable
        # (-modcacherw) so that Spack can remove the stage afterwards.
        # GOFLAGS replaces the Makefile's default, so it repeats
        # -buildvcs=false.
        env.set("GOPATH", join_path(self.stage.path, "go"))
        env.set("GOFLAGS", "-buildvcs=false -modcacherw")

    def install_args(self, spec, prefix):
        """The one `make` command line of the build: make install builds the
        binaries, the man pages and the Lmod module file into prefix."""
        return ["install", "PREFIX={0}".format(prefix), "VERSION={0}".format(spec.version)]

    def build(self, spec, prefix):
        pass  # `make install` builds what it installs

    def install(self, spec, prefix):
        make(*self.install_args(spec, prefix))
