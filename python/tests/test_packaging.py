"""`pip install ./python` with no package index, as python/README.md says:
a venv over Debian 12's system packages (grpcio, protobuf, wheel), pip
without build isolation. The install goes into a temporary venv, from a copy
of python/ (an in-tree build would write build/ and *.egg-info into it), and
the installed package is imported from outside the source tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from importlib.util import find_spec
from pathlib import Path

from tests.support.requirements import missing

PYTHON_DIR = Path(__file__).resolve().parents[1]

#: What pip needs besides the sources: python3-venv (ensurepip), python3-wheel
#: (setuptools' bdist_wheel), python3-grpcio and python3-protobuf (dependencies).
_NEEDED = {
    "ensurepip": "python3-venv",
    "wheel": "python3-wheel",
    "grpc": "python3-grpcio",
    "google.protobuf": "python3-protobuf",
}


def _run(*command: str | Path, cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        output = result.stdout + result.stderr
        raise AssertionError(f"{command} exited {result.returncode}:\n{output}")
    return result.stdout


class OfflineInstallTest(unittest.TestCase):
    def setUp(self) -> None:
        absent = [package for module, package in _NEEDED.items() if find_spec(module) is None]
        if absent:
            missing("pip install ./python", f"apt-get install {' '.join(absent)}")
        self.work = Path(tempfile.mkdtemp(prefix="runstore-py-install-"))
        self.addCleanup(shutil.rmtree, self.work, ignore_errors=True)
        # No configured index or find-links: only what is on the machine.
        self.env = {
            key: value for key, value in os.environ.items() if not key.startswith("PIP_")
        }
        self.env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")

    def test_installs_without_an_index_and_imports(self) -> None:
        source = self.work / "python"
        shutil.copytree(PYTHON_DIR, source, ignore=shutil.ignore_patterns("__pycache__", "tests"))
        venv = self.work / "venv"
        python = sys.executable
        _run(python, "-m", "venv", "--system-site-packages", venv, cwd=self.work, env=self.env)
        pip = venv / "bin" / "pip"
        install = [pip, "install", "--no-build-isolation", "--no-index", "./python"]
        _run(*install, cwd=self.work, env=self.env)

        probe = (
            "import importlib.metadata as m, runstore_client as r;"
            "print(r.__file__);"
            "print(r.GrpcRunStore.__name__);"
            "d = m.distribution('runstore-client');"
            "print(d.metadata['License']);"
            "print(sorted(str(f) for f in d.files if f.name in ('LICENSE', 'py.typed')))"
        )
        lines = _run(venv / "bin" / "python", "-c", probe, cwd=self.work, env=self.env).splitlines()

        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        site_packages = venv / "lib" / version / "site-packages"
        self.assertEqual(lines[0], str(site_packages / "runstore_client" / "__init__.py"))
        self.assertEqual(lines[1], "GrpcRunStore")
        self.assertEqual(lines[2], "Apache-2.0")
        # setuptools 66 (Debian 12) writes dist-info/LICENSE; newer ones
        # (PEP 639) dist-info/licenses/LICENSE.
        self.assertIn(
            lines[3],
            [
                f"['runstore_client-0.1.0.dist-info/{license}', 'runstore_client/py.typed']"
                for license in ("LICENSE", "licenses/LICENSE")
            ],
        )


if __name__ == "__main__":
    unittest.main()
