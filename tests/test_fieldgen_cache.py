"""The compiled field getters are kept beside the bytecode: used when the source is the same, never
when it differs, and not written when bytecode is not (PYTHONDONTWRITEBYTECODE)."""

from __future__ import annotations

import sys
import zlib

import pytest

from mptcpspec.dissect import fieldgen


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(fieldgen, "__file__", str(tmp_path / "fieldgen.py"))
    return tmp_path / "__pycache__"


def test_kept_and_checked(cache_dir, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    one = fieldgen.compile_getters({"f": "def f(i):\n    return ['one']\n"}, {})
    assert one["f"](None) == ["one"]
    assert len(list(cache_dir.glob("fieldgetters-*.bin"))) == 1
    again = fieldgen.compile_getters({"f": "def f(i):\n    return ['one']\n"}, {})
    assert again["f"](None) == ["one"]
    # another source: the kept code is not taken for it
    two = fieldgen.compile_getters({"f": "def f(i):\n    return ['two']\n"}, {})
    assert two["f"](None) == ["two"]
    assert len(list(cache_dir.glob("fieldgetters-*.bin"))) == 2  # each source its own: both kept


def test_damaged_cache_is_ignored(cache_dir, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    cache_dir.mkdir()
    src = "def f(i):\n    return ['x']\n"
    name = f"fieldgetters-{zlib.crc32(src.encode()):08x}.{sys.implementation.cache_tag}.bin"
    (cache_dir / name).write_bytes(b"\x00garbage")
    got = fieldgen.compile_getters({"f": src}, {})
    assert got["f"](None) == ["x"]


def test_not_written_without_bytecode(cache_dir, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    fieldgen.compile_getters({"f": "def f(i):\n    return []\n"}, {})
    assert not cache_dir.exists()
