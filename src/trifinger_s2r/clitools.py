"""What every command line of the package shares: argument types and how results are printed."""

from __future__ import annotations

import argparse
import json
import math


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def add_expert_argument(parser: argparse.ArgumentParser) -> None:
    """--expert FIELD=VALUE, repeatable: changes to the scripted controller (task.expert.expert_with)."""
    parser.add_argument("--expert", action="append", default=[], metavar="FIELD=VALUE",
                        help="change the scripted controller (task.expert.ExpertConfig, JSON values; the wrench "
                             "controller's gains as hold.FIELD)")


def print_result(result: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False)
    for key, value in result.items():
        table.add_row(key, format_value(key, value))
    Console().print(table)


def format_value(key: str, value) -> str:
    """A result value as a person reads it: rates as percentages, metres as cm, radians with degrees."""
    if isinstance(value, bool) or not isinstance(value, float):
        return json.dumps(value) if isinstance(value, (dict, list)) else str(value)
    if key.endswith("_rate") or key.startswith("ci80_"):
        return f"{100 * value:.1f}%"
    if key.endswith("_m"):
        return f"{100 * value:.2f} cm"
    if key.endswith("_rad"):
        return f"{value:.3f} rad ({math.degrees(value):.1f} deg)"
    if key.endswith("_per_s"):
        return f"{value:,.0f}/s"
    return f"{value:.4g}"
