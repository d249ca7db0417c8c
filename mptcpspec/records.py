"""Dataclasses whose generated methods are made on first use: ``from mptcpspec.records import dataclass``.

``dataclasses.dataclass`` writes each class's ``__init__``, ``__repr__``, ``__eq__``, ``__hash__`` and
(frozen) ``__setattr__``/``__delattr__`` as source and compiles it, and re-creates the class for its
slots: about half a millisecond a class on Python 3.11, some 25 ms for the classes a ``dissect``
imports, most of which a short capture never uses.  This decorator takes the same arguments and does
at once only what an instance's layout and immutability need: the slotted class (the slots of
``dataclasses``, in the same order: the compiled hot path finds them by name), the frozen
``__setattr__``/``__delattr__`` and the pickling state of a frozen slotted dataclass.  ``__init__``,
the one method every class a run meets needs, is written here on its first use, as ``dataclasses``
writes it (the same source: parameters, annotations, defaults, keyword-only ones, ``__post_init__``),
without importing ``dataclasses``, which costs some 6 ms with ``inspect`` and ``ast``.  The rest is
``dataclasses.dataclass`` itself, run on a copy of the class body the first time one of its other
methods or ``__dataclass_fields__``/``__dataclass_params__``/``__match_args__`` is looked up, and
moved onto the class: so ``fields()``, ``replace()``, ``is_dataclass()``, equality, hashing,
``repr`` and pickling are those of a dataclass, and the class object never changes.

The type checker sees ``dataclasses.dataclass`` (this name is that function for it), and so does a
process started with ``MPTCPSPEC_EAGER_DATACLASSES=1`` (the tests compare the two).  Field
specifiers (``field()``), ``InitVar`` and ``KW_ONLY`` are not supported: such a class is handed to
``dataclasses.dataclass`` at once.
"""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING, Any

__all__ = ["dataclass", "field_names", "materialize"]

#: The attributes ``dataclasses.dataclass`` may add, by the argument that makes it add them.
_MADE = {
    "init": ("__init__",),
    "repr": ("__repr__",),
    "eq": ("__eq__", "__hash__"),
    "unsafe_hash": ("__hash__",),
    "frozen": ("__hash__",),
    "order": ("__lt__", "__le__", "__gt__", "__ge__"),
    "match_args": ("__match_args__",),
}
_ALWAYS = ("__dataclass_fields__", "__dataclass_params__") + (("__replace__",) if sys.version_info >= (3, 13) else ())
_DEFAULTS = {"init": True, "repr": True, "eq": True, "order": False, "unsafe_hash": False, "frozen": False}
_DEFAULTS |= {"match_args": True, "kw_only": False, "slots": False}
#: ``name`` or ``module.name`` at the start of an annotation written as text (as ``dataclasses`` reads it).
_TYPE_NAME = re.compile(r"^(?:\s*(\w+)\s*\.)?\s*(\w+)")


#: A field without a default (``dataclasses.MISSING``, which is not imported here).
_NO_DEFAULT: Any = object()


class _Field:
    """A field as ``__init__`` takes it: its annotation (text), default and whether it is keyword-only."""

    __slots__ = ("annotation", "default", "kw_only")

    def __init__(self, annotation: str, default: Any, kw_only: bool) -> None:
        self.annotation, self.default, self.kw_only = annotation, default, kw_only


class _Spec:
    """What a lazy dataclass was declared with, until ``dataclasses.dataclass`` has run on it."""

    __slots__ = ("body", "fields", "names", "options", "pending")

    def __init__(self, body: dict[str, Any], fields: dict[str, _Field], options: dict[str, bool]) -> None:
        self.body = body  # the class body as written (defaults included), for dataclasses.dataclass
        self.fields = fields  # every field, inherited ones first, in dataclasses' order
        self.names = tuple(fields)
        self.options = options
        self.pending: tuple[str, ...] = ()  # the placeholders to replace


_SPECS: dict[type, _Spec] = {}


class _Pending:
    """A class attribute ``dataclasses.dataclass`` will make: looking it up makes it."""

    __slots__ = ("cls", "name")

    def __init__(self, cls: type, name: str) -> None:
        self.cls, self.name = cls, name

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if self.name == "__init__":
            _make_init(self.cls)
        else:
            materialize(self.cls)
        value = getattr(self.cls if obj is None else obj, self.name)
        if value is None and obj is not None and self.name == "__hash__":
            raise TypeError(f"unhashable type: {type(obj).__name__!r}")
        return value


def _is_special(annotation: str, module: dict[str, Any], what: str) -> bool:
    """Whether an annotation written as text names ``typing.ClassVar`` (``what``) as dataclasses would."""
    match = _TYPE_NAME.match(annotation)
    if match is None:
        return False
    prefix, name = match.groups()
    if prefix is None:
        target = module.get(name)
    else:
        target = getattr(module.get(prefix), name, None)
    return getattr(target, "_name", None) == what or getattr(target, "__name__", None) == what


def _fields(cls: type, body: dict[str, Any], kw_only: bool) -> dict[str, _Field] | None:
    """Every field of ``cls`` in dataclasses' order, or None if it declares what is not supported here."""
    fields: dict[str, _Field] = {}
    for base in cls.__mro__[-1:0:-1]:
        if base in _SPECS:
            fields.update(_SPECS[base].fields)
        elif "__dataclass_fields__" in base.__dict__:
            return None  # a base made by dataclasses.dataclass: leave the whole thing to it
    module = vars(sys.modules[cls.__module__]) if cls.__module__ in sys.modules else {}
    for name, annotation in body.get("__annotations__", {}).items():
        if not isinstance(annotation, str):
            return None  # written without ``from __future__ import annotations``: not read here
        if "ClassVar" in annotation and _is_special(annotation, module, "ClassVar"):
            continue
        if "InitVar" in annotation or "KW_ONLY" in annotation:
            return None
        default = body.get(name, _NO_DEFAULT)
        if type(default).__module__ == "dataclasses":  # field(...)
            return None
        if default is _NO_DEFAULT and any(name in base.__dict__ for base in cls.__mro__[1:]):
            return None  # a default inherited as a class attribute: left to dataclasses
        if default is not _NO_DEFAULT and type(default).__hash__ is None:
            return None  # a mutable default, which dataclasses refuses
        fields[name] = _Field(annotation, default, kw_only)
    return fields


def _make_init(cls: type) -> None:
    """Write ``__init__`` as ``dataclasses`` does (``_init_fn``), and put it on ``cls``."""
    spec = _SPECS[cls]
    if "__init__" not in spec.pending:
        return
    fields = spec.fields
    frozen = spec.options.get("frozen", False)
    self_name = "__dataclass_self__" if "self" in fields else "self"
    names: dict[str, Any] = {"__dataclass_builtins_object__": object, "_return_type": None}
    params: list[str] = []
    kw_params: list[str] = []
    body: list[str] = []
    seen_default = False
    for name, f in fields.items():
        names[f"_type_{name}"] = f.annotation
        if f.default is _NO_DEFAULT:
            default = ""
            if seen_default and not f.kw_only:
                raise TypeError(f"non-default argument {name!r} follows default argument")
        else:
            names[f"_dflt_{name}"] = f.default
            default = f"=_dflt_{name}"
            seen_default = seen_default or not f.kw_only
        (kw_params if f.kw_only else params).append(f"{name}:_type_{name}{default}")
        if frozen:
            body.append(f"  __dataclass_builtins_object__.__setattr__({self_name},{name!r},{name})")
        else:
            body.append(f"  {self_name}.{name}={name}")
    if hasattr(cls, "__post_init__"):
        body.append(f"  {self_name}.__post_init__()")
    args = ",".join([self_name, *params, *(["*", *kw_params] if kw_params else [])])
    text = f" def __init__({args})->_return_type:\n" + ("\n".join(body) or "  pass")
    text = f"def __create_fn__({', '.join(names)}):\n{text}\n return __init__"
    module = sys.modules.get(cls.__module__)
    scope: dict[str, Any] = {}
    # compiled without this module's ``from __future__ import annotations``, as dataclasses compiles it
    exec(compile(text, "<string>", "exec", dont_inherit=True), vars(module) if module else {}, scope)
    init = scope["__create_fn__"](**names)
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    type.__setattr__(cls, "__init__", init)
    spec.pending = tuple(n for n in spec.pending if n != "__init__")


def _frozen_methods(cls: type, names: tuple[str, ...]) -> tuple[Any, Any]:
    """``__setattr__`` and ``__delattr__`` of a frozen dataclass (the error ``dataclasses`` raises)."""
    fields = frozenset(names)
    owner: type[Any] = cls

    def __setattr__(self: Any, name: str, value: Any) -> None:  # noqa: N807 - the special method
        if type(self) is cls or name in fields:
            from dataclasses import FrozenInstanceError

            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(owner, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:  # noqa: N807 - the special method
        if type(self) is cls or name in fields:
            from dataclasses import FrozenInstanceError

            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(owner, self).__delattr__(name)

    __setattr__.__qualname__ = f"{cls.__qualname__}.__setattr__"
    __delattr__.__qualname__ = f"{cls.__qualname__}.__delattr__"
    return __setattr__, __delattr__


def _state_methods(names: tuple[str, ...]) -> tuple[Any, Any]:
    """``__getstate__`` and ``__setstate__`` of a frozen slotted dataclass (the same state: a list)."""

    def __getstate__(self: Any) -> list[Any]:  # noqa: N807 - the special method
        return [getattr(self, n) for n in names]

    def __setstate__(self: Any, state: list[Any]) -> None:  # noqa: N807 - the special method
        for name, value in zip(names, state, strict=False):
            object.__setattr__(self, name, value)

    return __getstate__, __setstate__


def _slotted(cls: type, names: tuple[str, ...]) -> type:
    """The class again with slots for its fields, as ``dataclasses`` makes it (``slots=True``)."""
    if "__slots__" in cls.__dict__:
        raise TypeError(f"{cls.__name__} already specifies __slots__")
    inherited: set[str] = set()
    for base in cls.__mro__[1:-1]:
        slots = base.__dict__.get("__slots__", ())
        inherited.update((slots,) if isinstance(slots, str) else slots)
    body = dict(cls.__dict__)
    body["__slots__"] = tuple(n for n in names if n not in inherited)
    for name in names:
        body.pop(name, None)
    body.pop("__dict__", None)
    body.pop("__weakref__", None)
    made = type(cls)(cls.__name__, cls.__bases__, body)
    made.__qualname__ = cls.__qualname__
    return made


def lazy_dataclass(cls: type | None = None, /, **options: bool) -> Any:
    """``dataclasses.dataclass``, its generated methods made on first use (see the module)."""
    unknown = set(options) - set(_DEFAULTS)
    if unknown:
        raise TypeError(f"unsupported dataclass arguments: {sorted(unknown)}")

    def wrap(cls: type) -> type:
        opts = _DEFAULTS | options
        body = dict(cls.__dict__)
        fields = _fields(cls, body, opts["kw_only"])
        if fields is None:
            from dataclasses import dataclass as eager

            return eager(cls, **options)
        names = tuple(fields)
        if opts["slots"]:
            cls = _slotted(cls, names)
        if opts["frozen"]:
            methods = dict(zip(("__setattr__", "__delattr__"), _frozen_methods(cls, names), strict=True))
            if opts["slots"]:
                methods |= zip(("__getstate__", "__setstate__"), _state_methods(names), strict=True)
            for name, method in methods.items():
                type.__setattr__(cls, name, method)
        spec = _Spec(body, fields, {k: v for k, v in opts.items() if k in options})
        lazy = [n for k, made in _MADE.items() if opts[k] for n in made]
        pending = [n for n in dict.fromkeys((*lazy, *_ALWAYS)) if n not in body]
        spec.pending = (*pending, "__doc__") if not body.get("__doc__") else tuple(pending)
        _SPECS[cls] = spec
        for name in spec.pending:
            type.__setattr__(cls, name, _Pending(cls, name))
        return cls

    return wrap if cls is None else wrap(cls)


def materialize(cls: type) -> None:
    """Run ``dataclasses.dataclass`` for ``cls`` now (a lookup of what it makes does it anyway)."""
    spec = _SPECS.get(cls)
    if spec is None or not spec.pending:
        return
    from dataclasses import dataclass as eager
    from dataclasses import fields

    pending, spec.pending = spec.pending, ()
    body = {k: v for k, v in spec.body.items() if k not in ("__dict__", "__weakref__")}
    copy = type(cls)(cls.__name__, cls.__bases__, body)
    copy.__qualname__ = cls.__qualname__
    made: type = eager(copy, **spec.options)
    if tuple(f.name for f in fields(made)) != spec.names:  # pragma: no cover - _fields reads as dataclasses do
        raise TypeError(f"{cls.__qualname__}: fields {spec.names} were taken, dataclasses finds {fields(made)}")
    for name in pending:
        if name in made.__dict__:
            type.__setattr__(cls, name, made.__dict__[name])
        else:
            type.__delattr__(cls, name)


def field_names(cls: type) -> tuple[str, ...]:
    """The names of the fields of a dataclass, in order, without making its methods."""
    spec = _SPECS.get(cls)
    if spec is not None:
        return spec.names
    from dataclasses import fields

    return tuple(f.name for f in fields(cls))


if TYPE_CHECKING or os.environ.get("MPTCPSPEC_EAGER_DATACLASSES"):  # the tests' reference: every class made at once
    from dataclasses import dataclass as dataclass
else:
    dataclass = lazy_dataclass
