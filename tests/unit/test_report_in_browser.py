"""Render a real report in headless Chromium: it loads without console errors, shows the key
elements, and a screenshot is saved. Skipped, with the reason, only where Chromium is absent."""

import shutil
import subprocess

import pytest

from crashsweep.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian package: chromium)")


def test_report_renders_in_chromium_without_errors(tmp_path):
    out = tmp_path / "report"
    main(["sweep", "--engine", "example-wal", "--option", "checkpoint_sectors=16", "--option", "log_sectors=16", "--option",
          "checkpoint_every_syncs=2", "--option", "bug=no-log-checksum", "--ops", "40", "--quiet", "--out", str(out)])
    url = (out / "index.html").as_uri()
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([CHROMIUM, *FLAGS, *profile, "--enable-logging=stderr", "--v=0", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0
    for marker in ('id="verdict"', 'id="timeline"', 'id="summary"', 'id="faults"', 'id="strategies"', "<rect",
                   "crashsweep replay", "minimized trace"):
        assert marker in dom.stdout
    console_errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line and "ERROR" in line.upper()]
    assert console_errors == []
    screenshot = out / "report.png"
    subprocess.run([CHROMIUM, *FLAGS, *profile, f"--screenshot={screenshot}", "--window-size=1200,1400", url],
                   capture_output=True, timeout=120)
    assert screenshot.exists() and screenshot.stat().st_size > 10_000
