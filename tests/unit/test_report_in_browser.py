"""Render a real report in headless Chromium: it loads without console errors, shows the key
elements, and a screenshot is saved. Skipped, with the reason, only where Chromium is absent."""

import os
import re
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
                   "crashsweep replay", "crashsweep explain", "minimized trace", 'id="class-1"', "Why",
                   "to be atomic (atomicity)", 'href="#point-', 'href="#class-1"', "wal_store.py:"):
        assert marker in dom.stdout
    html = (out / "index.html").read_text()
    assert "{'" not in html and "[[" not in html and "None" not in html        # no Python reprs
    assert 'name="viewport"' in html                                        # readable on a phone:
    assert html.count("<table") == html.count('<div class="scroll"><table')  # every table scrolls sideways
    console_errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line and "ERROR" in line.upper()]
    assert console_errors == []
    artifacts = os.environ.get("CRASHSWEEP_ARTIFACTS") or str(out)     # .ci/run keeps them
    os.makedirs(artifacts, exist_ok=True)
    for name, size in (("desktop", "1200,1600"), ("phone", "390,2400")):
        screenshot = os.path.join(artifacts, f"report-{name}.png")
        subprocess.run([CHROMIUM, *FLAGS, *profile, f"--screenshot={screenshot}", f"--window-size={size}", url],
                       capture_output=True, timeout=120)
        assert os.path.exists(screenshot) and os.path.getsize(screenshot) > 10_000


def test_report_counts_agree_between_header_legend_and_tables(tmp_path):
    out = tmp_path / "report"
    main(["sweep", "--engine", "example-wal", "--option", "bug=no-log-checksum", "--quiet", "--no-corpus",
          "--minimize", "0", "--out", str(out)])
    html = (out / "index.html").read_text()
    violating = int(re.search(r"([\d,]+) violating state\(s\)", html).group(1).replace(",", ""))
    legend = {name: int(count.replace(",", "")) for name, count in
              re.findall(r"violation: (lost or wrong data|recovery error, hang or exhausted memory) \(([\d,]+)\)",
                         html)}
    assert len(legend) == 2 and sum(legend.values()) == violating > 0
