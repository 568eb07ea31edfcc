"""The reference cache: round trip, keyed by the file as it is now, bounded, never half-written."""

from __future__ import annotations

import os

import numpy as np

from sizewise.core.quant.quality import ReferenceRows
from sizewise.core.quant.reference_cache import ReferenceCache, ReferenceKey


def _rows(n=10, k=8, seed=0):
    rng = np.random.default_rng(seed)
    return ReferenceRows(
        rng.integers(0, 1000, (n, k)).astype(np.int32),
        rng.standard_normal((n, k)).astype(np.float32),
        rng.standard_normal(n).astype(np.float32),
        rng.integers(0, 1000, (n, 2 * k)).astype(np.int32),
        rng.standard_normal((n, 2 * k)).astype(np.float32),
        rng.random(n),
    )


def _key(path, **kw):
    args = {"text_sha256": "abc", "ctx": 512, "chunks": 4, "k": 8, **kw}
    return ReferenceKey.for_file(path, **args)


def test_round_trip(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x" * 100)
    cache = ReferenceCache(tmp_path / "cache")
    rows = _rows()
    cache.store(_key(model), rows, "tok-sha")
    got = cache.load(_key(model))
    assert got is not None and got.tokens_sha256 == "tok-sha"
    for name in ReferenceRows.__dataclass_fields__:
        assert np.array_equal(getattr(got.rows, name), getattr(rows, name)), name
    assert not list((tmp_path / "cache").glob(".*.tmp"))


def test_a_changed_file_or_other_settings_miss(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x" * 100)
    cache = ReferenceCache(tmp_path / "cache")
    cache.store(_key(model), _rows(), "s")
    assert cache.load(_key(model, ctx=256)) is None
    assert cache.load(_key(model, text_sha256="other")) is None
    os.utime(model, ns=(1, 1))
    assert cache.load(_key(model)) is None


def test_cache_is_bounded_least_recently_used_first(tmp_path):
    cache = ReferenceCache(tmp_path / "cache", max_bytes=1)  # room for the newest entry only
    models = []
    for i in range(3):
        m = tmp_path / f"m{i}.gguf"
        m.write_bytes(b"x" * (i + 1))
        models.append(m)
        cache.store(_key(m), _rows(seed=i), "s")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    assert cache.load(_key(models[2])) is not None
    assert cache.load(_key(models[0])) is None


def test_damaged_entry_reads_as_missing(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"x")
    cache = ReferenceCache(tmp_path / "cache")
    path = cache.store(_key(model), _rows(), "s")
    path.write_bytes(b"not a zip")
    assert cache.load(_key(model)) is None
