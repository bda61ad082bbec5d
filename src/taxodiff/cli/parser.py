"""The argument parser, built from the registries: families (``--model`` choices, their flags, aliases) and
studies (``taxodiff study <name>``). Importing this module imports no torch."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from taxodiff import __version__
from taxodiff.argtypes import budget_factors, nonneg_float, positive_int
from taxodiff.cli.flags import family_flags, key_value, value_type


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _sets(p: argparse.ArgumentParser, text: str) -> None:
    """``--set KEY=VALUE``, repeatable: any config key."""
    p.add_argument("--set", dest="sets", type=key_value, action="append", default=[], metavar="KEY=VALUE", help=text)


def _common(p: argparse.ArgumentParser, config: bool = True) -> None:
    if config:
        p.add_argument("--config", type=Path, help="YAML run config (defaults: see taxodiff.config)")
        _sets(p, "set any config key, e.g. --set train.steps=300 (repeatable)")
    p.add_argument("--seed", type=value_type("seed"), help="root seed (default: the config's, 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="default: auto")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--profile", action="store_true", help="print where the seconds went (stderr) at the end")


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

    flags = get_family(model).commands.flags
    return {f: (k, t) for f, (k, t) in flags.items() if k.startswith("sample.") == sample}


def _sample(sub: argparse._SubParsersAction, model: str | None = None) -> None:
    for name, text in (
        ("sample", "sample a trained run; writes samples/ and a figure"),
        ("evaluate", "score a trained run's samples; writes eval.json"),
    ):
        sp = sub.add_parser(name, help=text)
        _common(sp, config=False)
        sp.add_argument("--run-dir", type=Path, required=True)
        _key_flags(sp, "sample", None if model is None else _only(model, sample=True))


def _add_class(sub: argparse._SubParsersAction) -> None:
    """``add-class``: extend a run of a family that takes a parent run by one class (continual learning)."""
    from taxodiff.families import extending

    takers = " or ".join(f.name for f in extending())
    ac = sub.add_parser("add-class", help=f"continual learning: extend a {takers} run by one class")
    _common(ac, config=False)
    ac.add_argument("--parent", type=Path, required=True, help="the trained run to extend")
    ac.add_argument("--class", dest="label", required=True, help="the new class (a label of the data source)")
    ac.add_argument("--under", required=True, help="the category of the class tree it joins")
    ac.add_argument("--run-dir", type=Path, required=True, help="the new run")
    ac.add_argument("--train-steps", type=value_type("train.steps"), help="steps (default: the parent's)")
    _sets(ac, "set a config key of the new run, e.g. --set train.continual_data=all")


def _verb(sub: argparse._SubParsersAction, verb: Any) -> None:
    """A family's own verb (its arguments, the common ones, its function)."""
    p = sub.add_parser(verb.name, help=verb.help)
    _common(p, config=verb.takes_config)
    verb.arguments(p)
    p.set_defaults(verb=verb)


def _alias(sub: argparse._SubParsersAction, fam: Any) -> None:
    """``taxodiff <family> train|sample|evaluate|<its verbs>``: the verbs for runs of one family."""
    alias = sub.add_parser(fam.name, help=f"{fam.summary} (train, sample, evaluate)")
    asub = alias.add_subparsers(dest="alias_command", required=True, parser_class=Parser)
    _train(asub, fam.name)
    _sample(asub, fam.name)
    if fam.extends_parent:
        _add_class(asub)
    for verb in fam.commands.verbs:
        _verb(asub, verb)


# every study's --workers
WORKERS = (
    "training runs at once, each on its share of the CPU threads (default on a CPU: {n}, at most one per CPU; 1 on "
    "a GPU; on 2 cores 2 finish small networks sooner: benchmarks/bench_workers.py); each run's seconds are then "
    "those of a run sharing the machine"
)
# the preset fields a study may offer as flags (Study.options): flag, type, help
STUDY_OPTIONS = {
    "seeds": ("--seeds", positive_int, "number of seeds (default: the preset's)"),
    "run_dir": ("--run-dir", Path, "a trained run to use (default: train one under --out)"),
    "families": ("--families", _names, "these families only, comma-separated (default: all)"),
    "budgets": (
        "--budgets",
        budget_factors,
        "run the budget trend instead: both methods at these multiples of the tree phases' steps, clustering "
        "only (e.g. 1,2,4; one budget alone, and the others later into the same --out, which keeps its rows)",
    ),
}


def _study(sub: argparse._SubParsersAction) -> None:
    from taxodiff.studies import STUDIES

    study = sub.add_parser("study", help="run a study: a grid of trainings and samplings with a report")
    ssub = study.add_subparsers(dest="study", required=True, parser_class=Parser)
    for st in STUDIES.all():
        sp = ssub.add_parser(st.name, help=st.help)
        _common(sp)
        presets = ", ".join(f"{k}: {p.help}" for k, p in st.presets.items())
        sp.add_argument("--preset", choices=tuple(st.presets), default=next(iter(st.presets)), help=presets)
        sp.add_argument("--out", type=Path, default=Path(st.default_out))
        sp.add_argument("--workers", type=positive_int, help=WORKERS.format(n=st.workers))
        for name in st.options():
            flag, kind, text = STUDY_OPTIONS[name]
            sp.add_argument(flag, type=kind, help=text)


def build_parser() -> argparse.ArgumentParser:
    from taxodiff.families import FAMILIES

    ap = Parser(prog="taxodiff", description="Hierarchical diffusion models on data with a known hierarchy.")
    ap.add_argument("--version", action="version", version=f"taxodiff {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=Parser)

    data = sub.add_parser("data", help="look at the training data")
    dsub = data.add_subparsers(dest="data_command", required=True, parser_class=Parser)
    prev = dsub.add_parser("preview", help="write a PNG grid of training images per category")
    _common(prev)
    prev.add_argument("--out", type=Path, default=Path("preview.png"))
    prev.add_argument("--n", type=positive_int, default=32, help="images per category")

    _train(sub)
    _sample(sub)
    _add_class(sub)
    for fam in FAMILIES.all():
        for verb in fam.commands.verbs:
            _verb(sub, verb)

    au = sub.add_parser("audit", help="score images any generator made against a data source with class labels")
    _common(au)
    au.add_argument("--samples", type=Path, required=True, help="a folder per asked category, or a safetensors file")
    au.add_argument("--out", type=Path, default=Path("runs/audit"), help="eval.json, report and figures go here")
    ex = sub.add_parser("export", help="write a run's samples as PNG files, a folder per asked category")
    ex.add_argument("--run-dir", type=Path, required=True)
    ex.add_argument("--tag", help="which samples file (default: the run's default samples)")
    ex.add_argument("--out", type=Path, required=True, help="a new folder")

    demo = sub.add_parser("demo", help="train the compared families, sample, evaluate, write a report")
    _common(demo)
    demo.add_argument("--out", type=Path, default=Path("runs/demo"))
    demo.add_argument("--guidance", type=nonneg_float, default=3.0, help="the higher guidance scale shown")
    demo.add_argument("--seeds", type=positive_int, default=1, help="training seeds (the config's seed, +1, ...)")
    demo.add_argument("--train-steps", type=value_type("train.steps"), help="override train.steps")
    demo.add_argument("--n-per-category", type=value_type("sample.n_per_category"), help="samples per category")

    _study(sub)

    for fam in FAMILIES.all():
        if fam.commands.alias:
            _alias(sub, fam)
    return ap
