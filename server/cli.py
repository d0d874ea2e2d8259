"""``xiaowu`` command line: serve, config check, db upgrade, kiosk provision,
citizen-token, clerk add/passwd."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from server import demo, kiosks
from server.accounts import ClerkSpec, create_clerk, set_password
from server.catalogue import KioskConfig
from server.catalogue_loader import ConfigFileError, load_kiosk_config
from server.citizen_tokens import TokenPolicy, mint
from server.errors import XiaowuError
from server.log_setup import configure
from server.passwords import generate_password
from server.settings import Settings
from server.storage.database import Database

EXIT_CONFIG = 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", type=Path, help="database and blobs (default ./var)")
    parser.add_argument("--config-dir", type=Path, help="kiosk_config directory")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xiaowu", description="晓屋 Xiaowu server")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    _common(serve)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--demo", action="store_true", default=None,
                       help="create demo clerks and booths, print their one-time secrets")

    config = sub.add_parser("config", help="kiosk_config tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    _common(config_sub.add_parser("check", help="validate kiosk_config and exit"))

    db = sub.add_parser("db", help="database tools")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    _common(db_sub.add_parser("upgrade", help="apply migrations"))

    kiosk = sub.add_parser("kiosk", help="booth devices")
    kiosk_sub = kiosk.add_subparsers(dest="kiosk_command", required=True)
    provision = kiosk_sub.add_parser("provision", help="one-time code for a booth")
    _common(provision)
    provision.add_argument("hut_id")

    token = sub.add_parser("citizen-token", help="mint a signed entry token (testing)")
    _common(token)
    token.add_argument("--sub", default="test-citizen")
    token.add_argument("--name")
    token.add_argument("--ttl", type=int, default=3600, help="seconds")

    clerk = sub.add_parser("clerk", help="clerk accounts")
    clerk_sub = clerk.add_subparsers(dest="clerk_command", required=True)
    add = clerk_sub.add_parser("add", help="create a clerk; prints a one-time password")
    _common(add)
    add.add_argument("username")
    add.add_argument("--name", required=True, help="display name")
    add.add_argument("--department", required=True)
    add.add_argument("--role", default="clerk", choices=["clerk", "supervisor", "admin"])
    add.add_argument("--skills", default="", help="comma-separated matter codes/categories")
    add.add_argument("--jurisdictions", default="", help="comma-separated region codes")
    add.add_argument("--languages", default="zh")
    passwd = clerk_sub.add_parser("passwd", help="reset a password (printed, one-time)")
    _common(passwd)
    passwd.add_argument("username")

    purge = sub.add_parser("purge", help="retention: remove old recordings and unused drafts")
    _common(purge)
    purge.add_argument("--recordings-days", type=_days, default=None,
                       help="remove call recordings older than this many days")
    purge.add_argument("--drafts-days", type=_days, default=None,
                       help="remove cases still in draft (nothing captured) after this")
    purge.add_argument("--dry-run", action="store_true", help="report, remove nothing")
    return parser


def _days(value: str) -> int:
    days = int(value)
    if days < 1:
        raise argparse.ArgumentTypeError("at least 1 day")
    return days


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("data_dir", "config_dir", "host", "port", "demo"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = _settings(args)
    configure(json=settings.log_json)
    try:
        config = load_kiosk_config(settings.config_dir)
    except ConfigFileError as exc:
        print(f"配置错误 configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return _dispatch(args, settings, config)
    except XiaowuError as exc:
        print(f"{exc.code}: {exc.message}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace, settings: Settings, config: KioskConfig) -> int:
    if args.command == "serve":
        return _serve(settings, config)
    if args.command == "config":
        print(f"ok: {len(config.huts)} huts, {len(config.matters)} matters, "
              f"{len(config.regions)} regions, {len(config.partner_cities)} partner cities")
        return 0
    if args.command == "db":
        asyncio.run(_with_db(settings, _nothing))
        print("database is at the newest revision")
        return 0
    if args.command == "kiosk":
        return asyncio.run(_provision(settings, config, args.hut_id))
    if args.command == "citizen-token":
        policy = TokenPolicy(settings.token_secret(), settings.citizen_token_audience,
                             settings.citizen_token_max_age_s)
        token = mint(policy, args.sub, ttl_s=args.ttl, name=args.name)
        print(token)
        print(f"{settings.base_url}/m/?t={token}")
        return 0
    if args.command == "clerk":
        return asyncio.run(_clerk(settings, config, args))
    if args.command == "purge":
        if args.recordings_days is None and args.drafts_days is None:
            print("nothing to purge: give --recordings-days and/or --drafts-days",
                  file=sys.stderr)
            return 2
        return asyncio.run(_purge(settings, args))
    raise AssertionError(args.command)


async def _purge(settings: Settings, args: argparse.Namespace) -> int:
    from server.retention import purge

    async def run(db: Database) -> dict[str, int]:
        report = await purge(db, settings.recordings_dir, recordings_days=args.recordings_days,
                             drafts_days=args.drafts_days, dry_run=args.dry_run)
        return report.as_dict()

    counts = await _with_db(settings, run)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb}: {counts['recordings']} recordings ({counts['recording_files']} files), "
          f"{counts['drafts']} draft cases")
    return 0


async def _nothing(_db: Database) -> None:
    return None


async def _with_db(settings: Settings, action: Any) -> Any:
    """Run ``action`` on a database brought to the newest schema first."""
    db = Database(settings.effective_database_url)
    try:
        await db.upgrade()
        return await action(db)
    finally:
        await db.close()


async def _provision(settings: Settings, config: KioskConfig, hut_id: str) -> int:
    try:
        hut = config.hut(hut_id)
    except KeyError:
        print(f"unknown hut {hut_id!r}; known: {', '.join(h.id for h in config.huts)}",
              file=sys.stderr)
        return 1

    async def create(db: Database) -> str:
        async with db.begin() as conn:
            return await kiosks.create_code(
                conn, hut.id, ttl=timedelta(seconds=settings.provision_code_ttl_s))

    code = await _with_db(settings, create)
    hours = settings.provision_code_ttl_s // 3600
    print(f"{hut.name_zh} / {hut.name_en}")
    print(f"开通码 provisioning code (一次性, {hours} 小时内有效 / one-time, {hours} h): {code}")
    print(f"{settings.base_url}/kiosk/?provision={code}")
    return 0


async def _clerk(settings: Settings, config: KioskConfig, args: argparse.Namespace) -> int:
    password = generate_password()

    async def run(db: Database) -> None:
        async with db.begin() as conn:
            if args.clerk_command == "add":
                spec = ClerkSpec(args.username, args.name, args.department, args.role,
                                 _split(args.skills), _split(args.jurisdictions),
                                 _split(args.languages))
                _check_clerk(config, spec)
                await create_clerk(conn, spec, password, must_change=True)
            else:
                await set_password(conn, args.username, password, must_change=True)

    await _with_db(settings, run)
    print(f"一次性密码 one-time password for {args.username}: {password}")
    print("首次登录后须修改 / must be changed at first login")
    return 0


def _check_clerk(config: KioskConfig, spec: ClerkSpec) -> None:
    known_regions = {r.code for r in config.regions} | config.partner_codes
    bad = [s for s in spec.skills if not config.is_known_skill(s)]
    bad += [j for j in spec.jurisdictions if j not in known_regions]
    try:
        config.department(spec.department)
    except KeyError:
        bad.append(spec.department)
    if bad:
        raise XiaowuError("未知的技能、辖区或部门", f"unknown skill/region/department: {bad}",
                          code="invalid_clerk", status=400)


def _serve(settings: Settings, config: KioskConfig) -> int:
    from aiohttp import web

    from server.app import create_app

    if settings.demo:
        print(asyncio.run(_demo(settings, config)), flush=True)
    app = create_app(settings, config=config)
    print(f"晓屋 Xiaowu listening on http://{settings.host}:{settings.port}/", flush=True)
    web.run_app(app, host=settings.host, port=settings.port, print=None,
                access_log=None)
    return 0


async def _demo(settings: Settings, config: KioskConfig) -> str:
    async def run(db: Database) -> str:
        accounts = await demo.seed(db, config)
        urls = await demo.provision_demo_kiosks(db, config, settings)
        return demo.banner(accounts, urls, demo.demo_citizen_url(settings), settings)

    result: str = await _with_db(settings, run)
    return result
