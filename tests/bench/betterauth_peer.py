"""9. The system the platform replaces: Better Auth (Node) with its JWT plugin, side by side.

tests/bench/peer_betterauth/server.mjs, one Node process from its own node_modules (`npm ci`
from the pinned package-lock.json, reinstalled when the lock changes), on a fresh PostgreSQL
database; ours is an auth service (PostgreSQL + Redis) and a todo service started for this step.
Every row alternates the two sides run by run (ours, peer, peer, ours, …) with the same wrk
threads, connections and duration, and is judged on the median of the rounds' ours ÷ peer.
When Node or npm is missing, or `npm ci` fails (offline), the rows say so and are not judged.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from auth_service.config import Settings
from auth_service.passwords.hashing import PasswordHashing
from tests.bench import micro, rows, wrk
from tests.bench.measure import LOGIN_CONNECTIONS, Bench, cpu_of, errors_of
from tests.bench.procs import PASSWORD, Account, Service, login, register, seed_tasks
from tests.bench.stack import (
    TASKS_PER_USER,
    check_list,
    create_sessions,
    metric_samples,
    wait_hash_queue_empty,
)
from tests.infra import REDIS_URL

PEER_DIR = Path(__file__).resolve().parent / "peer_betterauth"
# Where Better Auth's Node build of its password hashing keeps its scrypt parameters.
SCRYPT_SOURCE = "node_modules/@better-auth/utils/dist/password.node.mjs"
NODE_MAJOR = 20
INSTALL_HINT = (
    f"Node.js ≥ {NODE_MAJOR} and npm are needed for the Better Auth peer: install them (e.g. "
    "from https://nodejs.org or NodeSource's Debian packages), then `make bench` runs "
    "`npm ci` in tests/bench/peer_betterauth (the npm registry must be reachable once)"
)
INSTALL_TIMEOUT_S = 600
TARGET = 4.0  # ours ÷ peer, every row (issue 26)
# Sign-in runs are longer than the others: at 64 connections the peer's first answers come
# seconds into a run (its hash queue), and a few seconds hold too few sign-ins to judge.
SIGN_IN_SECONDS = 10.0
ROWS = [
    rows.BA_SIGNIN,
    rows.BA_SIGNIN_MATCHED,
    rows.BA_TOKEN,
    rows.BA_READ_SHIPPED,
    rows.BA_READ_LEAN,
    rows.BA_VERIFY_REPEAT,
    rows.BA_VERIFY_FIRST,
]


NOTES = """\
- The Better Auth peer is `tests/bench/peer_betterauth/server.mjs`: Better Auth (versions pinned
  by its package-lock.json, `npm ci` at bench time) with email and password and its `jwt` plugin
  at their defaults (scrypt N=2^14 r=16 p=1 from its source, EdDSA JWTs, session cookies read
  from PostgreSQL on every getSession: no cookie cache), Kysely adapter on a `pg` Pool (10
  connections, its default), its tables made by its own `getMigrations`, on Node's `http` via
  `toNodeHandler`; one process (libuv's 4 threads hash). Its rate limiter is off (64 connections
  signing in as one user would be refused) and so is telemetry. Ours beside it: an auth service
  (PostgreSQL + Redis, `AUTH_HASH_QUEUE=64`) and a todo service of the step's own. Each row
  alternates the sides run by run (a warm-up of each, then ours-peer, peer-ours, …) with the
  same wrk threads, connections and duration, and judges the median of the rounds' ours ÷ peer.
  After a sign-in run, requests wrk abandoned are drained (our hash queue empty, the peer's
  process idle) before the next. "server CPU" is each side's process tree (PostgreSQL and Redis,
  which both use, not counted). The read rows: ours lists 20 tasks with the total; the peer
  reads one row (the caller's newest task), less work on its side. The verification rows are
  in-process CPU time on both sides: a Node script (`micro.mjs`) runs `jose`'s jwtVerify with
  createRemoteJWKSet on Better Auth's own tokens, ours runs TokenVerifier as the table's
  micro-benchmarks above do. Matched cost: our Argon2id memory raised (t=2 p=1 kept) until one
  verify costs the CPU one of its scrypt verifies costs, on an auth service of its own.
"""


class PeerUnavailable(Exception):
    """Node or its packages cannot be had here: the rows are skipped, saying how to fix it."""


# --- pure parsing (tests/bench/test_betterauth_peer.py) ---------------------------------------


def node_major(version: str) -> int | None:
    """20 from `node --version`'s "v20.20.2"; None when it is not a version."""
    match = re.fullmatch(r"v(\d+)\.\d+\.\d+\S*", version.strip())
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class ScryptParameters:
    n: int
    r: int
    p: int
    key_length: int

    @property
    def memory_mib(self) -> float:
        return 128 * self.n * self.r / 2**20

    def describe(self) -> str:
        log2 = self.n.bit_length() - 1
        n = f"2^{log2}" if self.n == 2**log2 else str(self.n)
        return f"scrypt N={n} r={self.r} p={self.p} ({self.memory_mib:.0f} MiB)"


def scrypt_parameters(source: str) -> ScryptParameters:
    """The `const config = {N, r, p, dkLen}` of @better-auth/utils' Node password module: the
    parameters read from the code that runs, not from its documentation."""
    block = re.search(r"const config\s*=\s*\{([^}]*)\}", source)
    if block is None:
        raise ValueError("no `const config = {…}` in the scrypt source")
    fields = dict(re.findall(r"(\w+)\s*:\s*(\d+)", block.group(1)))
    try:
        return ScryptParameters(
            int(fields["N"]), int(fields["r"]), int(fields["p"]), int(fields["dkLen"])
        )
    except KeyError as missing:
        raise ValueError(f"scrypt config without {missing}") from None


def matched_memory_kib(memory_kib: int, ours_s: float, peer_s: float) -> int:
    """The Argon2 memory (KiB, whole MiB) at which one verify should cost `peer_s`, from one
    that cost `ours_s` at `memory_kib` (time grows about linearly with memory, t fixed)."""
    return max(1024, round(memory_kib * peer_s / ours_s / 1024) * 1024)


def session_cookie(set_cookie: str) -> str:
    """`better-auth.session_token=…` from a Set-Cookie header, for the Cookie header."""
    match = re.search(r"(better-auth\.session_token=[^;]+)", set_cookie)
    if match is None:
        raise ValueError(f"no Better Auth session cookie in {set_cookie[:120]!r}")
    return match.group(1)


# --- the Node side ----------------------------------------------------------------------------


def ensure_installed() -> str:
    """The node binary, with the peer's node_modules from `npm ci` (run again when
    package-lock.json changes); PeerUnavailable when Node, npm or the packages are missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise PeerUnavailable(f"{'node' if node is None else 'npm'} not found. {INSTALL_HINT}")
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout
    major = node_major(version)
    if major is None or major < NODE_MAJOR:
        raise PeerUnavailable(f"node {version.strip() or '?'} is too old. {INSTALL_HINT}")
    lock = PEER_DIR / "package-lock.json"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    stamp = PEER_DIR / "node_modules" / ".bench-lock-sha256"
    if stamp.exists() and stamp.read_text().strip() == digest:
        return node
    print(f"[bench] npm ci in {PEER_DIR} …", flush=True)
    try:
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"],
            cwd=PEER_DIR,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PeerUnavailable(f"npm ci took over {INSTALL_TIMEOUT_S} s. {INSTALL_HINT}") from None
    if installed.returncode != 0:
        tail = " ".join(installed.stderr.split()[-40:])
        raise PeerUnavailable(f"npm ci failed ({tail}). {INSTALL_HINT}")
    stamp.write_text(digest + "\n")
    return node


def run_node(node: str, *args: str, timeout: float = 300) -> dict[str, float]:
    """micro.mjs's one line of JSON."""
    done = subprocess.run(
        [node, "micro.mjs", *args],
        cwd=PEER_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"micro.mjs {args[0]} failed: {done.stderr[-400:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@dataclass
class PeerUser:
    cookie: str  # the Cookie header of a signed-in session
    email: str


def start_peer(bench: Bench, node: str) -> Service:
    """server.mjs on a fresh database; `peer` makes tests/infra.py set PEER_PORT."""
    url = bench.resources.database("betterauth").replace("postgresql+asyncpg://", "postgresql://")
    service = Service("peer", {"PEER_DATABASE_URL": url}, bench.workdir / "betterauth")
    service.name = "betterauth"
    service.cwd = PEER_DIR
    service.argv = [node, "server.mjs"]
    return bench.resources.start(service)


def prepare_peer(peer: Service) -> PeerUser:
    """A user signed up and in, with TASKS_PER_USER tasks; the two reads checked, the shipped
    one for the JWT its getSession signs and the lean one for none."""
    email = f"peer-{time.monotonic_ns()}@example.com"
    with httpx.Client(base_url=peer.url, timeout=30) as client:
        signed_up = client.post(
            "/api/auth/sign-up/email", json={"email": email, "password": PASSWORD, "name": "b"}
        )
        if signed_up.status_code != 200:
            raise RuntimeError(f"peer sign-up: {signed_up.status_code} {signed_up.text[:200]}")
        # As wrk signs in: no cookie (with one, Better Auth asks for an Origin header).
        client.cookies.clear()
        signed_in = client.post(
            "/api/auth/sign-in/email", json={"email": email, "password": PASSWORD}
        )
        if signed_in.status_code != 200:
            raise RuntimeError(f"peer sign-in: {signed_in.status_code} {signed_in.text[:200]}")
        cookie = session_cookie(signed_in.headers.get("set-cookie", ""))
        headers = {"Cookie": cookie}
        client.cookies.clear()  # every request below carries the one session explicitly
        for number in range(TASKS_PER_USER):
            created = client.post(
                "/api/lean/task",
                json={"title": f"task {number}", "description": "a task of the benchmark"},
                headers=headers,
            )
            if created.status_code != 201:
                raise RuntimeError(f"peer task: {created.status_code} {created.text[:200]}")
        for path, signs in (("/api/shipped/task", True), ("/api/lean/task", False)):
            read = client.get(path, headers=headers)
            if read.status_code != 200 or ("set-auth-jwt" in read.headers) != signs:
                raise RuntimeError(f"peer {path}: {read.status_code} {dict(read.headers)}")
        token = client.get("/api/auth/token", headers=headers)
        if token.status_code != 200 or "token" not in token.json():
            raise RuntimeError(f"peer token: {token.status_code} {token.text[:200]}")
    return PeerUser(cookie, email)


# --- ours -------------------------------------------------------------------------------------


@dataclass
class Ours:
    auth: Service
    todo: Service | None
    database: str
    prefix: str
    account: Account


def start_ours(bench: Bench, label: str, *, with_todo: bool, argon2_kib: int | None = None) -> Ours:
    """Our auth service as the platform runs it (PostgreSQL + Redis, 64 logins admitted), and
    when asked the todo service with TASKS_PER_USER tasks of the account."""
    resources = bench.resources
    database, prefix = resources.database(label), resources.redis_prefix(label)
    env = {
        "AUTH_DATABASE_URL": database,
        "AUTH_REDIS_URL": REDIS_URL,
        "AUTH_REDIS_PREFIX": prefix,
        "AUTH_HASH_QUEUE": str(LOGIN_CONNECTIONS),
    }
    if argon2_kib is not None:
        env["AUTH_ARGON2_MEMORY_KIB"] = str(argon2_kib)
    auth = resources.auth(f"auth-{label}", env)
    account = register(auth.url, label)
    todo = None
    if with_todo:
        todo_db = resources.database(f"{label}todo")
        resources.migrate_todo(todo_db)
        todo_env = {
            "TODO_DATABASE_URL": todo_db,
            "TODO_JWKS_URL": f"{auth.url}/.well-known/jwks.json",
        }
        todo = resources.todo(f"todo-{label}", todo_env)
        seed_tasks(todo.url, account, TASKS_PER_USER)
    return Ours(auth, todo, database, prefix, account)


def argon2_verify_s(memory_kib: int, samples: int = 9) -> float:
    """Median CPU time of one Argon2id verify as the service runs it, at `memory_kib`."""
    defaults = Settings()
    hashing = PasswordHashing(
        memory_kib=memory_kib,
        time_cost=defaults.argon2_time_cost,
        parallelism=defaults.argon2_parallelism,
        workers=1,
        queue=0,
    )
    try:
        stored = hashing.hash_sync(PASSWORD)
        hashing.verify_sync(stored, PASSWORD)
        times = []
        for _ in range(samples):
            started = time.process_time()
            hashing.verify_sync(stored, PASSWORD)
            times.append(time.process_time() - started)
    finally:
        hashing.close()
    return statistics.median(times)


# --- running the two sides alternately --------------------------------------------------------


@dataclass(frozen=True)
class Side:
    url: str
    script: Callable[[], str]  # called for every run (refresh needs a token list of its own)
    servers: Sequence[Service]
    settle: Callable[[], None] = lambda: None  # after every run: wait for abandoned work
    script_args: tuple[str, ...] = ()
    # The server's own count of the operation, when wrk's completed responses misjudge the rate
    # (the peer answers sign-ins in waves: see `sign_ins`).
    count: Callable[[], int] | None = None


@dataclass(frozen=True)
class Measured:
    run: wrk.WrkResult
    done: int  # operations completed in the run: the server's count, or wrk's 2xx responses

    @property
    def rate(self) -> float:
        return self.done / self.run.duration_s if self.run.duration_s else 0.0

    @property
    def cpu_us(self) -> float | None:
        """The side's server CPU per operation completed."""
        if self.run.server_cpu_s is None or not self.done:
            return None
        return self.run.server_cpu_s / self.done * 1e6


@dataclass(frozen=True)
class Comparison:
    """The rounds of one row: (ours, peer), back to back in each round."""

    rounds: list[tuple[Measured, Measured]]

    def ratios(self) -> list[float]:
        return [o.rate / p.rate if p.rate else 0.0 for o, p in self.rounds]

    def ratio(self) -> float:
        return statistics.median(self.ratios())

    def fastest(self, side: int) -> Measured:
        return max((pair[side] for pair in self.rounds), key=lambda m: m.rate)

    def runs(self) -> list[wrk.WrkResult]:
        return [m.run for pair in self.rounds for m in pair]

    def faults(self) -> bool:
        return any(run.faults() for run in self.runs())


def wait_idle(service: Service, timeout: float = 120.0) -> None:
    """Until the process tree uses under 10 % of a core over 0.3 s: requests wrk abandoned at
    the end of a run (a queue of password hashes) must not run into the next one."""
    deadline = time.monotonic() + timeout
    while True:
        before = service.cpu_s()
        time.sleep(0.3)
        if service.cpu_s() - before < 0.03:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{service.name} still busy {timeout:.0f} s after a run")


def alternate(
    bench: Bench, ours: Side, peer: Side, *, connections: int = 32, seconds: float = 0.0
) -> Comparison:
    """A warm-up of each side, then `timing.rounds` rounds of one run of each, the order turned
    round every round (ours-peer, peer-ours, …) so that a drift of the machine hits both."""
    timing = bench.timing

    def run(side: Side, seconds: float) -> Measured:
        before = side.count() if side.count else 0
        result = bench.run_wrk(
            side.url,
            side.script(),
            servers=side.servers,
            seconds=seconds,
            connections=connections,
            script_args=side.script_args,
        )
        after = side.count() if side.count else 0
        side.settle()
        done = after - before if side.count else result.requests - result.non_2xx - result.errors
        print(
            f"[bench]   {side.url}: {done} done in {result.duration_s:.1f} s "
            f"({result.requests} responses, {result.non_2xx} non-2xx, {result.errors} errors)",
            flush=True,
        )
        return Measured(result, done)

    seconds = seconds or timing.pair_s
    for side in (ours, peer):
        run(side, timing.warmup_s)
    rounds = []
    for number in range(timing.rounds):
        first, second = (ours, peer) if number % 2 == 0 else (peer, ours)
        runs = {id(first): run(first, seconds), id(second): run(second, seconds)}
        rounds.append((runs[id(ours)], runs[id(peer)]))
    return Comparison(rounds)


def _us(figure: float | None) -> str:
    return f"{figure:,.0f}" if figure is not None else "?"


def judge(bench: Bench, key: str, runs: Comparison, unit: str, detail: str) -> None:
    ours, peer = runs.fastest(0), runs.fastest(1)
    ratio = runs.ratio()
    by_cpu = (
        f", by server CPU {peer.cpu_us / ours.cpu_us:.2f} ×" if ours.cpu_us and peer.cpu_us else ""
    )
    spread = "/".join(f"{r:.2f}" for r in runs.ratios())
    bench.report.judge(
        key,
        measured=f"ours {ours.rate:,.1f} vs peer {peer.rate:,.1f} {unit} (fastest runs; "
        f"p50 {ours.run.p50_ms:.0f} vs {peer.run.p50_ms:.0f} ms, p99 {ours.run.p99_ms:.0f} vs "
        f"{peer.run.p99_ms:.0f} ms; server CPU ours {_us(ours.cpu_us)} vs peer "
        f"{_us(peer.cpu_us)} µs each{by_cpu}; {detail}; median of {len(runs.rounds)} "
        f"alternating rounds ({spread}); {cpu_of(ours.run, peer.run)})" + errors_of(*runs.runs()),
        ratio=f"{ratio:.2f} ×",
        ok=ratio >= TARGET and not runs.faults(),
    )


def fixed(script: str) -> Callable[[], str]:
    """A side whose every run sends the same script."""
    return lambda: script


def json_post(body: dict[str, str]) -> Callable[[], str]:
    return fixed(wrk.post_script(json.dumps(body), "application/json"))


# --- the step ---------------------------------------------------------------------------------


def better_auth(bench: Bench) -> None:
    try:
        node = ensure_installed()
    except PeerUnavailable as missing:
        print(f"[bench] Better Auth peer skipped: {missing}", flush=True)
        for key in ROWS:
            bench.report.not_measured(key, f"skipped: {missing}")
        return
    scrypt = scrypt_parameters((PEER_DIR / SCRYPT_SOURCE).read_text())
    peer = start_peer(bench, node)
    user = prepare_peer(peer)
    peer_cookie = {"Cookie": user.cookie}
    sign_in = json_post({"email": user.email, "password": PASSWORD})
    peer_side = Side(f"{peer.url}/api/auth/sign-in/email", sign_in, [peer], lambda: wait_idle(peer))
    ours = start_ours(bench, "ba", with_todo=True)
    assert ours.todo is not None
    try:
        reads(bench, ours, peer, peer_cookie)
        token_issuance(bench, ours, peer, peer_cookie)
        verification(bench, node, peer, peer_cookie)
        sign_ins(bench, ours, peer_side, scrypt, node, matched=False)
    finally:
        ours.todo.stop()
        ours.auth.stop()
    sign_ins(bench, ours, peer_side, scrypt, node, matched=True)


def reads(bench: Bench, ours: Ours, peer: Service, peer_cookie: dict[str, str]) -> None:
    """Our task list (20 tasks and the total) against its getSession and one row."""
    assert ours.todo is not None
    path = f"/api/{ours.account.user_id}/tasks"
    for key, route, what in (
        (
            rows.BA_READ_SHIPPED,
            "/api/shipped/task",
            "JWT plugin as shipped: each getSession also signs a JWT into `set-auth-jwt`",
        ),
        (rows.BA_READ_LEAN, "/api/lean/task", "`disableSettingJwtHeader: true`: no JWT signed"),
    ):
        ours.account = login(ours.auth.url, ours.account)  # a token with 15 minutes ahead
        check_list(ours.todo.url + path, ours.account.access_token)
        bearer = wrk.get_script({"Authorization": f"Bearer {ours.account.access_token}"})
        runs = alternate(
            bench,
            Side(ours.todo.url + path, fixed(bearer), [ours.todo]),
            Side(peer.url + route, fixed(wrk.get_script(peer_cookie)), [peer]),
        )
        judge(
            bench,
            key,
            runs,
            "req/s",
            f"ours GET /api/{{user_id}}/tasks ({TASKS_PER_USER} tasks and the total, bearer JWT "
            f"verified by the todo service) vs peer auth.api.getSession (session cookie, "
            f"session and user read from PostgreSQL) + the caller's newest task; {what}",
        )


def token_issuance(bench: Bench, ours: Ours, peer: Service, peer_cookie: dict[str, str]) -> None:
    """Our refresh rotation (a refresh token never presented before, every request) against
    its GET /api/auth/token (the session read, its signing key read and decrypted, a JWT
    signed). Each of our runs gets its own token list, sized from a calibration run."""
    threads = ("2",)  # the Lua script's thread count, as Bench.run_wrk runs wrk
    batches = iter(range(10_000))

    def token_list(count: int) -> str:
        tokens = create_sessions(ours.database, REDIS_URL, ours.prefix, ours.account.user_id, count)
        path = bench.workdir / f"ba-rotation-{next(batches)}.tokens"
        path.write_text("\n".join(tokens) + "\n")
        return wrk.refresh_script(path)

    calibration = bench.run_wrk(ours.auth.url, token_list(2500), seconds=1, script_args=threads)
    count = (
        int(max(calibration.ok_rps, 300.0) * max(bench.timing.pair_s, bench.timing.warmup_s) * 1.6)
        + 2000
    )

    runs = alternate(
        bench,
        Side(ours.auth.url, lambda: token_list(count), [ours.auth], script_args=threads),
        Side(f"{peer.url}/api/auth/token", fixed(wrk.get_script(peer_cookie)), [peer]),
    )
    judge(
        bench,
        rows.BA_TOKEN,
        runs,
        "tokens/s",
        "ours POST /auth/refresh (Redis store; a new access and refresh token, the old one "
        "spent) vs peer GET /api/auth/token (session cookie; an EdDSA JWT, 15 min)",
    )


def verification(bench: Bench, node: str, peer: Service, peer_cookie: dict[str, str]) -> None:
    """The bare verification path, in process on both sides, CPU time: a token seen before
    (our TokenVerifier's verified-token cache against jose, which has none and verifies the
    signature every time) and tokens never seen (the key cached on both sides)."""
    count = 300 if bench.timing.quick else 1000
    rounds = "3" if bench.timing.quick else "5"
    issued = httpx.get(f"{peer.url}/bench/tokens?count={count}", headers=peer_cookie, timeout=120)
    if issued.status_code != 200:
        raise RuntimeError(f"peer tokens: {issued.status_code} {issued.text[:200]}")
    tokens_path = bench.workdir / "ba-tokens.json"
    tokens_path.write_text(issued.text)
    # Twice each side, interleaved, the faster kept: other work moves CPU time too.
    jose_runs, hits, es256_runs, ed25519_runs = [], [], [], []
    for _ in range(2):
        jose_runs.append(
            run_node(node, "verify", f"{peer.url}/api/auth/jwks", str(tokens_path), rounds)
        )
        hits.append(micro.cache_hit_s())
        es256_runs.append(micro.first_verification("ES256", count))
        ed25519_runs.append(micro.first_verification("Ed25519", count))
    jose = {name: min(run[name] for run in jose_runs) for name in ("repeat_us", "distinct_us")} | {
        "cold_us": jose_runs[0]["cold_us"]
    }
    hit = min(hits)
    es256 = min(es256_runs, key=lambda run: run.ours_s)
    ed25519 = min(ed25519_runs, key=lambda run: run.ours_s)
    jose_repeat, jose_first = jose["repeat_us"] * 1e-6, jose["distinct_us"] * 1e-6
    where = (
        f"jose (Node {node_version(node)}) jwtVerify with createRemoteJWKSet (the key set "
        f"fetched once: "
        f"that first verify {jose['cold_us'] / 1000:.1f} ms CPU), Better Auth's EdDSA tokens "
        f"(/bench/tokens); ours TokenVerifier, in-process; CPU time per verify, the best of "
        f"runs on either side, two rounds interleaved"
    )
    bench.report.judge(
        rows.BA_VERIFY_REPEAT,
        measured=f"ours {hit * 1e6:.2f} µs (verified-token cache hit) vs peer "
        f"{jose_repeat * 1e6:.1f} µs (a full signature check each time) per verify; {where}",
        ratio=f"{jose_repeat / hit:.1f} ×",
        ok=jose_repeat / hit >= TARGET,
    )
    ratio = jose_first / es256.ours_s
    bench.report.judge(
        rows.BA_VERIFY_FIRST,
        measured=f"ours ES256 {es256.ours_s * 1e6:.1f} µs (Ed25519 {ed25519.ours_s * 1e6:.1f} "
        f"µs, {jose_first / ed25519.ours_s:.2f} ×) vs peer EdDSA {jose_first * 1e6:.1f} µs per "
        f"verify, {count} distinct tokens, each verified once per run; {where}",
        ratio=f"{ratio:.2f} ×",
        ok=ratio >= TARGET,
    )


def peer_sessions(peer: Service) -> int:
    count: int = httpx.get(f"{peer.url}/bench/sessions", timeout=30).json()["count"]
    return count


def our_logins(auth: Service) -> int:
    """auth_logins_total{result="success"}: counted once the password is verified."""
    for labels, value in metric_samples(auth.url, "auth_logins_total"):
        if 'result="success"' in labels:
            return int(value)
    return 0


def node_version(node: str) -> str:
    return subprocess.run(
        [node, "--version"], capture_output=True, text=True, timeout=30, check=False
    ).stdout.strip()


def sign_ins(
    bench: Bench, ours: Ours, peer_side: Side, scrypt: ScryptParameters, node: str, *, matched: bool
) -> None:
    """Sign-in at saturation (64 connections) on both sides: ours at its default Argon2id, or
    (matched) on an auth service of its own whose Argon2id memory is raised until one verify
    costs the CPU one of the peer's scrypt verifies does. Abandoned requests are drained after
    every run (our hash queue empty; the peer's process idle)."""
    defaults = Settings()
    peer_ms = run_node(node, "scrypt", "9")["verify_ms"]
    memory_kib = defaults.argon2_memory_kib
    ours_s = argon2_verify_s(memory_kib)
    side = ours
    if matched:
        # Two steps: time grows a little faster than memory, so correct once on a measurement.
        memory_kib = matched_memory_kib(memory_kib, ours_s, peer_ms / 1000)
        memory_kib = matched_memory_kib(memory_kib, argon2_verify_s(memory_kib), peer_ms / 1000)
        ours_s = argon2_verify_s(memory_kib)
        side = start_ours(bench, "bamatched", with_todo=False, argon2_kib=memory_kib)
    key = rows.BA_SIGNIN_MATCHED if matched else rows.BA_SIGNIN
    try:
        body = {"email": side.account.email, "password": PASSWORD}
        runs = alternate(
            bench,
            Side(
                f"{side.auth.url}/auth/login",
                json_post(body),
                [side.auth],
                settle=lambda: wait_hash_queue_empty(side.auth.url),
                count=lambda: our_logins(side.auth),
            ),
            peer_side,
            connections=LOGIN_CONNECTIONS,
            seconds=SIGN_IN_SECONDS,
        )
    finally:
        if matched:
            side.auth.stop()
    judge(
        bench,
        key,
        runs,
        "sign-ins/s",
        f"{LOGIN_CONNECTIONS} connections, runs of {SIGN_IN_SECONDS:.0f} s; ours POST "
        f"/auth/login, Argon2id m={memory_kib} KiB "
        f"t={defaults.argon2_time_cost} p={defaults.argon2_parallelism}, one verify "
        f"{ours_s * 1000:.1f} ms CPU (libsodium, as the service runs it) vs peer POST "
        f"/api/auth/sign-in/email, {scrypt.describe()} (read from the installed "
        f"@better-auth/utils), one verify {peer_ms:.1f} ms CPU (its verifyPassword in Node); "
        f"the peer's rate limiter off; sign-ins counted by each server (ours "
        f"auth_logins_total{{result=success}}, the peer's session rows), not by wrk; the "
        f"peer answers in waves (all queued scrypts first: p50 of seconds), by hand its "
        f"session rows grew steadily between waves, in bench runs they came in waves too, "
        f"so its figure is coarse (about 64 a wave)",
    )
