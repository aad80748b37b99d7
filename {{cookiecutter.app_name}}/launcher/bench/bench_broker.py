"""What the identity broker costs: worker start-up, a token request, and the broker's memory.

Run as root (`make bench-broker`): it builds a launcher reading a policy in a temporary directory,
starts the project's managed-identity test server (plain HTTP, as the platform's) and measures, in
one run, interleaved so that machine noise hits both sides alike:
- `launcher -c pass` with the platform's identity variables (broker started) against without;
- from inside the worker, a token request through the broker against the same request sent
  straight to the platform's endpoint (median of 200 each, a new connection per request; the
  broker reuses the token within its lifetime, so all but its first are answered from its cache);
- the same through the broker while SLOW_CLIENTS connections that never finish their request
  are open (the starvation the broker's per-request deadline answers);
- the broker's resident memory while it serves.
Prints the figures; nothing is adjusted.
"""

import json
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAUNCHER_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(LAUNCHER_DIR.parent))  # the project root: its tests.azure_fakes
from tests.azure_fakes.managed_identity import ManagedIdentityEndpoint  # noqa: E402

from bench import interpreter  # noqa: E402  (beside this file: a python both accounts can run)

ACCOUNTS = ("launcherbench", "launcherbenchbroker")
CLIENT_ID = "be0c0000-0000-4000-8000-000000000001"
START_RUNS, TOKEN_RUNS = 30, 200
SLOW_CLIENTS, SLOW_RUNS = 300, 50

# Runs in the worker: the platform's endpoint and header come as arguments (a benchmark only).
TOKEN_TIMES = """
import http.client, json, os, socket, statistics, sys, time
from urllib.parse import urlsplit
def timed(url, header):
    target = urlsplit(url)
    start = time.perf_counter()
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
    query = f"?api-version=2019-08-01&resource=https://vault.azure.net&client_id={sys.argv[3]}"
    connection.request("GET", target.path + query, headers={"X-IDENTITY-HEADER": header})
    response = connection.getresponse()
    response.read()
    connection.close()
    assert response.status == 200, response.status
    return time.perf_counter() - start
brokered, direct = [], []
for run in range(int(sys.argv[4])):
    pair = [(brokered, os.environ["IDENTITY_ENDPOINT"], os.environ["IDENTITY_HEADER"]),
            (direct, sys.argv[1], sys.argv[2])]
    for times, url, header in pair if run % 2 else reversed(pair):
        times.append(timed(url, header))
crowd = [socket.create_connection((target.hostname, target.port))
         for target in [urlsplit(os.environ["IDENTITY_ENDPOINT"])] for _ in range(int(sys.argv[5]))]
for conn in crowd:
    conn.sendall(b"GET /msi/token?api-version=2019-08-01 HTTP/1.1\\r\\n")  # never finished
crowded = [timed(os.environ["IDENTITY_ENDPOINT"], os.environ["IDENTITY_HEADER"])
           for _ in range(int(sys.argv[6]))]
medians = {"brokered": statistics.median(brokered), "direct": statistics.median(direct),
           "crowded": statistics.median(crowded), "crowded_max": max(crowded)}
print(json.dumps(medians), flush=True)
sys.stdin.read()  # stay up while the benchmark reads the broker's memory
"""


def account(name: str) -> str:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            check=True,
        )
    return name


def wall_time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def resident_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(line.split()[1] for line in status if line.startswith("VmRSS:")))


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("bench-broker: run as root: the launcher drops root and starts the broker")
    worker, broker = (account(name) for name in ACCOUNTS)
    workdir = Path(tempfile.mkdtemp(prefix="launcher-bench-", dir="/tmp"))
    platform = ManagedIdentityEndpoint(None, CLIENT_ID)
    try:
        workdir.chmod(0o755)
        binary, policy = workdir / "launcher", workdir / "policy.conf"
        subprocess.run(
            ["make", "-s", "-C", str(LAUNCHER_DIR), f"OUT={binary}", f"POLICY_PATH={policy}"],
            check=True,
        )
        shutil.copyfile(LAUNCHER_DIR / "src" / "identity_broker.py", workdir / "identity_broker.py")
        (workdir / "identity_broker.py").chmod(0o644)
        policy.write_text(
            f"exec {interpreter()}\nuser {worker}\nbroker {broker}\naudit\n"
            "allow AZURE_CLIENT_ID\nset PATH=/usr/bin:/bin\n"
        )
        policy.chmod(0o644)
        platform.start()
        identity = {
            "IDENTITY_ENDPOINT": platform.endpoint,
            "IDENTITY_HEADER": platform.identity_header,
            "AZURE_CLIENT_ID": CLIENT_ID,
        }
        start_figures(binary, identity)
        token_figures(binary, identity, platform)
    finally:
        platform.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def start_figures(binary: Path, identity: dict[str, str]) -> None:
    argv = [str(binary), "-c", "pass"]
    for _ in range(3):  # warm the page cache for both
        wall_time(argv, {}), wall_time(argv, identity)
    alone: list[float] = []
    brokered: list[float] = []
    for run in range(START_RUNS):
        pair = [(alone, {}), (brokered, identity)]
        for times, env in pair if run % 2 else reversed(pair):
            times.append(wall_time(argv, env))
    a, b = statistics.median(alone), statistics.median(brokered)
    print(f"worker start, launcher alone:      median {a * 1000:.2f} ms over {START_RUNS} runs")
    print(f"worker start, launcher and broker: median {b * 1000:.2f} ms over {START_RUNS} runs")
    print(f"ratio {b / a:.2f}; the broker adds {(b - a) * 1000:.1f} ms (goal: under 60 ms)")


def token_figures(
    binary: Path, identity: dict[str, str], platform: ManagedIdentityEndpoint
) -> None:
    process = subprocess.Popen(
        [
            str(binary),
            "-c",
            TOKEN_TIMES,
            platform.endpoint,
            platform.identity_header,
            CLIENT_ID,
            str(TOKEN_RUNS),
            str(SLOW_CLIENTS),
            str(SLOW_RUNS),
        ],
        env=identity,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout and process.stdin and process.stderr
    line = process.stdout.readline()
    rss = resident_kib(broker_of(process.pid)) if line else 0
    process.stdin.close()
    process.wait(timeout=30)
    if not line:
        sys.exit(f"bench-broker: the worker failed: {process.stderr.read()[-500:]}")
    figures = json.loads(line)
    added = (figures["brokered"] - figures["direct"]) * 1000
    print(
        f"token, straight to the platform's endpoint: median {figures['direct'] * 1000:.2f} ms "
        f"over {TOKEN_RUNS}"
    )
    print(
        f"token, through the broker:                  median {figures['brokered'] * 1000:.2f} ms "
        f"over {TOKEN_RUNS}"
    )
    print(f"the broker adds {added:+.2f} ms a token (goal: under 2 ms)")
    print(
        f"token, through the broker with {SLOW_CLIENTS} slow connections open: median "
        f"{figures['crowded'] * 1000:.2f} ms, slowest {figures['crowded_max'] * 1000:.2f} ms "
        f"over {SLOW_RUNS} (goal: under 1000 ms)"
    )
    print(f"broker resident memory: {rss / 1024:.1f} MiB (goal: under 20 MB)")


def children(pid: int | str) -> list[str]:
    return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()


def broker_of(launcher_pid: int) -> int:
    """The process running identity_broker.py: a child of the launcher's supervisor (its child)."""
    for child in [c for supervisor in children(launcher_pid) for c in children(supervisor)]:
        if b"identity_broker.py" in Path(f"/proc/{child}/cmdline").read_bytes():
            return int(child)
    sys.exit("bench-broker: no broker below the launcher")


if __name__ == "__main__":
    main()
