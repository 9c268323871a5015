# SPDX-License-Identifier: LGPL-2.1-or-later
"""The installed package is the whole package."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_meson_installs_every_module_of_the_package():
    sources = {p.name for p in (ROOT / "python" / "bips").glob("*.py")}
    build = (ROOT / "python" / "meson.build").read_text()
    installed = set(re.findall(r"'bips/([A-Za-z0-9_]+\.py)'", build))
    assert sources, "no modules found"
    assert sources == installed, (
        f"python/meson.build installs {sorted(installed - sources)} that do not exist "
        f"and misses {sorted(sources - installed)}")
