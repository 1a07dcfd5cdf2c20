"""Run a real Label Studio server locally, unattended: install, start, wait, stop.

The server lives in its own virtual environment (`.venv-studio/`, `label-studio==1.23.2`)
because its exact pins (Django, pytz, redis, openai, pyarrow...) fight the project's; the
project itself only needs the SDK. Facts this module relies on (measured on 1.23.2):

* every `label-studio` command writes into `LABEL_STUDIO_BASE_DATA_DIR` (else ~/.local/share);
* the user and its API token are created on start from `LABEL_STUDIO_USERNAME/PASSWORD/
  USER_TOKEN`; legacy `Token` auth must be enabled when the organisation is created;
* the unprefixed `HOST`, `PORT`, `USERNAME`, `PASSWORD`, `DEBUG` are read as fall-backs, so
  they are removed from the server's environment;
* if the port is taken the server silently moves to port+1, so we check it first;
* a fresh data dir needs ~30 s of migrations, a copy of a migrated template ~4 s.

State of a running server (url, token, pid, data dir) is kept in `<home>/server.json` and
`<home>/server.pid`; `home` defaults to `./.studio` (git-ignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from sectioncls.studio import StudioError

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "LABEL_STUDIO_VERSION",
    "ServerState",
    "ServerStatus",
    "default_home",
    "default_venv",
    "ensure_template",
    "free_port",
    "install_env",
    "label_studio_bin",
    "port_in_use",
    "read_state",
    "server_env",
    "start",
    "status",
    "stop",
]

LABEL_STUDIO_VERSION = "1.23.2"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_USERNAME = "annotator@sectioncls.local"
STATE_FILE = "server.json"
PID_FILE = "server.pid"
LOG_FILE = "server.log"
CREDENTIALS_FILE = ".sectioncls-credentials.json"
DB_FILE = "label_studio.sqlite3"
# Unprefixed variables Label Studio reads as fall-backs; an inherited DEBUG=1 or PORT=5000
# would silently change how the server runs.
_FALLBACK_VARS = ("HOST", "PORT", "USERNAME", "PASSWORD", "DEBUG")
_INSTALL_HINT = "run `make studio-env` (or `sectioncls studio install`)"

# Label Studio's default SSRF ban list without loopback (0.0.0.0/8 and 127.0.0.0/8).
_BANNED_SUBNETS = (
    "10.0.0.0/8",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::ffff:0:0/96",
    "fc00::/7",
    "fe80::/10",
)


def default_home() -> Path:
    """Where server state, logs, the default data dir and the template live."""
    return Path(os.environ.get("SECTIONCLS_STUDIO_HOME", ".studio"))


def default_venv() -> Path:
    return Path(os.environ.get("SECTIONCLS_STUDIO_VENV", ".venv-studio"))


def label_studio_bin(venv: str | os.PathLike[str] | None = None) -> Path:
    """The `label-studio` executable in the server venv, or StudioError saying how to get it."""
    v = Path(venv) if venv is not None else default_venv()
    exe = v / ("Scripts/label-studio.exe" if os.name == "nt" else "bin/label-studio")
    if not exe.exists():
        raise StudioError(f"Label Studio server environment not found at {v}/; {_INSTALL_HINT}.")
    return exe.absolute()


# ----------------------------------------------------------------------------- install
def install_env(
    venv: str | os.PathLike[str] | None = None,
    *,
    python: str | None = None,
    quiet: bool = False,
    force: bool = False,
) -> Path:
    """Create the server venv and pip-install label-studio there; a no-op if already done.

    Returns the `label-studio` executable. Slow (~2 min, ~1 GB) the first time."""
    v = Path(venv) if venv is not None else default_venv()
    stamp = v / f".sectioncls-label-studio-{LABEL_STUDIO_VERSION}"
    exe = v / "bin" / "label-studio"
    if stamp.exists() and exe.exists() and not force:
        return exe
    base = python or getattr(sys, "_base_executable", None) or sys.executable
    out = subprocess.DEVNULL if quiet else None
    try:
        if not (v / "bin" / "python").exists():
            subprocess.run([base, "-m", "venv", str(v)], check=True, stdout=out)
        pip = [str(v / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
        if quiet:
            pip.append("-q")
        subprocess.run([*pip, f"label-studio=={LABEL_STUDIO_VERSION}"], check=True, stdout=out)
    except subprocess.CalledProcessError as exc:
        raise StudioError(
            f"installing label-studio=={LABEL_STUDIO_VERSION} into {v}/ failed "
            f"(exit {exc.returncode}); see the pip output above. Remove {v}/ and retry."
        ) from None
    if not exe.exists():
        raise StudioError(f"pip finished but {exe} is missing; remove {v}/ and retry.")
    stamp.write_text(f"label-studio=={LABEL_STUDIO_VERSION}\n", encoding="utf-8")
    return exe


# ----------------------------------------------------------------------------- ports
def port_in_use(port: int, host: str = DEFAULT_HOST) -> bool:
    """True if something listens on host:port or on localhost:port (Label Studio checks
    'localhost', and would then silently move to port+1)."""
    for h in {host, "127.0.0.1"}:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            if s.connect_ex((h, port)) == 0:
                return True
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port that is free right now (for tests and a second server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------------------- env + data
def server_env(
    data_dir: str | os.PathLike[str],
    *,
    username: str | None = None,
    password: str | None = None,
    token: str | None = None,
    base: Mapping[str, str] | None = None,
    validate_predictions: bool = True,
) -> dict[str, str]:
    """The environment for `label-studio`: data dir, known user/token, no telemetry/sign-up."""
    env = dict(os.environ if base is None else base)
    for k in _FALLBACK_VARS:
        env.pop(k, None)
    for k in [k for k in env if k.startswith("LABEL_STUDIO_")]:
        env.pop(k)  # an inherited LABEL_STUDIO_* setting must not change our server
    env.update(
        {
            "LABEL_STUDIO_BASE_DATA_DIR": str(Path(data_dir).resolve()),
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
            "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
            "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
            "PYTHONUNBUFFERED": "1",
            # The server is local (127.0.0.1) and so is the model server it connects to
            # (`sectioncls studio backend`): Label Studio's SSRF guard bans loopback by
            # default. Allow loopback only; private networks and link-local stay banned.
            "USE_DEFAULT_BANNED_SUBNETS": "false",
            "USER_ADDITIONAL_BANNED_SUBNETS": ",".join(_BANNED_SUBNETS),
        }
    )
    if validate_predictions:
        # Predictions with labels not in the config get HTTP 400 instead of being stored.
        env["fflag_feat_utc_210_prediction_validation_15082025"] = "true"
    if username and password:
        env["LABEL_STUDIO_USERNAME"] = username
        env["LABEL_STUDIO_PASSWORD"] = password
    if token:
        env["LABEL_STUDIO_USER_TOKEN"] = token
    return env


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive file lock, so parallel test sessions build the template only once."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_template(
    home: str | os.PathLike[str] | None = None,
    *,
    venv: str | os.PathLike[str] | None = None,
    timeout: float = 900.0,
) -> Path:
    """A migrated, user-less data dir made once with `label-studio init --quiet`; copies of it
    start in seconds instead of ~30 s of migrations. The timeout only catches a hang: on 2
    cores shared with a training run the migrations took over 300 s."""
    h = Path(home) if home is not None else default_home()
    template = h / f"template-{LABEL_STUDIO_VERSION}"
    if (template / DB_FILE).exists():
        return template
    exe = label_studio_bin(venv)
    with _lock(h / ".template.lock"):
        if (template / DB_FILE).exists():
            return template
        tmp = Path(tempfile.mkdtemp(prefix=".template-", dir=h))
        log = h / "template-init.log"
        try:
            with open(log, "wb") as fh:
                proc = subprocess.run(
                    [str(exe), "init", "--quiet", "--no-browser"],
                    env=server_env(tmp, validate_predictions=False),
                    cwd=tmp,
                    stdin=subprocess.DEVNULL,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    check=False,
                )
            if proc.returncode != 0 or not (tmp / DB_FILE).exists():
                raise StudioError(
                    f"`label-studio init` failed (exit {proc.returncode}); see {log}:\n"
                    + _tail(log)
                )
            (tmp / ".env").unlink(missing_ok=True)  # the secret key: each copy makes its own
            if template.exists():
                shutil.rmtree(template)
            tmp.rename(template)
        except subprocess.TimeoutExpired:
            raise StudioError(f"`label-studio init` took over {timeout:.0f}s; see {log}") from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return template


def _credentials(data_dir: Path, fresh: bool) -> dict[str, str]:
    """Known login + token of a data dir, created with it and kept in it (mode 600)."""
    path = data_dir / CREDENTIALS_FILE
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    if not fresh:
        raise StudioError(
            f"{data_dir} holds a Label Studio database not created by sectioncls, so its user "
            "and API token are unknown; use another --data-dir (or remove this one)."
        )
    creds = {
        "username": DEFAULT_USERNAME,
        "password": secrets.token_urlsafe(12),
        "token": secrets.token_hex(20),
    }
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(creds, fh)
    return creds


# ----------------------------------------------------------------------------- state
@dataclass(frozen=True, slots=True)
class ServerState:
    """What a started server needs to be found, used and stopped again."""

    url: str
    token: str
    pid: int
    data_dir: str
    host: str
    port: int
    username: str
    password: str
    log_path: str
    started_at: float
    version: str = LABEL_STUDIO_VERSION


@dataclass(frozen=True, slots=True)
class ServerStatus:
    state: ServerState | None
    alive: bool  # the recorded PID is a running label-studio process
    responding: bool  # GET /api/projects with the token answered 200


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def read_state(home: str | os.PathLike[str] | None = None) -> ServerState | None:
    h = Path(home) if home is not None else default_home()
    path = h / STATE_FILE
    if not path.exists():
        return None
    try:
        return ServerState(**json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise StudioError(
            f"{path} is damaged ({exc}); delete it and stop the server by hand"
        ) from None


def _clear_state(h: Path) -> None:
    for name in (STATE_FILE, PID_FILE):
        (h / name).unlink(missing_ok=True)


def _is_label_studio(pid: int) -> bool:
    """The PID is alive and (where /proc tells) really a label-studio process, so a recycled PID
    is never signalled."""
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)  # reap if it is our own exited child
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    proc = Path(f"/proc/{pid}")
    if proc.exists():
        try:
            stat = (proc / "stat").read_text()
            if stat.rsplit(")", 1)[-1].split()[0] == "Z":
                return False
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            return False
        return b"label-studio" in cmd or b"label_studio" in cmd
    return True


def _tail(path: Path, n: int = 25) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(lines[-n:])


def _probe(url: str, token: str, timeout: float = 2.0) -> int | None:
    """HTTP status of GET /api/projects with the token, or None if nothing answers."""
    req = urllib.request.Request(
        f"{url}/api/projects?page_size=1", headers={"Authorization": f"Token {token}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


# ----------------------------------------------------------------------------- start/stop
def start(
    *,
    home: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    port: int = DEFAULT_PORT,
    host: str = DEFAULT_HOST,
    venv: str | os.PathLike[str] | None = None,
    template_home: str | os.PathLike[str] | None = None,
    timeout: float = 120.0,
    validate_predictions: bool = True,
) -> ServerState:
    """Start Label Studio in the background and return once the API answers with our token.

    A new data dir is copied from the template in `template_home` (default: the default home,
    so test servers with their own `home` still share one template). The server keeps running
    after this process exits (own session); stop it with `stop()`."""
    h = (Path(home) if home is not None else default_home()).resolve()
    h.mkdir(parents=True, exist_ok=True)
    old = read_state(h)
    if old is not None:
        if _is_label_studio(old.pid):
            raise StudioError(
                f"Label Studio is already running at {old.url} (pid {old.pid}, state in {h}); "
                "stop it first with `sectioncls studio stop`."
            )
        _clear_state(h)
    exe = label_studio_bin(venv)
    if port_in_use(port, host):
        raise StudioError(
            f"port {port} is already in use on {host}; Label Studio would silently move to "
            f"{port + 1}. Choose another with --port, or stop whatever listens there."
        )
    d = (Path(data_dir) if data_dir is not None else h / "data").resolve()
    fresh = not (d / DB_FILE).exists()
    if fresh:
        template = ensure_template(template_home, venv=venv)
        shutil.copytree(template, d, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".env"))
    creds = _credentials(d, fresh)
    env = server_env(
        d,
        username=creds["username"],
        password=creds["password"],
        token=creds["token"],
        validate_predictions=validate_predictions,
    )
    log_path = h / LOG_FILE
    cmd = [
        str(exe), "start", "--no-browser", "--internal-host", host, "--port", str(port),
        "--enable-legacy-api-token",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=d,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the CLI that started it; no terminal signals
        )
    url = f"http://{host}:{port}"
    state = ServerState(
        url=url,
        token=creds["token"],
        pid=proc.pid,
        data_dir=str(d),
        host=host,
        port=port,
        username=creds["username"],
        password=creds["password"],
        log_path=str(log_path),
        started_at=time.time(),
    )
    _write_private(h / PID_FILE, f"{proc.pid}\n")
    _write_private(h / STATE_FILE, json.dumps(asdict(state), indent=2) + "\n")
    try:
        _wait_ready(proc, url, creds["token"], timeout, log_path)
    except BaseException:
        _terminate(proc.pid, 5.0)
        with contextlib.suppress(Exception):
            proc.wait(timeout=1)
        _clear_state(h)
        raise
    return state


def _wait_ready(
    proc: subprocess.Popen[bytes], url: str, token: str, timeout: float, log_path: Path
) -> None:
    deadline = time.monotonic() + timeout
    unauthorized_since: float | None = None
    while True:
        code = proc.poll()
        if code is not None:
            raise StudioError(
                f"Label Studio exited during start (exit {code}); log {log_path}:\n"
                + _tail(log_path)
            )
        status = _probe(url, token)
        if status == 200:
            return
        if status == 401:
            # Answers, but rejects the token: the data dir's user/token do not match ours.
            unauthorized_since = unauthorized_since or time.monotonic()
            if time.monotonic() - unauthorized_since > 10:
                raise StudioError(
                    f"Label Studio at {url} answers but rejects the API token (401); the data dir "
                    f"was set up with another user/token. Log: {log_path}"
                )
        if time.monotonic() > deadline:
            raise StudioError(
                f"Label Studio did not answer at {url} within {timeout:.0f}s; log {log_path}:\n"
                + _tail(log_path)
            )
        time.sleep(0.25)


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM, wait, then SIGKILL the process (and its group). True if it had to be killed."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_label_studio(pid):
            return False
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)  # its own session: pgid == pid
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if not _is_label_studio(pid):
            break
        time.sleep(0.1)
    return True


def stop(
    home: str | os.PathLike[str] | None = None, *, timeout: float = 10.0
) -> ServerState | None:
    """Stop the server recorded in `home` (SIGTERM, SIGKILL after `timeout`) and clear its
    state. Returns the state it stopped, or None if none was recorded."""
    h = Path(home) if home is not None else default_home()
    state = read_state(h)
    if state is None:
        pid_file = h / PID_FILE
        if pid_file.exists():  # state lost but PID known
            with contextlib.suppress(ValueError):
                pid = int(pid_file.read_text().strip())
                if _is_label_studio(pid):
                    _terminate(pid, timeout)
            _clear_state(h)
        return None
    if _is_label_studio(state.pid):
        _terminate(state.pid, timeout)
    _clear_state(h)
    return state


def status(home: str | os.PathLike[str] | None = None) -> ServerStatus:
    state = read_state(home)
    if state is None:
        return ServerStatus(None, False, False)
    alive = _is_label_studio(state.pid)
    responding = alive and _probe(state.url, state.token) == 200
    return ServerStatus(state, alive, responding)
