# A stand-in for Spack, just enough to run packaging/spack/package.py's
# build outside Spack (packaging_test.go). Not Spack: no concretizer, no
# fetching; the test calls the recipe's phases in Spack's order.
