"""Command line: parse, build configs, call the library (taxodiff.api, the studies). Heavy imports happen
inside the commands; every error of the user's making is one line and exit code 2.

    taxodiff data preview | train | sample | evaluate | audit | export | demo | study <name>
    taxodiff <family> train|sample|evaluate
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from taxodiff.errors import TaxodiffError


def main(argv: list[str] | None = None) -> int:
    from taxodiff import profiling
    from taxodiff.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    if getattr(args, "profile", False):
        profiling.enable()
    try:
        return _dispatch(args)
    except TaxodiffError as e:
        print(f"taxodiff: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("taxodiff: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        sys.stderr.close()
        return 0
    finally:
        if profiling.enabled() and not sys.stderr.closed:
            print(profiling.table(), file=sys.stderr)


def _keys(args: argparse.Namespace) -> dict[str, Any]:
    """Values of the flags that set config keys (the ``key:<dotted>`` destinations)."""
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("key:") and v is not None}


def _config(args: argparse.Namespace, extra: dict[str, Any] | None = None, under: dict[str, Any] | None = None) -> Any:
    from taxodiff import config

    overrides = {"seed": args.seed, "device": args.device, **(extra or {}), **dict(getattr(args, "sets", []))}
    return config.load(args.config, {k: v for k, v in overrides.items() if v is not None}, under)


def _dispatch(args: argparse.Namespace) -> int:
    verb = getattr(args, "verb", None)
    if verb is not None:  # a family's own verb
        return int(verb.run(args, _config(args) if verb.takes_config else None))
    command = getattr(args, "alias_command", None) or args.command
    if command == "data":
        from taxodiff import api

        print(api.preview(_config(args), args.out, args.n))
        return 0
    if command == "train":
        return _train(args)
    if command in ("sample", "evaluate"):
        return _sample(args, command)
    if command == "add-class":
        return _add_class(args)
    if command == "demo":
        return _demo(args)
    if command == "audit":
        return _audit(args)
    if command == "export":
        from taxodiff import api

        out, n = api.export(args.run_dir, args.tag, args.out)
        print(f"{n:,} images written to {out}")
        return 0
    if command == "study":
        return _study(args)
    raise AssertionError(command)


def _add_class(args: argparse.Namespace) -> int:
    from taxodiff import api

    overrides = {"seed": args.seed, "device": args.device, "train.steps": args.train_steps, **dict(args.sets)}
    cfg = api.add_class_config(
        args.parent, args.label, args.under, {k: v for k, v in overrides.items() if v is not None}
    )
    summary = api.train(cfg, args.run_dir, progress=not args.quiet)
    print(f"added class {args.label!r} to {args.parent} in {summary['seconds']} s: {args.run_dir}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from taxodiff import config

    cfg = _config(args, {"model": args.model, "train.steps": args.train_steps, **_keys(args)})
    run_dir = args.run_dir or Path("runs") / cfg.model
    if args.dry_run:
        print(config.dump_yaml(cfg), end="")
        return 0
    from taxodiff import api
    from taxodiff.train.distributed import finish_distributed

    summary = api.train(cfg, run_dir, resume=not args.no_resume, progress=not args.quiet)
    if summary["is_main"]:
        world = f" on {summary['processes']} processes" if summary["processes"] > 1 else ""
        print(f"trained {summary['model']} to step {summary['steps']} in {summary['seconds']} s{world}: {run_dir}")
    finish_distributed()
    return 0


def _sample(args: argparse.Namespace, command: str) -> int:
    from taxodiff import api

    overrides = {k.split(".", 1)[1]: v for k, v in _keys(args).items()}
    if getattr(args, "alias_command", None):  # ``taxodiff <family> sample``: a run of that family only
        _, stored, _ = api.stored_config(args.run_dir)
        if stored.model != args.command:
            raise TaxodiffError(
                f"run directory {str(args.run_dir)!r} holds a {stored.model!r} run: `taxodiff {args.command} "
                f"{command}` takes a {args.command!r} run (or use `taxodiff {command}`)"
            )
    if command == "sample":
        path, _ = api.sample(args.run_dir, overrides, args.seed, args.device, not args.quiet)
        print(path)
        return 0
    result = api.evaluate(args.run_dir, overrides, args.seed, args.device, not args.quiet)
    print(api.describe(result, result["model"]))
    print(args.run_dir / "eval.json")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from taxodiff import api

    if args.config is None:
        raise TaxodiffError(
            "--config is missing: give the config naming the data source (with class labels) and its class tree"
        )
    from taxodiff.evaluate.results import ImageEvaluation

    result = api.audit(_config(args), args.samples, args.out, args.device, not args.quiet)
    print(ImageEvaluation(result).describe())
    print(f"report: {args.out / 'report.md'} and {args.out / 'report.html'}; scores: {args.out / 'eval.json'}")
    return 0


def _study(args: argparse.Namespace) -> int:
    from taxodiff.studies import STUDIES, run_study
    from taxodiff.studies.runner import default_workers

    st = STUDIES.get(args.study)
    preset = st.preset(args.preset, **{k: getattr(args, k, None) for k in st.options()})
    cfg = _config(args, under={**st.defaults, **preset.base})
    run_study(st, cfg, preset, args.out, not args.quiet, args.workers or default_workers(st, cfg.device))
    print(f"report: {args.out / 'report.md'} and {args.out / 'report.html'}; rows: {args.out / 'results.jsonl'}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    """The mode-collapse study's demo preset, its higher guidance scale and seeds from the flags."""
    from dataclasses import replace

    from taxodiff.studies import STUDIES, run_study

    st = STUDIES.get("mode-collapse")
    preset = st.preset("demo", seeds=args.seeds)
    preset = replace(preset, scales=(0.0,) if args.guidance == 0 else (0.0, args.guidance))  # type: ignore[call-arg]
    cfg = _config(args, {"train.steps": args.train_steps, "sample.n_per_category": args.n_per_category})
    run_study(st, cfg, preset, args.out, not args.quiet)
    print(f"report: {args.out / 'report.md'} and {args.out / 'report.html'}; table: {args.out / 'summary.json'}")
    return 0
