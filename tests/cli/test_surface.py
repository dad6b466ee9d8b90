"""The command line's surface: fast help, options generated from the library, one exit status
per meaning."""

import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keyless.cli import main
from keyless.errors import ExitStatus

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ["encrypt", "decrypt", "fold", "keygen", "train", "evaluate", "report", "reproduce",
            "serve", "classify", "attack", "demo"]  # fmt: skip


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_every_help_answers_without_loading_torch():
    """What makes ``--help`` slow is torch (over a second to import): no help may load it."""
    script = (
        "import sys\nfrom keyless.cli import main\n"
        f"for args in [[]] + [[c] for c in {COMMANDS!r}]:\n"
        "    try:\n        main(args + ['--help'])\n    except SystemExit as exit:\n"
        "        assert exit.code == 0, args\n"
        "print('torch' in sys.modules, 'fastapi' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=ROOT, check=True)  # fmt: skip
    assert done.stdout.splitlines()[-1] == "False False", done.stdout[-500:]
    for command in COMMANDS:  # and --help lists every command
        assert f"  {command} " in done.stdout


def test_the_registries_names_are_all_in_the_help():
    """Names in help texts are written out (listing them from the registries would load
    torch): each registered one must be there."""
    from keyless.attacks import list_attacks
    from keyless.models import ADAPTERS, STEMS, list_models
    from keyless.train import RECIPES

    def helps(command):
        return " ".join(p.help or "" for p in main.get_command(None, command).params)

    for name in [*list_models(), *STEMS, *ADAPTERS, *RECIPES]:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", helps("train")), name
    for name in list_attacks():
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", helps("attack")), name


def test_every_cipher_field_is_an_option_and_builds_that_cipher():
    """The cipher options are the ciphers' own fields: each one, given on the command line,
    reaches the cipher (keygen writes a common key file whose cipher settings we read back)."""
    from keyless.cipher import CIPHERS

    helps = " ".join(invoke("encrypt", "--help").stdout.split())
    for name in CIPHERS.names():
        for field in dataclasses.fields(CIPHERS.get(name)):
            assert f"--{field.name.replace('_', '-')}" in helps, (name, field.name)
            assert f"{name}" in helps


def test_an_option_of_another_cipher_is_a_usage_error(tmp_path):
    result = invoke("keygen", "--kind", "common", "--cipher", "etc", "--np-mode", "coin",
                    "--out", tmp_path / "k")  # fmt: skip
    assert result.exit_code == ExitStatus.USAGE
    assert "--np-mode: not an option of cipher 'etc'" in result.stderr
    assert not (tmp_path / "k").exists()


@pytest.mark.parametrize("size", ["32", "32x32", "32X32"])
def test_one_form_of_image_size(tmp_path, size):
    png = tmp_path / "in" / "a.png"
    png.parent.mkdir()
    Image.fromarray(np.zeros((40, 50, 3), np.uint8)).save(png)
    result = invoke("encrypt", png.parent, "--out", tmp_path / "out", "--size", size)
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out" / "a.png").size == (32, 32)


def _silent_server():
    """A socket that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    return server


def _status_of(case, tmp_path):
    png = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(png)
    if case is ExitStatus.OK:
        return invoke("fold", png, "--out", tmp_path / "out").exit_code
    if case is ExitStatus.FAILED:  # the output folder cannot be made: a file is in the way
        (tmp_path / "file").write_text("x")
        return invoke("fold", png, "--out", tmp_path / "file" / "out").exit_code
    if case is ExitStatus.USAGE:
        return invoke("fold", png, "--out", tmp_path / "o", "--no-such-option").exit_code
    if case is ExitStatus.BAD_INPUT:
        return invoke("fold", tmp_path / "missing.png", "--out", tmp_path / "o").exit_code
    if case is ExitStatus.BAD_KEY:
        (tmp_path / "master.key").write_bytes(b"not a key")
        return invoke("decrypt", png, "--out", tmp_path / "o", "--keys", "master-key",
                      "--key-file", tmp_path / "master.key").exit_code  # fmt: skip
    if case is ExitStatus.UNKNOWN_NAME:
        return invoke("train", "--recipe", "no-such-recipe", "--out", tmp_path / "r").exit_code
    if case is ExitStatus.SERVICE:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]  # closed again: nobody listens there
        return invoke("classify", png, "--server", f"http://127.0.0.1:{port}").exit_code
    if case is ExitStatus.INTERRUPTED:  # kill (SIGTERM) while waiting for a silent service
        with _silent_server() as server:
            url = f"http://127.0.0.1:{server.getsockname()[1]}"
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            command = [sys.executable, "-m", "keyless.cli", "classify", png, "--server", url]
            process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
            server.settimeout(60)
            connection, _ = server.accept()  # the command has asked and waits for an answer
            with connection:
                process.send_signal(signal.SIGTERM)
                _, err = process.communicate(timeout=30)
            assert b"keyless: error: interrupted" in err and b"Traceback" not in err, err
            return process.returncode
    raise AssertionError(f"no case for {case!r}")


@pytest.mark.parametrize(
    "status",
    [
        pytest.param(s, marks=pytest.mark.slow) if s == ExitStatus.INTERRUPTED else s
        for s in ExitStatus
    ],
    ids=lambda s: s.name,
)  # INTERRUPTED waits seconds for a child process
def test_each_exit_status_has_its_meaning(tmp_path, status):
    assert _status_of(status, tmp_path) == status


def test_the_docs_table_of_exit_statuses_is_the_enum():
    text = (ROOT / "docs" / "cli.md").read_text().split("## Exit statuses")[1].split("\n## ")[0]
    rows = dict(re.findall(r"^\| (\d+) \| `(\w+)`", text, re.M))
    assert {int(k): v for k, v in rows.items()} == {s.value: s.name for s in ExitStatus}
