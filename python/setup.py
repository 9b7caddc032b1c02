"""Installs the pure-Python package and, next to it, a copy of libbiomedclip.so.

Nothing is compiled here: the library is built by `make` in the project root. The copy is taken
from $BIOMEDCLIP_LIB (a path to the .so) if set, else from ../build/libbiomedclip.so (the default
build tree, next to this directory); when neither exists the package installs without it and
loads the system's library at import (`make install`). pyproject.toml holds the metadata.
"""
import os
import shutil

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


def built_library():
    env = os.environ.get("BIOMEDCLIP_LIB")
    if env:
        if not os.path.isfile(env):
            raise SystemExit("BIOMEDCLIP_LIB=%s: no such file" % env)
        return env
    p = os.path.join(HERE, "..", "build", "libbiomedclip.so")
    return p if os.path.isfile(p) else None


class BuildPyWithLibrary(build_py):
    def run(self):
        super().run()
        lib = built_library()
        dest = os.path.join(self.build_lib, "biomedclip", "libbiomedclip.so")
        if lib:
            self.announce("biomedclip: bundling %s" % lib, level=2)
            shutil.copyfile(os.path.realpath(lib), dest)
        else:
            if os.path.exists(dest):  # a copy left by an earlier build in the same tree
                os.remove(dest)
            print("biomedclip: no built libbiomedclip.so found (run make, or set BIOMEDCLIP_LIB);"
                  " the package will load the system's library")


class BinaryDistribution(Distribution):
    """A wheel that carries a shared library is tagged for its platform, not 'any'."""

    def has_ext_modules(self):
        return built_library() is not None


setup(cmdclass={"build_py": BuildPyWithLibrary}, distclass=BinaryDistribution)
