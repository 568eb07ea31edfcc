"""``sizewise search QUERY``: GGUF repositories on the Hugging Face Hub, most downloaded first."""

from __future__ import annotations

import argparse
import json

from sizewise.commands import CliContext
from sizewise.core.hub.browse import SORT_KEYS, HubBrowser


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("search", help="search the Hugging Face Hub for GGUF models")
    p.add_argument("query", metavar="QUERY", help="words in the repository name, e.g. 'smollm2'")
    p.add_argument("--sort", choices=SORT_KEYS, default="downloads", help="order of the results (default: downloads)")
    p.add_argument("--limit", type=int, default=20, help="results per page (default 20)")
    p.add_argument("--page", type=int, default=0, help="page number, from 0")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: CliContext) -> int:
    page = HubBrowser().search(args.query, sort=args.sort, page=args.page, page_size=args.limit)
    if args.json:
        out = {
            "query": page.query,
            "sort": page.sort,
            "page": page.page,
            "has_more": page.has_more,
            "results": [r.to_dict() for r in page.items],
        }
        print(json.dumps(out, indent=2))
        return 0
    if not page.items:
        print(f"No GGUF repositories match {args.query!r}.")
        return 0
    width = max(len(r.repo_id) for r in page.items)
    print(f"{'repository':<{width}}  {'downloads':>10}  {'likes':>6}  {'updated':<10}  license")
    for r in page.items:
        flags = " (gated)" if r.gated else ""
        updated = (r.last_modified or "")[:10]
        print(f"{r.repo_id:<{width}}  {r.downloads:>10,}  {r.likes:>6,}  {updated:<10}  {r.license or '?'}{flags}")
    if page.has_more:
        print(f"More results: --page {page.page + 1}")
    return 0
