"""``quovadis push``: push a zoo model to the Hugging Face Hub."""
from __future__ import annotations


def run(args) -> int:
    import zoo
    url = zoo.push_to_hub(args.model, args.repo_id, weights=args.weights, private=args.private)
    print(f"pushed {args.model} to {args.repo_id}: {url}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("push", help="push a zoo model (with --weights) to the Hugging Face Hub")
    p.add_argument("model", help="zoo name")
    p.add_argument("repo_id")
    p.add_argument("--weights", default=None)
    p.add_argument("--private", action="store_true")
    p.set_defaults(func=run)
