"""Images run with the host's python3 (agnhost, python) pick one the pod's user can run: a virtualenv first on PATH
whose python3 links into root's home is passed over for the system one."""

from __future__ import annotations

import os
import sys

import pytest

from kubesvc.dataplane.kubelet.images import python3


def test_a_venv_python_nobody_can_run_is_passed_over() -> None:
    """The images' python3 is looked up on the pod's PATH as the kubelet filters it for the pod's user."""
    from kubesvc.dataplane.kubelet.identity import Identity, container_path

    venv_bin = os.path.join(sys.prefix, "bin")
    real = os.path.realpath(os.path.join(venv_bin, "python3"))
    if not real.startswith("/root/"):
        pytest.skip("this venv's python3 is not under root's home")
    if not os.path.exists("/usr/bin/python3"):
        pytest.skip("no system python3")
    nobody = Identity(65534, 65534, (), switch=True)
    assert python3({"PATH": container_path(f"{venv_bin}:/usr/bin", nobody)}) == "/usr/bin/python3"
    assert python3({"PATH": venv_bin}) == os.path.join(venv_bin, "python3")  # root's own PATH is left as it is


def test_a_venv_bin_nobody_cannot_use_leaves_the_pods_path() -> None:
    """`make test` puts .venv/bin first on PATH; a pod running as nobody must find the system python3, not the venv's
    link into root's home (the plugin's `python3 -m http.server` pods never became Ready before)."""
    from kubesvc.dataplane.kubelet.identity import Identity, container_path

    venv_bin = os.path.join(sys.prefix, "bin")
    real = os.path.realpath(os.path.join(venv_bin, "python3"))
    if not real.startswith("/root/"):
        pytest.skip("this venv's python3 is not under root's home")
    nobody = Identity(65534, 65534, (), switch=True)
    path = container_path(f"{venv_bin}:/usr/bin", nobody).split(":")
    assert venv_bin not in path and "/usr/bin" in path
    root = Identity(0, 0, (), switch=False)
    assert container_path(f"{venv_bin}:/usr/bin", root).split(":")[0] == venv_bin
