"""The argument parser, built from the registries: families (``--model`` choices, their flags, aliases) and
studies (``taxodiff study <name>``). Importing this module imports no torch."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from taxodiff import __version__
from taxodiff.cli.flags import family_flags, key_value, value_type


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _positive(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v} is not allowed: allowed is an integer >= 1")
    return v


def _nonneg_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"{v} is not allowed: allowed is a number >= 0")
    return v


def _common(p: argparse.ArgumentParser, config: bool = True) -> None:
    if config:
        p.add_argument("--config", type=Path, help="YAML run config (defaults: see taxodiff.config)")
        p.add_argument(
            "--set", dest="sets", type=key_value, action="append", default=[], metavar="KEY=VALUE",
            help="set any config key, e.g. --set train.steps=300 (repeatable)",
        )  # fmt: skip
    p.add_argument("--seed", type=value_type("seed"), help="root seed (default: the config's, 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="default: auto")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _key_flags(p: argparse.ArgumentParser, verb: str, only: dict[str, tuple[str, str]] | None = None) -> None:
    for flag, (key, text) in (only if only is not None else family_flags(verb)).items():
        metavar = key.rsplit(".", 1)[-1].upper()
        p.add_argument(flag, dest=f"key:{key}", type=value_type(key), metavar=metavar, help=f"{text} [{key}]")


def _train(sub: argparse._SubParsersAction, model: str | None = None) -> None:
    from taxodiff.families import FAMILIES

    tr = sub.add_parser("train", help="train a model (resumes an interrupted run)")
    _common(tr)
    if model is None:
        tr.add_argument("--model", choices=FAMILIES.names(), help="model family (default: the config's)")
        _key_flags(tr, "train")
    else:
        tr.set_defaults(model=model)
        _key_flags(tr, "train", _only(model, sample=False))
    tr.add_argument("--run-dir", type=Path, help="default: runs/<model>")
    tr.add_argument("--train-steps", type=value_type("train.steps"), help="override train.steps")
    tr.add_argument("--no-resume", action="store_true", help="refuse to continue an existing run")
    tr.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")


def _only(model: str, sample: bool) -> dict[str, tuple[str, str]]:
    from taxodiff.families import get_family

    return {f: (k, t) for f, (k, t) in get_family(model).flags.items() if k.startswith("sample.") == sample}


def _sample(sub: argparse._SubParsersAction, model: str | None = None) -> None:
    for name, text in (
        ("sample", "sample a trained run; writes samples/ and a figure"),
        ("evaluate", "score a trained run's samples; writes eval.json"),
    ):
        sp = sub.add_parser(name, help=text)
        _common(sp, config=False)
        sp.add_argument("--run-dir", type=Path, required=True)
        _key_flags(sp, "sample", None if model is None else _only(model, sample=True))


def _branches(sub: argparse._SubParsersAction) -> None:
    """``branches``: branch discovery alone, repeated over seeds."""
    br = sub.add_parser("branches", help="discover branch points: when classes merge under forward diffusion")
    _common(br)
    br.add_argument("--out", type=Path, default=Path("runs/branches"))
    br.add_argument("--per-class", type=_positive, default=100, help="training images per class (default 100)")
    br.add_argument("--times", type=_positive, default=1000, help="time grid points in [0, 1] (default 1000)")
    br.add_argument("--draws", type=_positive, default=1, help="noise draws per time point (default 1)")
    br.add_argument("--eps", type=_nonneg_float, default=0.005, help="crossing tolerance (default 0.005)")
    br.add_argument("--smooth", type=_nonneg_float, default=3.0, help="smoothing, in grid steps (default 3)")
    br.add_argument("--seeds", type=_positive, default=1, help="repeat over seeds; reports clade recurrence")
    br.add_argument(
        "--min-length", type=_nonneg_float, default=0.0,
        help="shortest branch, in units of time: shorter internal branches merge into the one above (default 0)",
    )  # fmt: skip


def _continual(sub: argparse._SubParsersAction) -> None:
    """``add-class`` (extend a branched or labelled run by one class) and ``transmute`` (a branched run)."""
    ac = sub.add_parser("add-class", help="continual learning: extend a branched or labelled run by one class")
    _common(ac, config=False)
    ac.add_argument("--parent", type=Path, required=True, help="the trained run to extend")
    ac.add_argument("--class", dest="label", required=True, help="the new class (a label of the data source)")
    ac.add_argument("--under", required=True, help="the category of the class tree it joins")
    ac.add_argument("--run-dir", type=Path, required=True, help="the new run")
    ac.add_argument("--train-steps", type=value_type("train.steps"), help="steps (default: the parent's)")
    ac.add_argument(
        "--set", dest="sets", type=key_value, action="append", default=[], metavar="KEY=VALUE",
        help="set a config key of the new run, e.g. --set train.continual_data=all (labelled)",
    )  # fmt: skip
    tm = sub.add_parser("transmute", help="turn training images of class A into class B down a branched run's tree")
    _common(tm, config=False)
    tm.add_argument("--run-dir", type=Path, required=True)
    tm.add_argument("--from", dest="source_class", help="class A (default: every ordered pair)")
    tm.add_argument("--to", dest="target_class", help="class B (with --from)")
    tm.add_argument("--n", type=_positive, default=16, help="images per pair (default 16)")
    tm.add_argument("--scale", type=_nonneg_float, default=1.0, help="multiplies each pair's branch time (default 1)")
    tm.add_argument("--out", type=Path, help="default: <run-dir>/transmute")


def build_parser() -> argparse.ArgumentParser:
    from taxodiff.families import FAMILIES
    from taxodiff.studies import STUDIES

    ap = Parser(prog="taxodiff", description="Hierarchical diffusion models on data with a known hierarchy.")
    ap.add_argument("--version", action="version", version=f"taxodiff {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=Parser)

    data = sub.add_parser("data", help="look at the training data")
    dsub = data.add_subparsers(dest="data_command", required=True, parser_class=Parser)
    prev = dsub.add_parser("preview", help="write a PNG grid of training images per category")
    _common(prev)
    prev.add_argument("--out", type=Path, default=Path("preview.png"))
    prev.add_argument("--n", type=_positive, default=32, help="images per category")

    _train(sub)
    _sample(sub)

    _branches(sub)
    _continual(sub)

    demo = sub.add_parser("demo", help="train the compared families, sample, evaluate, write a report")
    _common(demo)
    demo.add_argument("--out", type=Path, default=Path("runs/demo"))
    demo.add_argument("--guidance", type=_nonneg_float, default=3.0, help="the higher guidance scale shown")
    demo.add_argument("--seeds", type=_positive, default=1, help="training seeds (the config's seed, +1, ...)")
    demo.add_argument("--train-steps", type=value_type("train.steps"), help="override train.steps")
    demo.add_argument("--n-per-category", type=value_type("sample.n_per_category"), help="samples per category")

    study = sub.add_parser("study", help="run a study: a grid of trainings and samplings with a report")
    ssub = study.add_subparsers(dest="study", required=True, parser_class=Parser)
    for st in STUDIES.all():
        sp = ssub.add_parser(st.name, help=st.help)
        _common(sp)
        presets = ", ".join(f"{k}: {v}" for k, v in st.presets.items())
        sp.add_argument("--preset", choices=tuple(st.presets), default=next(iter(st.presets)), help=presets)
        sp.add_argument("--out", type=Path, default=Path(st.default_out))
        if "seeds" in st.options:
            sp.add_argument("--seeds", type=_positive, help="number of seeds (default: the preset's)")
        if "run_dir" in st.options:
            sp.add_argument("--run-dir", type=Path, help="a trained run to use (default: train one under --out)")

    for fam in FAMILIES.all():
        if fam.cli_alias:
            alias = sub.add_parser(fam.name, help=f"{fam.summary} (train, sample, evaluate)")
            asub = alias.add_subparsers(dest="alias_command", required=True, parser_class=Parser)
            _train(asub, fam.name)
            _sample(asub, fam.name)
            if fam.extends_parent:
                _continual(asub)
    return ap
