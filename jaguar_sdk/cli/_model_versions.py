"""``jaguar model status|check|update|verify|list|prune|backup|restore``: model revisions.

Every command works the same on a local folder (``--root``) and on a Modal Volume
(``--volume``, through modal's Volume file API); ``--hub-dir`` replaces the Hugging Face Hub
with a local mirror (tests, air-gapped sites). ``--json`` prints machine-readable output.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigurationError, InvalidRequestError

if TYPE_CHECKING:
    from ..weights import Fetcher, ModelVersions, RevisionInfo

__all__ = ["register_model"]

DEFAULT_REPO = "shuttleai/shuttle-jaguar"


def _common(parser: argparse.ArgumentParser, *, hub: bool = False) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--root", metavar="PATH", help="local weights folder")
    where.add_argument("--volume", metavar="NAME", help="Modal Volume name")
    parser.add_argument("--repo", default=DEFAULT_REPO, help=f"Hub repo id ({DEFAULT_REPO})")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    if hub:
        parser.add_argument("--hub-dir", metavar="PATH", help="local mirror instead of the Hub")
        parser.add_argument("--branch", default="main", help="branch, tag or commit (main)")


def register_model(model_subparsers: Any) -> None:
    """Add the revision sub-commands to ``jaguar model``.

    Args:
        model_subparsers: The ``model`` parser's sub-parsers action.
    """
    specs: list[tuple[str, str, bool]] = [
        ("status", "show the current revision and whether it is complete", False),
        ("list", "list the revisions on the storage", False),
        ("check", "compare the current revision with the latest upstream", True),
        ("update", "fetch only changed files, verify, publish, switch CURRENT", True),
        ("verify", "re-hash a revision against its manifest", False),
        ("prune", "remove revisions other than the current one (and --keep)", False),
        ("backup", "export a revision with its manifest to a tar archive", False),
        ("restore", "restore a revision from a backup archive, verifying it", False),
    ]
    for name, text, hub in specs:
        parser: argparse.ArgumentParser = model_subparsers.add_parser(
            name, help=text, description=text
        )
        _common(parser, hub=hub)
        parser.set_defaults(handler=_HANDLERS[name])
        if name == "update":
            parser.add_argument("--no-switch", action="store_true", help="publish only")
            parser.add_argument(
                "--quick-verify", action="store_true", help="check sizes, not hashes, after publish"
            )
        elif name == "verify":
            parser.add_argument("revision", nargs="?", default="current")
            parser.add_argument("--quick", action="store_true", help="sizes only")
        elif name == "prune":
            parser.add_argument("--keep", action="append", default=[], metavar="REVISION")
            parser.add_argument("--dry-run", action="store_true")
        elif name == "backup":
            parser.add_argument("archive", metavar="ARCHIVE.tar")
            parser.add_argument("--revision", default="current")
        elif name == "restore":
            parser.add_argument("archive", metavar="ARCHIVE.tar")
            parser.add_argument("--switch", action="store_true", help="make it current")


def _versions(args: argparse.Namespace) -> ModelVersions:
    from ..weights import LocalStorage, ModalVolumeStorage, ModelVersions, Storage

    storage: Storage
    if args.root:
        storage = LocalStorage(Path(args.root))
    elif args.volume:
        storage = ModalVolumeStorage(args.volume)
    else:
        raise ConfigurationError("say where the weights are: --root PATH or --volume NAME")
    try:
        return ModelVersions(storage, args.repo, progress=not args.no_progress)
    except ValueError as exc:
        raise InvalidRequestError(str(exc), field="repo") from exc


def _fetcher(args: argparse.Namespace) -> Fetcher:
    from ..weights import HubFetcher, LocalFolderFetcher

    if args.hub_dir:
        return LocalFolderFetcher(Path(args.hub_dir))
    return HubFetcher(token=os.environ.get("HF_TOKEN"))


def _out(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=1, sort_keys=True) if args.json else text)


def _row(info: RevisionInfo) -> dict[str, Any]:
    return {
        "revision": info.revision,
        "current": info.current,
        "complete": info.complete,
        "files": info.files,
        "total_bytes": info.total_bytes,
        "created_at": info.created_at,
    }


def _table(infos: list[RevisionInfo]) -> str:
    if not infos:
        return "no revisions"
    lines = [f"{'':2}{'REVISION':42}{'FILES':>7}{'BYTES':>14}  STATE"]
    for i in infos:
        state = "complete" if i.complete else "INCOMPLETE"
        lines.append(
            f"{'*' if i.current else ' ':2}{i.revision:42}{i.files:>7}{i.total_bytes:>14}  {state}"
        )
    return "\n".join(lines)


def _run_status(args: argparse.Namespace) -> int:
    versions = _versions(args)
    current = versions.current()
    infos = {i.revision: i for i in versions.list_revisions()}
    info = infos.get(current) if current else None
    data = {
        "repo": args.repo,
        "storage": versions.storage.description,
        "current": current,
        "complete": bool(info and info.complete),
        "revisions": len(infos),
    }
    text = (
        f"{args.repo} on {data['storage']}\n"
        f"current: {current or '(none)'}"
        + ("" if info is None else f" ({'complete' if info.complete else 'INCOMPLETE'})")
        + f"\nrevisions: {len(infos)}"
    )
    _out(args, data, text)
    return 0 if current is None or data["complete"] else 1


def _run_list(args: argparse.Namespace) -> int:
    infos = _versions(args).list_revisions()
    _out(args, [_row(i) for i in infos], _table(infos))
    return 0


def _run_check(args: argparse.Namespace) -> int:
    check = _versions(args).check(_fetcher(args), args.branch)
    data = {
        "repo": check.repo_id,
        "branch": check.branch,
        "current": check.current,
        "latest": check.latest,
        "update_available": check.update_available,
    }
    verdict = "update available: run `jaguar model update`"
    text = f"current: {check.current or '(none)'}\nlatest ({check.branch}): {check.latest}\n" + (
        verdict if check.update_available else "up to date"
    )
    _out(args, data, text)
    return 0


def _run_update(args: argparse.Namespace) -> int:
    result = _versions(args).update(
        _fetcher(args), args.branch, switch=not args.no_switch, full_verify=not args.quick_verify
    )
    data = {
        "repo": result.repo_id,
        "previous": result.previous,
        "revision": result.revision,
        "fetched_files": result.fetched_files,
        "fetched_bytes": result.fetched_bytes,
        "reused_files": result.reused_files,
        "reused_bytes": result.reused_bytes,
        "switched": result.switched,
    }
    text = (
        f"{result.previous or '(none)'} -> {result.revision}"
        f"{'' if result.switched else ' (published, not current)'}\n"
        f"fetched {result.fetched_files} files ({result.fetched_bytes} bytes), "
        f"reused {result.reused_files} files ({result.reused_bytes} bytes)"
    )
    _out(args, data, text)
    return 0


def _run_verify(args: argparse.Namespace) -> int:
    report = _versions(args).verify(args.revision, full=not args.quick)
    clean = report.ok and not report.extra
    data: dict[str, Any] = {
        "path": str(report.path),
        "ok": clean,
        "full": report.full,
        "missing": report.missing,
        "extra": report.extra,
        "size_mismatch": report.size_mismatch,
        "hash_mismatch": report.hash_mismatch,
        "error": report.error,
    }
    lines = [f"{report.path}: {'ok' if clean else 'FAILED'}"]
    for key in ("missing", "extra", "size_mismatch", "hash_mismatch"):
        lines += [f"  {key}: {path}" for path in data[key]]
    if report.error:
        lines.append(f"  error: {report.error}")
    _out(args, data, "\n".join(lines))
    return 0 if clean else 1


def _run_prune(args: argparse.Namespace) -> int:
    removed = _versions(args).prune(args.keep, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    _out(
        args,
        {"removed": removed, "dry_run": args.dry_run},
        f"{verb} {len(removed)} revision(s)" + "".join(f"\n  {r}" for r in removed),
    )
    return 0


def _run_backup(args: argparse.Namespace) -> int:
    versions = _versions(args)
    commit = versions.resolve(args.revision)
    archive = versions.backup(commit, Path(args.archive))
    size = archive.stat().st_size
    _out(args, {"revision": commit, "archive": str(archive), "bytes": size}, f"{archive} ({size})")
    return 0


def _run_restore(args: argparse.Namespace) -> int:
    commit = _versions(args).restore(Path(args.archive), switch=args.switch)
    _out(
        args,
        {"revision": commit, "switched": args.switch},
        f"restored {commit}{' (now current)' if args.switch else ''}",
    )
    return 0


_HANDLERS = {
    "status": _run_status,
    "list": _run_list,
    "check": _run_check,
    "update": _run_update,
    "verify": _run_verify,
    "prune": _run_prune,
    "backup": _run_backup,
    "restore": _run_restore,
}
