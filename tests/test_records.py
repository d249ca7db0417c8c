"""The package's dataclasses, made lazily (``mptcpspec.records``), are the dataclasses ``dataclasses`` makes.

Each process below imports every module that declares one and describes each class: its fields
(name, type, default, flags), ``__dataclass_params__``, slots, ``__match_args__``, signature and
docstring, and, on an instance with sample values, ``repr``, equality, ``hash``, its pickles (octet by
octet), ``replace`` and what setting or deleting a field raises.  The reference is a process started
with ``MPTCPSPEC_EAGER_DATACLASSES=1``, where the name is ``dataclasses.dataclass`` itself; the others
describe the lazy classes, and do so before anything made their methods (pickles, immutability)
and after, once with each ``__init__`` made by ``dataclasses`` and once with each made by
``mptcpspec.records`` itself (what a run does: it imports no ``dataclasses``), whose text, annotations,
defaults, errors and instances are compared too.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

DECLARES = "from mptcpspec.records import dataclass"


def _modules() -> list[str]:
    """Every module that declares a dataclass through ``mptcpspec.records``."""
    out = []
    for path in sorted((ROOT / "mptcpspec").rglob("*.py")):
        if DECLARES in path.read_text():
            rel = path.relative_to(ROOT).with_suffix("")
            out.append(".".join(p for p in rel.parts if p != "__init__"))
    return out


def _classes() -> list[type]:
    """The dataclasses those modules declare (their own, not those they import)."""
    out = []
    for name in _modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == name and "__dataclass_params__" in dir(value):
                out.append(value)
    return out


def _sample(cls: type) -> Any:
    """An instance with a distinct value in each field, built without ``__init__`` (nor making it)."""
    obj = object.__new__(cls)
    for i, name in enumerate(f.name for f in dataclasses.fields(cls)):
        object.__setattr__(obj, name, 1000 + i)
    return obj


def _raises(action: Any) -> str:
    """What ``action()`` returns, or the error it raises, as text."""
    try:
        return repr(action())
    except Exception as exc:  # noqa: BLE001 - the class of what is raised is what is compared
        return f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"


def _describe_init(cls: type) -> dict[str, Any]:
    """``__init__`` as a function (its code's names, annotations, defaults) and what calling it does."""
    init: Any = cls.__init__  # type: ignore[misc]
    code = init.__code__
    params = inspect.signature(cls).parameters.values()
    args = [1000 + i for i, p in enumerate(params) if p.kind is not p.KEYWORD_ONLY]
    kwargs = {p.name: 2000 + i for i, p in enumerate(params) if p.kind is p.KEYWORD_ONLY}
    return {
        "function": [init.__qualname__, init.__module__, init.__doc__, repr(init.__annotations__)],
        "defaults": [repr(init.__defaults__), repr(init.__kwdefaults__)],
        "code": [code.co_qualname, code.co_filename, list(code.co_varnames), code.co_argcount, code.co_kwonlyargcount],
        "made": _raises(lambda: cls(*args, **kwargs)),
        "missing": _raises(lambda: cls()),
        "extra": _raises(lambda: cls(*args, 9, **kwargs)),
        "unknown": _raises(lambda: cls(*args, unknown=9, **kwargs)),
    }


def _describe(cls: type) -> dict[str, Any]:
    fields = [
        [f.name, str(f.type), "MISSING" if f.default is dataclasses.MISSING else repr(f.default)]
        + [f.init, f.repr, f.compare, f.hash, f.kw_only]
        for f in dataclasses.fields(cls)
    ]
    sample = _sample(cls)
    other = _sample(cls)
    names = [f[0] for f in fields]
    if names:
        object.__setattr__(other, names[0], -1)
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    d: dict[str, Any] = {
        "fields": fields,
        "params": repr(params),
        "slots": list(cls.__dict__.get("__slots__", ["(none)"])),
        "has_dict": hasattr(sample, "__dict__"),
        "match_args": list(getattr(cls, "__match_args__", ["(none)"])),
        "signature": str(inspect.signature(cls)),
        "doc": cls.__doc__,
        "mro": [c.__qualname__ for c in cls.__mro__],
        "repr": repr(sample),
        "eq": [sample == copy.copy(sample), sample == other, sample != other],
        "hash": "by identity" if cls.__hash__ is object.__hash__ else _raises(lambda: hash(sample)),
        "pickles": [pickle.dumps(sample, p).hex() for p in range(2, pickle.HIGHEST_PROTOCOL + 1)],
        "unpickled": [repr(pickle.loads(pickle.dumps(sample, p))) for p in range(2, pickle.HIGHEST_PROTOCOL + 1)],
    }
    if names:
        d["replace"] = repr(dataclasses.replace(sample, **{names[0]: 7})) if params.init else ""
        d["set"] = _raises(lambda: setattr(copy.copy(sample), names[0], 1))
        d["del"] = _raises(lambda: delattr(copy.copy(sample), names[0]))
    if params.init:
        d["init"] = _describe_init(cls)
    return d


def describe_all(init_first: bool = False) -> None:
    """Print (JSON) each class's description: the work of the processes the tests start.

    ``init_first``: look each class's ``__init__`` up before anything else (lazy classes: it is then
    ``mptcpspec.records``' own, not the one ``dataclasses`` makes with the rest)."""
    classes = _classes()
    if init_first:
        for cls in classes:
            getattr(cls, "__init__")  # noqa: B009 - the lookup is what makes it
    print(json.dumps({f"{c.__module__}.{c.__qualname__}": _describe(c) for c in classes}, indent=1))


def _run(eager: bool, init_first: bool = False) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "MPTCPSPEC_EAGER_DATACLASSES"}
    env["PYTHONHASHSEED"] = "0"  # hashes of text, the same in both processes
    if eager:
        env["MPTCPSPEC_EAGER_DATACLASSES"] = "1"
    r = subprocess.run(
        [sys.executable, "-c", f"from tests.test_records import describe_all; describe_all({init_first})"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return dict(json.loads(r.stdout))


Described = tuple[dict[str, Any], dict[str, Any], dict[str, Any]]


@pytest.fixture(scope="module")
def described() -> Described:
    return _run(eager=True), _run(eager=False), _run(eager=False, init_first=True)


def test_the_reference_is_read(described: Described) -> None:
    """The check can fail: the classes the dissector's hot path reads are among those described,
    with their slots, their ``__init__`` (keyword-only parameters and defaults among them) and what
    calling it wrongly raises."""
    eager, _, _ = described
    assert len(eager) >= 50
    assert eager["mptcpspec.codec.generated.options.Dss"]["slots"][:2] == ["reserved", "flags"]
    assert eager["mptcpspec.analysis.model.Mapping"]["params"].startswith("_DataclassParams(init=True")
    inits = [d["init"] for d in eager.values() if "init" in d]
    assert len(inits) >= 50
    assert any(i["code"][4] for i in inits) and any(i["defaults"][0] != "None" for i in inits)
    assert any(i["defaults"][1] != "None" for i in inits)
    mapping = eager["mptcpspec.analysis.model.Mapping"]["init"]
    assert mapping["code"][:2] == ["__create_fn__.<locals>.__init__", "<string>"]
    assert mapping["made"].startswith("Mapping(ssn=1000, end=1001")
    assert mapping["missing"].startswith("builtins.TypeError: Mapping.__init__() missing 7 required")


@pytest.mark.parametrize("which", [1, 2], ids=["init-by-dataclasses", "init-by-records"])
def test_same_dataclasses(described: Described, which: int) -> None:
    eager, lazy = described[0], described[which]
    assert sorted(lazy) == sorted(eager)
    for name in eager:
        assert sorted(lazy[name]) == sorted(eager[name]), name
        for key in eager[name]:
            if key == "set" and "FrozenInstanceError" in eager[name][key]:
                # the error for a field; another name is refused too (FrozenInstanceError on the
                # class itself, where dataclasses' slotted class raises TypeError from super())
                assert "FrozenInstanceError" in lazy[name][key], name
            assert lazy[name][key] == eager[name][key], (name, key)


LAZY_USE = """
import dataclasses, pickle, sys
from mptcpspec.codec.generated import options
from mptcpspec.analysis import model
cls = options.Dss
before = id(cls), id(model.Mapping)
obj = object.__new__(cls)
for i, f in enumerate(cls.__slots__):
    object.__setattr__(obj, f, i)
made = type(vars(cls)["__dataclass_fields__"]) is dict
again = pickle.loads(pickle.dumps(obj))
try:
    obj.flags = 3
except dataclasses.FrozenInstanceError:
    frozen = True
still = type(vars(cls)["__dataclass_fields__"]) is dict
print(made, still, frozen, type(again) is cls, again == obj, hash(again) == hash(obj))
print(dataclasses.is_dataclass(cls), type(vars(cls)["__dataclass_fields__"]) is dict, options.Dss is cls)
print((id(options.Dss), id(model.Mapping)) == before, type(dataclasses.replace(again, flags=1)) is cls)
"""


def test_made_on_first_use_same_class() -> None:
    """Pickling and immutability need nothing made; ``is_dataclass`` makes it; the class object is
    the one the module held from the start."""
    env = {k: v for k, v in os.environ.items() if k != "MPTCPSPEC_EAGER_DATACLASSES"}
    r = subprocess.run(
        [sys.executable, "-c", LAZY_USE], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == "False False True True True True True True True True True".split()


def test_every_declaring_module_is_listed() -> None:
    """The walk finds the modules (a rename of the import line would hide them all)."""
    names = _modules()
    assert {"mptcpspec.analysis.model", "mptcpspec.codec.generated.options", "mptcpspec.fsm.runtime"} <= set(names)
    assert all((ROOT / Path(*n.split("."))).with_suffix(".py").exists() for n in names)


FIRST_INIT = """
import sys
from mptcpspec.analysis import model
m = model.Mapping(1, 2, 3, 4, None, None, data_level_length=5)
init = vars(model.Mapping)["__init__"]
print("dataclasses" in sys.modules, type(vars(model.Mapping)["__dataclass_fields__"]).__name__)
shown = repr(m).startswith("Mapping(ssn=1, end=2, dsn64=3, frame=4, checksum=None, buffer=None, data_level_length=5")
print(shown, "dataclasses" in sys.modules, vars(model.Mapping)["__init__"] is init)
"""


def test_init_without_dataclasses() -> None:
    """An instance is made without importing ``dataclasses`` or making the other methods; ``repr``
    then makes them and keeps the ``__init__`` already made."""
    env = {k: v for k, v in os.environ.items() if k != "MPTCPSPEC_EAGER_DATACLASSES"}
    r = subprocess.run(
        [sys.executable, "-c", FIRST_INIT], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == "False _Pending True True True".split()
