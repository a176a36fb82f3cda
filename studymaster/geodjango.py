"""GeoDjango's search for the GDAL library, answered at once where GDAL is certainly not installed.

django_mongodb_backend imports GeoDjango's GDAL binding three times at start-up (the failed
import is not cached), and each time ``django.contrib.gis.gdal.libgdal`` asks
``ctypes.util.find_library`` for 12 library names; each miss runs ``ldconfig``, ``gcc`` and
``ld``. Where GDAL is absent (here, and wherever GeoDjango is not used) that costs ~0.1 s a
time, ~0.35 s of every process, and ends in ImproperlyConfigured, which the backend catches.

:class:`GdalProbe` answers that import with the same ImproperlyConfigured, without the search,
when no file named like a GDAL library is anywhere those three tools look (the dynamic linker's
cache, LD_LIBRARY_PATH, LIBRARY_PATH and the standard library folders): one ``ldconfig -p`` and
a few folder listings, ~3 ms. Anywhere else it stands aside and the import runs as it always
did: with GDAL_LIBRARY_PATH set, off Linux, or when any file there might be GDAL. So GeoDjango
works exactly as before wherever GDAL can be found.
"""

from __future__ import annotations

import importlib.abc
import os
import subprocess
import sys
import sysconfig

GDAL_MODULE = "django.contrib.gis.gdal.libgdal"
# The names django.contrib.gis.gdal.libgdal tries on POSIX (Django 5.2), for the same message.
GDAL_NAMES = ["gdal", "GDAL", *(f"gdal3.{minor}.0" for minor in range(10, 0, -1))]
LIBRARY_PREFIXES = ("libgdal", "libGDAL")
LDCONFIG = "/sbin/ldconfig"
STANDARD_FOLDERS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib", "/usr/local/lib64")


def library_folders() -> list[str]:
    """Where gcc and ld look for a library besides the linker's cache: the environment's
    folders, then the standard ones with and without the multiarch triplet."""
    folders = []
    for variable in ("LD_LIBRARY_PATH", "LIBRARY_PATH"):
        folders += [folder for folder in os.environ.get(variable, "").split(os.pathsep) if folder]
    triplet = sysconfig.get_config_var("MULTIARCH") or ""
    for folder in STANDARD_FOLDERS:
        folders += [folder, f"{folder}/{triplet}"] if triplet else [folder]
    if triplet:
        folders += [f"/usr/{triplet}/lib", f"/usr/{triplet}/lib64"]
    return folders


def gdal_certainly_absent() -> bool:
    """True only when no GDAL library can be where find_library would find one; any doubt is False."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        if os.path.exists(LDCONFIG):  # where ctypes.util runs it; without it, ctypes finds nothing there
            cache = subprocess.run(
                [LDCONFIG, "-p"], capture_output=True, text=True, timeout=5, env={"LC_ALL": "C", **os.environ}
            )
            if cache.returncode != 0 or any(prefix in cache.stdout for prefix in LIBRARY_PREFIXES):
                return False
        for folder in library_folders():
            try:
                names = os.listdir(folder)
            except OSError:
                continue  # a folder that is not there holds no library
            if any(name.startswith(LIBRARY_PREFIXES) for name in names):
                return False
    except Exception:  # ldconfig missing, a timeout, anything: let the real search decide
        return False
    return True


class GdalProbe(importlib.abc.MetaPathFinder):
    """An import hook (first on ``sys.meta_path``) for GeoDjango's GDAL binding only."""

    def __init__(self) -> None:
        self.absent: bool | None = None  # decided once, at the first import

    def find_spec(self, fullname, path=None, target=None):
        if fullname != GDAL_MODULE:
            return None
        if self.absent is None:
            self.absent = not _gdal_library_path_set() and gdal_certainly_absent()
        if self.absent:
            from django.core.exceptions import ImproperlyConfigured

            tried = '", "'.join(GDAL_NAMES)
            raise ImproperlyConfigured(
                f'Could not find the GDAL library (tried "{tried}"). Is GDAL installed? '
                "If it is, try setting GDAL_LIBRARY_PATH in your settings."
            )
        return None


def _gdal_library_path_set() -> bool:
    try:
        from django.conf import settings

        return bool(getattr(settings, "GDAL_LIBRARY_PATH", None))
    except Exception:  # settings not configured: libgdal would find no path there either
        return False


def install() -> None:
    """Put one GdalProbe first on ``sys.meta_path`` (again: no second one)."""
    if not any(isinstance(finder, GdalProbe) for finder in sys.meta_path):
        sys.meta_path.insert(0, GdalProbe())
