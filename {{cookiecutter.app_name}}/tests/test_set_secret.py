"""`make secret-set`: the value goes to the Azure CLI on its standard input, never on a command
line, and a refused write names the role to ask for. A stand-in `az` records what it was given."""

import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
VALUE = "rotated-value-0b7c"


def fake_az(tmp_path: Path, stderr: str = "", status: int = 0) -> Path:
    az = tmp_path / "az"
    az.write_text(
        f"#!{sys.executable}\n"
        "import pathlib, sys\n"
        f"here = pathlib.Path({str(tmp_path)!r})\n"
        "(here / 'argv').write_text('\\n'.join(sys.argv[1:]))\n"
        "(here / 'stdin').write_text(open(sys.argv[sys.argv.index('--file') + 1]).read())\n"
        f"sys.stderr.write({stderr!r})\n"
        "print('https://kv.vault.azure.net/secrets/x/0123')\n"
        f"raise SystemExit({status})\n"
    )
    az.chmod(0o755)
    return az


def secret_set(az: Path, name: str, value: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "keyvault/set_secret.py", "--vault", "kv-app", "--name", name,
         "--az", str(az)],
        cwd=PROJECT, input=value, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_the_value_reaches_key_vault_on_stdin_never_on_a_command_line(tmp_path: Path) -> None:
    done = secret_set(fake_az(tmp_path), "orders-api-key", VALUE + "\n")
    assert done.returncode == 0, done.stderr
    argv = (tmp_path / "argv").read_text()
    assert VALUE not in argv and "--value" not in argv
    assert "--vault-name\nkv-app\n--name\norders-api-key\n--file\n/dev/stdin" in argv
    assert (tmp_path / "stdin").read_text() == VALUE  # echo's newline is not part of it
    assert VALUE not in done.stdout + done.stderr
    assert done.stdout.startswith("make secret-set: orders-api-key set in kv-app: https://")


def test_a_refused_write_names_the_role_to_ask_for(tmp_path: Path) -> None:
    az = fake_az(tmp_path, stderr="(Forbidden) Caller is not authorized.", status=1)
    done = secret_set(az, "orders-api-key", VALUE)
    assert done.returncode == 1
    assert "you need 'Key Vault Secrets Officer' on the vault" in done.stderr
    assert VALUE not in done.stderr


def test_a_bad_name_or_no_value_sets_nothing(tmp_path: Path) -> None:
    az = fake_az(tmp_path)
    assert "is not a Key Vault secret name" in secret_set(az, "orders_api_key", VALUE).stderr
    assert "no value for orders-api-key" in secret_set(az, "orders-api-key", "").stderr
    assert "name the secret: `make secret-set NAME=" in secret_set(az, "", VALUE).stderr
    assert not (tmp_path / "argv").exists()
