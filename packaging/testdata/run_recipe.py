"""Runs a Spack recipe's build outside Spack: python3 run_recipe.py
RECIPE SOURCE_DIR PREFIX VERSION STAGE. Needs spackstub/ on PYTHONPATH.
Prints the recipe's directives as JSON lines on stdout, then runs every
phase in Spack's order in SOURCE_DIR with the recipe's build environment.
"""

import importlib.util
import json
import os
import sys

import spack.package as sp


class Env:
    def __init__(self):
        self.vars = {}

    def set(self, name, value):
        self.vars[name] = str(value)


class Spec:
    def __init__(self, version):
        self.version = version


def main():
    recipe, source, prefix, version, stage = sys.argv[1:6]
    loader = importlib.util.spec_from_file_location("copper_recipe", recipe)
    mod = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(mod)
    for kind, args, kwargs in sp.directives:
        print(json.dumps({"directive": kind, "args": list(args), "kwargs": kwargs}), flush=True)
    pkg = mod.Copper(stage)
    env = Env()
    if hasattr(pkg, "setup_build_environment"):
        pkg.setup_build_environment(env)
    os.environ.update(env.vars)
    os.chdir(source)
    spec = Spec(version)
    for phase in pkg.phases:
        getattr(pkg, phase)(spec, prefix)


if __name__ == "__main__":
    main()
