"""The compiled hot path (mptcpspec/dissect/native.pyx) and dissect -j's compiled first pass
(mptcpspec/dissect/firstpass.pyx), built where a C compiler exists.

Everything else is configured in pyproject.toml.  Without a compiler, without Cython, or with
MPTCPSPEC_PURE=1 at install time, the package installs without the extension: the dissector then
runs its pure-Python path (the reference), with the same output, and `mptcpspec --version` says so.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

SOURCE = "mptcpspec/dissect/native.pyx"
FIRST_PASS = "mptcpspec/dissect/firstpass.pyx"  # dissect -j's first pass
PURE_NOTE = "mptcpspec: installing the pure-Python package, without the compiled hot path"


def _say(why: str) -> None:
    print(f"{PURE_NOTE} ({why}); `mptcpspec --version` names the mode", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """build_ext that falls back to the pure-Python package instead of failing."""

    said = False

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:  # no compiler, no headers: the package works without the extension
            self._pure(e)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as e:
            stale = self.get_ext_fullpath(ext.name)  # an earlier build's module must not ship as this one's
            if os.path.exists(stale):
                os.remove(stale)
            self._pure(e)

    def _pure(self, e: BaseException) -> None:
        if not OptionalBuildExt.said:
            OptionalBuildExt.said = True
            _say(f"{type(e).__name__}: {e}".strip())


#: why the extension is not built at all (said once, by the build itself: pip runs this file
#: several times per install)
WHY_NOT: str | None = None


class SayingBuildPy(build_py):
    """build_py that says, once, why the package is built without its extension."""

    def run(self) -> None:
        if WHY_NOT is not None:
            _say(WHY_NOT)
        super().run()


def _extensions() -> list[Extension]:
    global WHY_NOT
    if os.environ.get("MPTCPSPEC_PURE", "") not in ("", "0"):
        WHY_NOT = "MPTCPSPEC_PURE is set"
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        WHY_NOT = "Cython is not installed"
        return []
    exts = [
        Extension("mptcpspec.dissect.native", [SOURCE], extra_compile_args=["-O2"]),
        Extension("mptcpspec.dissect.firstpass", [FIRST_PASS], extra_compile_args=["-O2"]),
    ]
    return list(
        cythonize(
            exts,
            compiler_directives={
                "language_level": 3,
                "boundscheck": False,
                "cdivision": True,
                "initializedcheck": False,
            },
            include_path=["mptcpspec/codec/generated"],  # native_options.pxi, generated from spec/
            quiet=True,
        )
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt, "build_py": SayingBuildPy})
