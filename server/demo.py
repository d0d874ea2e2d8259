"""Demo mode: a ready-to-try city with clerks at several levels and provisioned booths.

Passwords and provisioning codes are generated afresh at every start and printed once;
only their hashes are stored, so a demo database never holds a reusable secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from server import kiosks
from server.accounts import ClerkSpec, create_clerk, set_password
from server.catalogue import KioskConfig
from server.citizen_tokens import TokenPolicy, mint
from server.passwords import generate_password
from server.settings import Settings
from server.storage import tables
from server.storage.database import Database


@dataclass(frozen=True)
class DemoAccount:
    spec: ClerkSpec
    password: str


def _region_code(config: KioskConfig, name_zh: str, fallback_level: str) -> str:
    for region in config.regions:
        if region.name_zh == name_zh:
            return region.code
    return next(r.code for r in config.regions if r.level == fallback_level)


def _department(config: KioskConfig, *hints: str) -> str:
    for hint in hints:
        for dept in config.departments:
            if hint in dept.code.lower() or hint in dept.name_zh:
                return dept.code
    return config.departments[0].code


def demo_clerks(config: KioskConfig) -> list[ClerkSpec]:
    city = _region_code(config, "东营市", "city")
    hekou = _region_code(config, "河口区", "county")
    gudao = _region_code(config, "孤岛镇", "township")
    partner = sorted(config.partner_codes)[:1]
    approval = _department(config, "approval", "审批")
    return [
        ClerkSpec("wangli", "王丽", approval, "clerk", ("*",), (city,), ("zh", "en")),
        ClerkSpec("zhaoqiang", "赵强", _department(config, "education", "教育"), "clerk",
                  ("education", "social_security", "medical_insurance"), (city,), ("zh",)),
        ClerkSpec("liuyang", "刘洋", approval, "clerk", ("*",), (hekou,), ("zh",)),
        ClerkSpec("sunmei", "孙梅", _department(config, "civil", "民政"), "clerk",
                  ("household", "civil_affairs", "social_security"), (gudao,), ("zh",)),
        ClerkSpec("chenjing", "陈静", approval, "clerk", ("*",), tuple(partner), ("zh",)),
        ClerkSpec("zhangzhuren", "张主任", approval, "supervisor", ("*",), (city,),
                  ("zh", "en")),
        ClerkSpec("admin", "系统管理员", approval, "admin", (), (city,), ("zh", "en")),
    ]


async def seed(db: Database, config: KioskConfig) -> list[DemoAccount]:
    """Create the demo clerks if missing and give each a fresh password."""
    accounts = []
    async with db.begin() as conn:
        for spec in demo_clerks(config):
            password = generate_password()
            exists = await conn.scalar(
                sa.select(tables.clerks.c.id).where(tables.clerks.c.username == spec.username)
            )
            if exists is None:
                await create_clerk(conn, spec, password, must_change=False)
            else:
                await set_password(conn, spec.username, password, must_change=False,
                                   check=False)
            accounts.append(DemoAccount(spec, password))
    return accounts


async def provision_demo_kiosks(db: Database, config: KioskConfig,
                                settings: Settings) -> list[tuple[str, str]]:
    """One-time provisioning URLs for the first hut of each level."""
    chosen: list[str] = []
    for level in ("city", "county", "township", "village"):
        first = next((h.id for h in config.huts if h.level == level), None)
        if first is not None:
            chosen.append(first)
    urls = []
    async with db.begin() as conn:
        for hut_id in chosen:
            code = await kiosks.create_code(
                conn, hut_id, ttl=timedelta(seconds=settings.provision_code_ttl_s))
            urls.append((hut_id, f"{settings.base_url}/kiosk/?provision={code}"))
    return urls


def demo_citizen_url(settings: Settings) -> str:
    policy = TokenPolicy(settings.token_secret(), settings.citizen_token_audience,
                         settings.citizen_token_max_age_s)
    token = mint(policy, "demo-citizen-001", ttl_s=8 * 3600, name="付宇航")
    return f"{settings.base_url}/m/?t={token}"


def banner(accounts: list[DemoAccount], kiosk_urls: list[tuple[str, str]],
           citizen_url: str, settings: Settings) -> str:
    lines = [
        "",
        "=" * 78,
        "晓屋 Xiaowu — 演示模式 demo mode",
        f"服务地址 server:   {settings.base_url}/",
        f"工作台 console:    {settings.base_url}/console/",
        "演示账号 demo accounts (本次启动有效的一次性密码 / passwords valid until next start):",
    ]
    for account in accounts:
        spec = account.spec
        lines.append(f"  {spec.role:<10} {spec.username:<12} {account.password:<16} "
                     f"{spec.display_name}  skills={','.join(spec.skills) or '-'}  "
                     f"jurisdictions={','.join(spec.jurisdictions)}")
    lines.append("晓屋开通链接 kiosk provisioning (一次性 / one-time):")
    lines.extend(f"  {hut_id:<24} {url}" for hut_id, url in kiosk_urls)
    lines.append(f"手机端演示入口 mobile demo entry: {citizen_url}")
    lines.append("=" * 78)
    return "\n".join(lines)

