"""numba's on-disk cache, made to notice the other files a module's kernels depend on.

numba keys a cached function on the stamp of the one file that defines it
(``numba.core.caching._SourceFileBackedLocatorMixin.get_source_stamp``). A
kernel that calls a jitted function of another module, or reads its constants,
has them compiled in; when only that other file changes, numba loads the old
machine code from the cache without a word. For ``engine/native.py`` that means
an updated output guard in ``engine/rt.py`` would not run until the cache is
deleted by hand: a safety fix silently absent after an upgrade.

``drop_stale(probe, depends_on)`` keeps a stamp of the dependencies' contents in
the module's cache folder and removes the module's cached kernels when it no
longer matches, before any of them is loaded. Call it at the top of the module,
before its first ``@njit(cache=True)`` or ``@cfunc(cache=True)`` compiles.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Iterable
from pathlib import Path

from numba.core.caching import FunctionCache

__all__ = ["dependency_digest", "drop_stale"]


def dependency_digest(depends_on: Iterable[str | Path]) -> str:
    """A short digest of the named files' contents (names included), order-free."""
    h = hashlib.sha256()
    for path in sorted(Path(p).resolve() for p in depends_on):
        h.update(path.name.encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def drop_stale(probe: Callable[..., object], depends_on: Iterable[str | Path]) -> bool:
    """Remove the cached kernels of ``probe``'s module when a dependency changed.

    Args:
        probe: any plain Python function defined in the module whose cache is
            checked; it locates that module's cache folder exactly as numba does
            (in-tree ``__pycache__``, ``NUMBA_CACHE_DIR`` or the user-wide folder).
        depends_on: the source files whose jitted functions or constants the
            module's kernels compile in.

    Returns:
        True when cached kernels were removed (the next call compiles afresh).
        A cache folder that cannot be read or written is left to numba, which
        then compiles without caching; nothing here raises for it.
    """
    try:
        locator = FunctionCache._impl_class(probe).locator
        cache_dir = Path(locator.get_cache_path())
    except Exception:  # no locator (frozen or interactive code): numba caches nothing
        return False
    stem = Path(inspect.getfile(probe)).stem
    stamp = cache_dir / f"{stem}.deps-{dependency_digest(depends_on)}"
    if stamp.exists():
        return False
    removed = False
    try:
        for old in [*cache_dir.glob(f"{stem}.*.nbi"), *cache_dir.glob(f"{stem}.*.nbc")]:
            old.unlink(missing_ok=True)
            removed = True
        for old in cache_dir.glob(f"{stem}.deps-*"):
            old.unlink(missing_ok=True)
        cache_dir.mkdir(parents=True, exist_ok=True)
        stamp.touch()
    except OSError:
        pass
    return removed
