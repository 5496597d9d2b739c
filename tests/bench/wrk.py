"""Running wrk: a Lua script per scenario, results as JSON from the script's `done`, and wrk's own
CPU time from the kernel's accounting of the child (os.wait4)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = "wrk not found: install it with `apt-get install -y wrk`"

# Appended to every script: one machine-readable line with the counts and the percentiles (µs).
DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\"requests\":%d,\"duration_us\":%d,\"connect\":%d,\"read\":%d," ..
    "\"write\":%d,\"status\":%d,\"timeout\":%d,\"p50\":%.0f,\"p90\":%.0f,\"p99\":%.0f," ..
    "\"max\":%.0f,\"mean\":%.1f}\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""


def lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal of ASCII text is a valid Lua literal


def get_script(headers: dict[str, str]) -> str:
    lines = ['wrk.method = "GET"']
    lines += [f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()]
    return "\n".join(lines) + "\n"


def post_script(body: str, content_type: str) -> str:
    return (
        'wrk.method = "POST"\n'
        f'wrk.headers["Content-Type"] = {lua_string(content_type)}\n'
        f"wrk.body = {lua_string(body)}\n"
    )


def each_line_once(path: Path, request_lua: str) -> str:
    """Each request uses the next line of the file, never one used before: thread k of n (n is
    the script's argument) takes lines k, k+n, k+2n… `request_lua` is a Lua expression of
    `line` (past the end, "exhausted") giving the request."""
    return f"""
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  nthreads = tonumber(args[1])
end
local lines = nil
local index = 0
function request()
  if lines == nil then
    lines = {{}}
    local line_no = 0
    for line in io.lines({lua_string(str(path))}) do
      if line_no % nthreads == tid then table.insert(lines, line) end
      line_no = line_no + 1
    end
  end
  index = index + 1
  local line = lines[index] or "exhausted"
  return {request_lua}
end
"""


def refresh_script(token_file: Path) -> str:
    """Every request rotates a refresh token never presented before (past the end a dead
    token: a 401, counted as an error)."""
    return each_line_once(
        token_file,
        """wrk.format("POST", "/auth/refresh", {["Content-Type"] = "application/json"},
    '{"refresh_token":"' .. line .. '"}')""",
    )


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    errors: int  # connect/read/write/timeout
    non_2xx: int  # status >= 400
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    cpu_s: float  # wrk's own user+system CPU
    others_cores: float | None = None  # cores busy with work not the benchmark's, meanwhile
    server_cpu_s: float | None = None  # CPU of the servers under test during the run

    @property
    def server_us_per_request(self) -> float | None:
        """Server CPU per request: unlike req/s, barely moved by other work on the machine."""
        if self.server_cpu_s is None or not self.requests:
            return None
        return self.server_cpu_s / self.requests * 1e6

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def ok_rps(self) -> float:
        ok = self.requests - self.non_2xx - self.errors
        return max(0, ok) / self.duration_s if self.duration_s else 0.0

    @property
    def cpu_cores(self) -> float:
        return self.cpu_s / self.duration_s if self.duration_s else 0.0

    def faults(self) -> str:
        return (
            f"{self.non_2xx} status errors, {self.errors} socket errors"
            if self.non_2xx or self.errors
            else ""
        )


def available() -> bool:
    return shutil.which("wrk") is not None


def run(
    url: str,
    script: str,
    *,
    workdir: Path,
    duration_s: float,
    threads: int = 2,
    connections: int = 32,
    timeout_s: int = 10,
    script_args: tuple[str, ...] = (),
) -> WrkResult:
    """One wrk run; the script text gets the JSON `done` appended."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError(INSTALL_HINT)
    workdir.mkdir(parents=True, exist_ok=True)
    script_path = workdir / f"wrk-{os.getpid()}-{abs(hash((url, script))) % 10**8}.lua"
    script_path.write_text(script + DONE)
    seconds = max(1, round(duration_s))
    proc = subprocess.Popen(
        [
            binary,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds}s",
            f"--timeout={timeout_s}s",
            "-s",
            str(script_path),
            url,
            *(["--", *script_args] if script_args else []),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    output = proc.stdout.read()
    # Reap it ourselves: wait4 gives the child's own rusage (communicate() would discard it).
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stdout.close()
    line = next((x for x in output.splitlines() if x.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {output[-400:]}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    return WrkResult(
        requests=int(data["requests"]),
        duration_s=data["duration_us"] / 1e6,
        errors=int(data["connect"] + data["read"] + data["write"] + data["timeout"]),
        non_2xx=int(data["status"]),
        p50_ms=data["p50"] / 1000,
        p90_ms=data["p90"] / 1000,
        p99_ms=data["p99"] / 1000,
        max_ms=data["max"] / 1000,
        cpu_s=usage.ru_utime + usage.ru_stime,
    )
