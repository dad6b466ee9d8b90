"""``import keyless``: a version, and the public functions and classes, loaded on first use."""

import subprocess
import sys
import tomllib
from importlib import import_module, metadata
from pathlib import Path

import pytest

import keyless

ROOT = Path(__file__).resolve().parent.parent


def test_version_is_the_project_version():
    with open(ROOT / "pyproject.toml", "rb") as file:
        assert keyless.__version__ == tomllib.load(file)["project"]["version"]


def test_version_falls_back_to_pyproject_when_keyless_is_not_installed(monkeypatch, tmp_path):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    assert keyless._version() == keyless.__version__
    monkeypatch.setattr(keyless, "__file__", str(tmp_path / "keyless" / "__init__.py"))
    assert keyless._version() == "0+unknown"  # neither installed nor beside its pyproject


def test_every_public_name_is_its_subpackage_object():
    assert {"encrypt_dataset", "create_cipher", "list_ciphers", "create_model", "list_models",
            "create_attack", "list_attacks", "CsprngSource", "SeedSource", "MasterKeySource",
            "InputError", "__version__"} <= set(keyless.__all__)  # fmt: skip
    module_of = {name: module for module, names in keyless._EXPORTS.items() for name in names}
    for name in keyless.__all__[1:]:
        assert getattr(keyless, name) is getattr(import_module(module_of[name]), name)
    assert set(keyless.__all__) <= set(dir(keyless))
    assert "pe" in keyless.list_ciphers() and "fastnet" in keyless.list_models()
    with pytest.raises(AttributeError, match="no attribute 'encrypt'"):
        keyless.encrypt  # noqa: B018


@pytest.mark.slow  # seconds: a child process or a real wait
def test_import_keyless_is_light():
    """Neither torch nor numba nor the web service nor matplotlib until a name needs them."""
    code = ("import sys, keyless; print(sorted(m for m in ('torch', 'numba', 'fastapi', "
            "'matplotlib') if m in sys.modules)); keyless.encrypt_dataset; "
            "print(sorted(m for m in ('fastapi', 'matplotlib') if m in sys.modules))")  # fmt: skip
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, cwd=ROOT).stdout.splitlines()  # fmt: skip
    assert lines == ["[]", "[]"]
