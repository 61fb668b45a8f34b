"""The names `from spack.package import *` gives a recipe, as stand-ins.

Directives record what they are given (class attribute `directives`), so
the test can check them; make() runs the real make in the current
directory, as Spack's does in the stage.
"""

import os
import subprocess

__all__ = ["MakefilePackage", "version", "depends_on", "maintainers", "license", "make", "join_path"]

directives = []


def version(*args, **kwargs):
    directives.append(("version", args, kwargs))


def depends_on(*args, **kwargs):
    directives.append(("depends_on", args, kwargs))


def maintainers(*args, **kwargs):
    directives.append(("maintainers", args, kwargs))


def license(*args, **kwargs):
    directives.append(("license", args, kwargs))


def join_path(*parts):
    return os.path.join(*parts)


def make(*args):
    subprocess.run(["make", *args], check=True)


class _Stage:
    def __init__(self, path):
        self.path = path


class MakefilePackage:
    phases = ["edit", "build", "install"]

    def __init__(self, stage_path):
        self.stage = _Stage(stage_path)

    def edit(self, spec, prefix):
        pass

    def build(self, spec, prefix):
        make()

    def install(self, spec, prefix):
        make("install")
