"""Rendering a page in headless Chromium and reading back what its self-check script recorded on <body>."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# No request may leave the page; this also keeps a test from reaching the network if the page's policy failed.
NO_NETWORK = "--host-resolver-rules=MAP * ~NOTFOUND"


def chromium_command(tmp_path: Path) -> list[str]:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing in CI; .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} not installed (apt-get install -y chromium); the browser check runs in CI")
    return [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", NO_NETWORK,
            f"--user-data-dir={tmp_path / 'chromium-profile'}"]


def render_in_chromium(page: Path, tmp_path: Path) -> tuple[dict[str, str], str]:
    """(the <body> attributes the page's self-check set once loaded, the DOM after scripts ran)."""
    command = [*chromium_command(tmp_path), "--virtual-time-budget=10000", "--dump-dom", page.resolve().as_uri()]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    body = re.search(r"<body([^>]*)>", dom)
    assert body, f"no <body> in Chromium's DOM dump: {dom[:300]!r}"
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body.group(1))), dom


def screenshot(page: Path, png: Path, tmp_path: Path, size: str = "1280,2000") -> None:
    command = [*chromium_command(tmp_path), "--hide-scrollbars", f"--window-size={size}", f"--screenshot={png}",
               page.resolve().as_uri()]
    subprocess.run(command, capture_output=True, timeout=120, check=True)
