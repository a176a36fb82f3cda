"""The project package. Importing it (every settings module, wsgi and asgi live here, so every
process does) installs the GDAL probe: see studymaster/geodjango.py (~0.35 s less start-up)."""

from studymaster import geodjango

geodjango.install()
