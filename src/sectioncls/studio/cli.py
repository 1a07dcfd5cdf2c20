"""`sectioncls studio ...`: run Label Studio, push units, pull annotations, check agreement.

Handlers print and return exit codes (0 ok, 1 done with warnings, 2 error); the library
modules they call never print. Errors from the studio/data layers are reported in one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sectioncls.studio import StudioError

__all__ = ["main", "register_cli"]


def _err(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return 2


def _common_server(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--home", type=Path, default=None,
        help="state/log directory (default .studio, or $SECTIONCLS_STUDIO_HOME)",
    )  # fmt: skip


def _common_client(p: argparse.ArgumentParser) -> None:
    _common_server(p)
    p.add_argument("--url", default=None, help="server URL (default: the one `serve` started)")
    p.add_argument("--token", default=None, help="API token (default: the one `serve` set)")
    p.add_argument(
        "--schema",
        type=Path,
        default=None,
        help="a labels.yaml of your own: the project's labelling view is generated from it "
        "(default: the packaged four categories)",
    )


def _client(args: argparse.Namespace):
    from sectioncls.schema import LabelSchema
    from sectioncls.studio.client import StudioClient

    schema = LabelSchema.from_yaml(args.schema) if getattr(args, "schema", None) else None
    return StudioClient.connect(args.url, args.token, home=args.home, schema=schema)


# ----------------------------------------------------------------------------- handlers
def cmd_install(args: argparse.Namespace) -> int:
    from sectioncls.studio import server

    try:
        exe = server.install_env(args.venv, quiet=args.quiet, force=args.force)
        template = None
        if not args.no_template:
            # Migrating a data dir takes ~30-60 s; do it once here so starts take seconds.
            template = server.ensure_template(args.home, venv=args.venv)
    except StudioError as exc:
        return _err(str(exc))
    print(f"Label Studio {server.LABEL_STUDIO_VERSION} ready: {exe}")
    if template is not None:
        print(f"template data dir: {template}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from sectioncls.studio import server

    try:
        try:
            server.label_studio_bin(args.venv)
        except StudioError:
            if args.no_install:
                raise
            print(
                f"installing label-studio=={server.LABEL_STUDIO_VERSION} into "
                f"{args.venv or server.default_venv()}/ (one time, ~2 min)...",
                file=sys.stderr,
            )
            server.install_env(args.venv, quiet=True)
        print("starting Label Studio...", file=sys.stderr)
        state = server.start(
            home=args.home, data_dir=args.data_dir, port=args.port, host=args.host,
            venv=args.venv, timeout=args.timeout,
        )  # fmt: skip
    except StudioError as exc:
        return _err(str(exc))
    print(f"Label Studio is running at {state.url}  (pid {state.pid})")
    print(f"  login:    {state.username}")
    print(f"  password: {state.password}")
    print(f"  token:    {state.token}")
    print(f"  data dir: {state.data_dir}")
    print(f"  log:      {state.log_path}")
    print("Stop it with `sectioncls studio stop`.")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from sectioncls.studio import server

    try:
        state = server.stop(args.home, timeout=args.timeout)
    except StudioError as exc:
        return _err(str(exc))
    if state is None:
        print("no Label Studio server recorded; nothing to stop")
    else:
        print(f"stopped Label Studio at {state.url} (pid {state.pid})")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from sectioncls.studio import server

    try:
        st = server.status(args.home)
    except StudioError as exc:
        return _err(str(exc))
    if st.state is None:
        print("not running (no state recorded); start it with `sectioncls studio serve`")
        return 1
    s = st.state
    health = "running" if st.responding else ("not answering" if st.alive else "not running")
    print(f"{health}: {s.url}  (pid {s.pid})")
    print(f"  login: {s.username} / {s.password}")
    print(f"  token: {s.token}")
    print(f"  data dir: {s.data_dir}\n  log: {s.log_path}")
    return 0 if st.responding else 1


def _load_predictor(model_dir: str) -> Any:
    try:
        from sectioncls.tagger import ReportTagger
    except ImportError as exc:
        raise StudioError(
            f"--predictions needs the tagger (sectioncls.tagger), which cannot be imported: {exc}"
        ) from None
    from sectioncls.studio.client import TaggerPredictor

    try:
        tagger = ReportTagger.from_pretrained(model_dir)
    except (OSError, ValueError) as exc:  # CheckpointError is a FileNotFoundError
        raise StudioError(f"--predictions {model_dir}: {exc}") from None
    return TaggerPredictor(tagger)


def cmd_push(args: argparse.Namespace) -> int:
    from sectioncls.textio import ReportDecodeError

    try:
        paths = _expand(args.paths)
        predictor = _load_predictor(args.predictions) if args.predictions else None
        client = _client(args)
        res = client.push([str(p) for p in paths], args.project, predictor)
    except (StudioError, ReportDecodeError) as exc:
        return _err(str(exc))
    print(
        f"project {res.project_title!r} (id {res.project_id}) at {res.url}/projects/"
        f"{res.project_id}: {res.created} tasks created, {res.updated} updated, "
        f"{res.unchanged} unchanged"
        + (f", {res.predictions} predictions" if res.predictions else "")
    )
    code = 0
    if res.stale:
        print(
            f"warning: {len(res.stale)} annotated unit(s) changed since they were labelled and "
            f"were left as they are; re-check them: {', '.join(res.stale[:20])}",
            file=sys.stderr,
        )
        code = 1
    if res.orphaned:
        print(
            f"warning: {len(res.orphaned)} task(s) no longer match a unit of their report: "
            f"{', '.join(res.orphaned[:20])}",
            file=sys.stderr,
        )
        code = 1
    return code


def _expand(raw: list[str]) -> list[Path]:
    out: list[Path] = []
    for r in raw:
        p = Path(r)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in (".txt", ".md"))
            if not found:
                raise StudioError(f"{p}: no .txt/.md reports in this folder")
            out.extend(found)
        else:
            out.append(p)
    return out


def cmd_pull(args: argparse.Namespace) -> int:
    try:
        res = _client(args).pull(args.project, args.output)
    except StudioError as exc:
        return _err(str(exc))
    print(
        f"wrote {res.path}: {res.n_tasks} tasks, {res.n_annotated_tasks} with annotations "
        f"({res.n_annotations} annotations)"
    )
    return 0


def cmd_backend(args: argparse.Namespace) -> int:
    """Serve a checkpoint to Label Studio until interrupted (the ML backend protocol)."""
    try:
        import uvicorn
    except ImportError:
        return _err("the model server needs the studio extra: pip install 'sectioncls[studio]'")
    from sectioncls.studio.backend import ModelHolder, TrainingRunner, create_app

    holder = ModelHolder(args.model)
    export = None
    if args.config:

        def export(project_id: int):
            return _client(args).export(project_id)

    runner = TrainingRunner(holder, args.config, export, args.train_every)
    state = f"model {holder.model_version}" if holder.error is None else f"ERROR {holder.error}"
    print(f"sectioncls ML backend on http://{args.host}:{args.port} ({state})", flush=True)
    uvicorn.run(create_app(holder, runner), host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_connect(args: argparse.Namespace) -> int:
    """Attach a running model server to a project (Label Studio checks /health and /setup)."""
    try:
        client = _client(args)
        pid = client.require_project(args.project)
        ml = client.connect_model(pid, args.backend_url, title=args.title)
    except StudioError as exc:
        return _err(str(exc))
    print(f"connected {args.backend_url} to project {args.project!r} (ML backend id {ml})")
    return 0


def cmd_agreement(args: argparse.Namespace) -> int:
    from sectioncls.data import AnnotationError, agreement

    try:
        res = agreement(args.export, args.export2)
    except AnnotationError as exc:
        return _err(str(exc))
    if args.json:
        print(json.dumps(res.to_dict(), ensure_ascii=False, indent=1))
        return 0

    def k(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    print(f"{res.annotator_a}  vs  {res.annotator_b}: {res.n_shared} shared units")
    print(f"  category: kappa {k(res.category_kappa)}, raw agreement {res.category_agreement:.3f}")
    print(f"  metric:   kappa {k(res.metric_kappa)}, raw agreement {res.metric_agreement:.3f}")
    if res.disagreements:
        print(f"\n{len(res.disagreements)} disagreement(s):")
        for r in res.disagreements[: args.limit]:
            text = r["text"] if len(r["text"]) <= 60 else r["text"][:59] + "…"
            print(
                f"  {r['doc_id']}#{r['unit_index']}: {r['category_a']}/{r['metric_a']} vs "
                f"{r['category_b']}/{r['metric_b']}  {text}"
            )
        if len(res.disagreements) > args.limit:
            print(f"  ... {len(res.disagreements) - args.limit} more (use --json for all)")
    return 0


# ----------------------------------------------------------------------------- parser
def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add `sectioncls studio ...` to the main CLI."""
    from sectioncls.studio.server import DEFAULT_HOST, DEFAULT_PORT

    studio = subparsers.add_parser(
        "studio",
        help="annotate units in a local Label Studio",
        description="Run a local Label Studio, push report units as tasks, pull annotations.",
    )
    sub = studio.add_subparsers(dest="studio_command", metavar="COMMAND", required=True)

    p = sub.add_parser("install", help="create .venv-studio with label-studio (make studio-env)")
    p.add_argument("--venv", type=Path, default=None, help="default .venv-studio")
    p.add_argument("--force", action="store_true", help="reinstall even if present")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--no-template", action="store_true",
                   help="skip building the migrated template data dir")  # fmt: skip
    _common_server(p)
    p.set_defaults(func=cmd_install)

    p = sub.add_parser("serve", help="start Label Studio in the background (installs it first)")
    _common_server(p)
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"default {DEFAULT_HOST}")
    p.add_argument("--data-dir", type=Path, default=None, help="default <home>/data")
    p.add_argument("--venv", type=Path, default=None, help="default .venv-studio")
    p.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for it")
    p.add_argument("--no-install", action="store_true", help="fail instead of installing")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("stop", help="stop the server started by `serve`")
    _common_server(p)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds before SIGKILL")
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("status", help="is it running; URL, login and token")
    _common_server(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("push", help="segment reports and create/update one task per unit")
    p.add_argument("paths", nargs="+", metavar="PATH", help="report files or folders")
    p.add_argument("--project", required=True, help="project title (created if missing)")
    p.add_argument("--predictions", metavar="MODEL_DIR", default=None,
                   help="pre-annotate with a trained tagger checkpoint")  # fmt: skip
    _common_client(p)
    p.set_defaults(func=cmd_push)

    p = sub.add_parser("pull", help="export a project's annotations to JSON")
    p.add_argument("--project", required=True, help="project title")
    p.add_argument("--output", type=Path, default=None,
                   help="default annotations/<project>.json")  # fmt: skip
    _common_client(p)
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser(
        "backend",
        help="serve a model to Label Studio (ML backend: /health /setup /predict /webhook)",
    )
    p.add_argument("--model", "-m", default="checkpoints/sectioncls-default")
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (local only)")
    p.add_argument("--port", type=int, default=9090, help="default 9090")
    p.add_argument(
        "--config",
        default=None,
        help="run config for training from Label Studio (the project's export replaces its "
        "annotations); without it, training requests are refused",
    )
    p.add_argument(
        "--train-every",
        type=int,
        default=0,
        help="train after every N new or changed annotations (0: only when asked)",
    )
    _common_client(p)
    p.set_defaults(func=cmd_backend)

    p = sub.add_parser("connect", help="attach a running `studio backend` to a project")
    p.add_argument("--project", required=True, help="project title")
    p.add_argument("--backend-url", default="http://127.0.0.1:9090")
    p.add_argument("--title", default="sectioncls", help="the model's name in Label Studio")
    _common_client(p)
    p.set_defaults(func=cmd_connect)

    p = sub.add_parser("agreement", help="Cohen's kappa between two annotators")
    p.add_argument("export", help="a Label Studio JSON export")
    p.add_argument(
        "export2", nargs="?", default=None,
        help="second annotator's export (else: the two annotators within EXPORT)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--limit", type=int, default=30, help="disagreements to list (default 30)")
    p.set_defaults(func=cmd_agreement)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (`python -m sectioncls.studio.cli ...`), e.g. for the Makefile."""
    parser = argparse.ArgumentParser(prog="sectioncls")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(["studio", *sys.argv[1:]]))
