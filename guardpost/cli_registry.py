"""``guardpost companies|sites|posts`` and ``guards show``: the registry behind attendance, from the command line."""

from __future__ import annotations

import argparse
import json

from guardpost.cli import date_arg, db_flags, session_for


def cmd_companies_add(args: argparse.Namespace) -> int:
    from server.companies import add_company

    with session_for(args) as session:
        company = add_company(
            session,
            args.company_id,
            args.name,
            home_province=args.province,
            credit_code=args.credit_code,
            filing_status=args.status,
            cross_region=args.cross_region,
        )
        session.commit()
        provinces = [filing.province for filing in company.cross_region_filings]
    extra = f"; filed to work in {', '.join(provinces)}" if provinces else ""
    print(f"added company {company.company_id} ({company.name}), filing {company.filing_status}{extra}")
    return 0


def cmd_companies_file(args: argparse.Namespace) -> int:
    from server.companies import file_cross_region, set_filing_status

    with session_for(args) as session:
        if args.status:
            set_filing_status(session, args.company_id, args.status)
        for province in args.cross_region:
            file_cross_region(session, args.company_id, province, args.filed_on)
        session.commit()
    print(f"updated the filings of company {args.company_id}")
    return 0


def cmd_sites_add(args: argparse.Namespace) -> int:
    from server.companies import add_site

    with session_for(args) as session:
        site = add_site(
            session,
            args.site_id,
            args.name or args.site_id,
            tz=args.tz,
            company_id=args.company,
            address=args.address or "",
            province=args.province,
        )
        session.commit()
    print(f"added site {site.site_id} ({site.name}), time zone {site.timezone}")
    return 0


def cmd_sites_set(args: argparse.Namespace) -> int:
    from server.companies import update_site

    with session_for(args) as session:
        site = update_site(
            session,
            args.site_id,
            name=args.name,
            tz=args.tz,
            company_id=args.company,
            address=args.address,
            province=args.province,
        )
        session.commit()
    print(f"updated site {site.site_id} ({site.name}), time zone {site.timezone}")
    return 0


def cmd_posts_add(args: argparse.Namespace) -> int:
    from server.companies import add_post

    with session_for(args) as session:
        post = add_post(session, args.post_id, args.site, args.name)
        session.commit()
    print(f"added post {post.post_id} ({post.name}) at site {post.site_id}")
    return 0


def _minute(moment: str) -> str:
    return moment[:16].replace("T", " ") + " UTC"


def cmd_guards_show(args: argparse.Namespace) -> int:
    from server.guard_records import guard_summary

    with session_for(args) as session:
        document = guard_summary(session, args.guard_id)
    if args.json:
        print(json.dumps(document, ensure_ascii=False, indent=2))
        return 0
    print(f"{document['guard_id']}  {document['name']}")
    fields = (("ID number", "id_number_masked"), ("born", "birth_date"), ("sex", "sex"), ("employer", "company_id"))
    for label, key in fields:
        print(f"  {label + ':':<13}{document[key] or '-'}")
    print(f"  {'certificate:':<13}{document['certificate_status']}")
    print("  trajectory:" + ("" if document["trajectory"] else " none"))
    for entry in document["trajectory"]:
        start, end = _minute(entry["start"]), _minute(entry["end"]) if entry["end"] else "now"
        print(f"    {start} .. {end}  {entry['company_id'] or '(company unknown)'} at {entry['site_id']}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from server.models import FILING_STATUSES

    companies = sub.add_parser("companies", help="security companies and their police filings")
    actions = companies.add_subparsers(dest="action", required=True)
    p = actions.add_parser("add", help="register a company")
    p.add_argument("company_id")
    p.add_argument("--name", required=True)
    p.add_argument("--province", required=True, help="home province: code (44 or 440000) or name (广东省)")
    p.add_argument("--credit-code", help="unified social credit code (统一社会信用代码), 18 characters")
    p.add_argument("--status", choices=FILING_STATUSES, default="pending", help="police filing (备案) status")
    p.add_argument("--cross-region", action="append", default=[], help="province filed for cross-region work")
    db_flags(p)
    p.set_defaults(func=cmd_companies_add)

    p = actions.add_parser("file", help="record a filing: status change or cross-region filing")
    p.add_argument("company_id")
    p.add_argument("--status", choices=FILING_STATUSES)
    p.add_argument("--cross-region", action="append", default=[], help="province filed for cross-region work")
    p.add_argument("--filed-on", type=date_arg, help="date of the cross-region filing (YYYY-MM-DD)")
    db_flags(p)
    p.set_defaults(func=cmd_companies_file)

    sites = sub.add_parser("sites", help="guarded sites").add_subparsers(dest="action", required=True)
    for name, func, text in (("add", cmd_sites_add, "register a site"), ("set", cmd_sites_set, "change a site")):
        p = sites.add_parser(name, help=text)
        p.add_argument("site_id")
        p.add_argument("--name")
        p.add_argument("--tz", required=name == "add", help="IANA time zone, e.g. Asia/Shanghai")
        p.add_argument("--company", help="the company guarding the site")
        p.add_argument("--address")
        p.add_argument("--province", help="code or name")
        db_flags(p)
        p.set_defaults(func=func)

    posts = sub.add_parser("posts", help="duty posts at sites").add_subparsers(dest="action", required=True)
    p = posts.add_parser("add", help="add a duty post (gate, watch point) to a site")
    p.add_argument("post_id")
    p.add_argument("--site", required=True)
    p.add_argument("--name", required=True)
    db_flags(p)
    p.set_defaults(func=cmd_posts_add)
