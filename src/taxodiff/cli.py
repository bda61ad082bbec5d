"""Command line: parse, build configs, call the library. Heavy imports happen inside the commands.

taxodiff data preview | train | sample | evaluate | demo | study mode-collapse
taxodiff rhm train | sample | evaluate | study rhm-learning | rhm-phase-transition
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from taxodiff import __version__
from taxodiff.errors import TaxodiffError

SAMPLERS = ("ddpm", "ddim", "dpmsolver++")
GUIDANCE_METHODS = ("cfg", "interval", "cads")
PRESETS = ("quick", "full")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _nonneg_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not an integer") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"{v} is negative: allowed is an integer >= 0")
    return v


def _pos_int(s: str) -> int:
    v = _nonneg_int(s)
    if v == 0:
        raise argparse.ArgumentTypeError("0 is not allowed: allowed is an integer >= 1")
    return v


def _nonneg_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a number") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"{v} is not allowed: allowed is a number >= 0")
    return v


def _common(p: argparse.ArgumentParser, config: bool = True) -> None:
    if config:
        p.add_argument("--config", type=Path, help="YAML run config (defaults: see taxodiff.config)")
    p.add_argument("--seed", type=_nonneg_int, help="root seed (default: the config's, 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="default: auto")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _sampling(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sampler", choices=SAMPLERS)
    p.add_argument("--steps", type=_pos_int, help="sampling steps (network evaluations per sample, x2 if guided)")
    p.add_argument("--guidance", type=_nonneg_float, help="classifier-free guidance scale; 0 = conditional model")
    p.add_argument("--prior-guidance", type=_nonneg_float, help="hierarchical model: guidance of the z1 prior")
    p.add_argument(
        "--guidance-method", choices=GUIDANCE_METHODS, help="cfg (default), interval (guide mid-noise only), cads"
    )
    p.add_argument("--n-per-category", type=_pos_int, help="samples per category")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="taxodiff", description="Hierarchical diffusion models on data with a known hierarchy.")
    ap.add_argument("--version", action="version", version=f"taxodiff {__version__}")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)

    data = sub.add_parser("data", help="look at the synthetic data")
    dsub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    prev = dsub.add_parser("preview", help="write a PNG grid of training images per category")
    _common(prev)
    prev.add_argument("--out", type=Path, default=Path("preview.png"))
    prev.add_argument("--n", type=_pos_int, default=32, help="images per category")

    tr = sub.add_parser("train", help="train a model (resumes an interrupted run)")
    _common(tr)
    tr.add_argument("--model", choices=("flat", "hierarchical"), help="model family (default: the config's)")
    tr.add_argument("--run-dir", type=Path, help="default: runs/<model>")
    tr.add_argument("--train-steps", type=_pos_int, help="override train.steps")
    tr.add_argument("--no-resume", action="store_true", help="refuse to continue an existing run")
    tr.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")

    for name, text in (
        ("sample", "sample a trained run; writes samples/ and a grid PNG"),
        ("evaluate", "score a trained run's samples; writes eval.json"),
    ):
        sp = sub.add_parser(name, help=text)
        _common(sp, config=False)
        sp.add_argument("--run-dir", type=Path, required=True)
        _sampling(sp)

    demo = sub.add_parser("demo", help="train flat and hierarchical models, sample, evaluate, write a report")
    _common(demo)
    demo.add_argument("--out", type=Path, default=Path("runs/demo"))
    demo.add_argument("--guidance", type=_nonneg_float, default=3.0, help="the higher guidance scale shown")
    demo.add_argument("--train-steps", type=_pos_int, help="override train.steps")
    demo.add_argument("--n-per-category", type=_pos_int, help="samples per category")

    study = sub.add_parser("study", help="run a study: a grid of trainings and samplings with a report")
    ssub = study.add_subparsers(dest="study", required=True, parser_class=_Parser)
    mc = ssub.add_parser("mode-collapse", help="flat vs hierarchical across guidance, imbalance, data, budget, steps")
    _common(mc)
    mc.add_argument("--preset", choices=PRESETS, default="quick", help="quick: ~20 min on 2 CPU cores; full: hours")
    mc.add_argument("--seeds", type=_pos_int, help="number of seeds (default: the preset's)")
    mc.add_argument("--out", type=Path, default=Path("runs/study-mode-collapse"))
    rl = ssub.add_parser("rhm-learning", help="RHM: validity per level and copies against P and training time")
    _common(rl)
    rl.add_argument("--preset", choices=PRESETS, default="quick", help="quick: minutes on 2 CPU cores; full: hours")
    rl.add_argument("--out", type=Path, default=Path("runs/study-rhm-learning"))
    rp = ssub.add_parser("rhm-phase-transition", help="RHM: noise to t, denoise (BP and a model), class kept vs t")
    _common(rp)
    rp.add_argument("--preset", choices=PRESETS, default="quick")
    rp.add_argument("--run-dir", type=Path, help="a trained RHM run (default: train one under --out)")
    rp.add_argument("--out", type=Path, default=Path("runs/study-rhm-phase"))

    rhm = sub.add_parser("rhm", help="diffusion on the Random Hierarchy Model (train, sample, evaluate)")
    rsub = rhm.add_subparsers(dest="rhm_command", required=True, parser_class=_Parser)
    rt = rsub.add_parser("train", help="train a sequence model on RHM data (resumes an interrupted run)")
    _common(rt)
    rt.add_argument("--run-dir", type=Path, default=Path("runs/rhm"))
    rt.add_argument("--train-steps", type=_pos_int, help="override train.steps")
    rt.add_argument("--arch", choices=("tree_unet", "transformer"), help="network (default: the config's)")
    rt.add_argument("--process", choices=("discrete", "gaussian"), help="diffusion process (default: discrete)")
    rt.add_argument("--n-train", type=_pos_int, help="training sequences P")
    rt.add_argument("--no-resume", action="store_true", help="refuse to continue an existing run")
    rt.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    for name, text in (("sample", "sample a trained RHM run"), ("evaluate", "score samples: validity, copies, rules")):
        sp = rsub.add_parser(name, help=text)
        _common(sp, config=False)
        sp.add_argument("--run-dir", type=Path, required=True)
        sp.add_argument("--denoiser", choices=("model", "bp"), help="model (default) or bp: exact belief propagation")
        sp.add_argument("--n", type=_pos_int, help="number of sequences")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except TaxodiffError as e:
        print(f"taxodiff: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("taxodiff: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    from taxodiff import pipeline

    if args.command == "data":
        pipeline.preview(_config(args), args.out, args.n, not args.quiet)
        print(args.out)
        return 0
    if args.command == "train":
        cfg = _config(args, {"model": args.model, "train.steps": args.train_steps})
        run_dir = args.run_dir or Path("runs") / cfg.model
        if args.dry_run:
            from taxodiff.config import dump_yaml

            print(dump_yaml(cfg), end="")
            return 0
        from taxodiff.train import finish_distributed

        summary = pipeline.train_run(cfg, run_dir, resume=not args.no_resume, progress=not args.quiet)
        if summary["is_main"]:
            world = f" on {summary['processes']} processes" if summary["processes"] > 1 else ""
            print(f"trained {summary['model']} to step {summary['steps']} in {summary['seconds']} s{world}: {run_dir}")
        finish_distributed()
        return 0
    if args.command in ("sample", "evaluate"):
        overrides = {
            "sampler": args.sampler,
            "steps": args.steps,
            "guidance": args.guidance,
            "prior_guidance": args.prior_guidance,
            "guidance_method": args.guidance_method,
            "n_per_category": args.n_per_category,
        }
        if args.command == "sample":
            path, _ = pipeline.sample_run(args.run_dir, overrides, args.seed, args.device, not args.quiet)
            print(path)
            return 0
        result = pipeline.evaluate_run(args.run_dir, overrides, args.seed, args.device, not args.quiet)
        print(_eval_line(result))
        print(args.run_dir / "eval.json")
        return 0
    if args.command == "demo":
        cfg = _config(args, {"train.steps": args.train_steps, "sample.n_per_category": args.n_per_category})
        from taxodiff.studies.demo import run_demo

        run_demo(cfg, args.out, args.guidance, not args.quiet)
        print(f"report: {args.out / 'report.md'} and {args.out / 'report.html'}; table: {args.out / 'summary.json'}")
        return 0
    if args.command == "rhm":
        return _rhm(args)
    if args.command == "study" and args.study.startswith("rhm-"):
        return _rhm_study(args)
    if args.command == "study":
        from dataclasses import replace

        from taxodiff.studies.mode_collapse import preset_named, run_study

        preset = preset_named(args.preset)
        preset = replace(preset, seeds=args.seeds or preset.seeds)
        run_study(_config(args, under=preset.base), preset, args.out, not args.quiet)
        print(f"report: {args.out / 'report.md'} and {args.out / 'report.html'}; rows: {args.out / 'results.jsonl'}")
        return 0
    raise AssertionError(args.command)


def _rhm(args: argparse.Namespace) -> int:
    from taxodiff import rhm_pipeline

    if args.rhm_command == "train":
        extra = {
            "train.steps": args.train_steps,
            "net.arch": args.arch,
            "diffusion.process": args.process,
            "data.n_train": args.n_train,
        }
        cfg = _rhm_config(args, extra)
        if args.dry_run:
            from taxodiff.config import dump_yaml

            print(dump_yaml(cfg), end="")
            return 0
        from taxodiff.train import finish_distributed

        summary = rhm_pipeline.train_run(cfg, args.run_dir, resume=not args.no_resume, progress=not args.quiet)
        if summary["is_main"]:
            print(f"trained rhm to step {summary['steps']} in {summary['seconds']} s: {args.run_dir}")
        finish_distributed()
        return 0
    overrides = {"denoiser": args.denoiser, "n_samples": args.n}
    if args.rhm_command == "sample":
        path, _ = rhm_pipeline.sample_run(args.run_dir, overrides, args.device, not args.quiet)
        print(path)
        return 0
    r = rhm_pipeline.evaluate_run(args.run_dir, overrides, args.device, not args.quiet)
    v = r["validity"]
    levels = "  ".join(f"l{k} {x:.3f}" for k, x in enumerate(v["sequences"], start=1))
    print(
        f"rhm {r['tag']} (step {r['checkpoint_step']}): valid {levels} (chance whole {v['chance_sequences'][-1]:.1e})"
        f"  copies {r['memorisation']['copies']:.3f}  distinct {r['memorisation']['distinct']:.3f}"
    )
    print(args.run_dir / "eval.json")
    return 0


def _rhm_study(args: argparse.Namespace) -> int:
    cfg = _rhm_config(args)
    if args.study == "rhm-learning":
        from taxodiff.studies.rhm_learning import PRESETS as LEARNING
        from taxodiff.studies.rhm_learning import run_study

        run_study(cfg, LEARNING[args.preset], args.out, not args.quiet)
    else:
        from taxodiff.studies.rhm_phase import PRESETS as PHASE
        from taxodiff.studies.rhm_phase import run_study as run_phase

        run_phase(cfg, PHASE[args.preset], args.out, args.run_dir, not args.quiet)
    print(f"report: {args.out / 'report.md'} and {args.out / 'report.html'}; rows: {args.out / 'results.jsonl'}")
    return 0


def _rhm_config(args: argparse.Namespace, extra: dict[str, Any] | None = None) -> Any:
    from taxodiff import rhm_config

    overrides = {"seed": args.seed, "device": args.device, **(extra or {})}
    return rhm_config.load(args.config, {k: v for k, v in overrides.items() if v is not None})


def _eval_line(r: dict[str, Any]) -> str:
    o = r["images"]["overall"]
    line = (
        f"{r['model']} {r['tag']}: coverage {o['coverage']:.2f}  KL {o['kl']:.4f}  entropy {o['entropy']:.3f} "
        f"(data {o['entropy_data']:.3f})  TV {o['tv']:.3f}  off-category {o['off_category']:.3f}"
    )
    if "fidelity" in r:
        line += f"  fidelity {r['fidelity']['value']:.3f}  prior KL {r['prior']['overall']['kl']:.4f}"
    if "features" in r:
        f = r["features"]["overall"]
        line += f"  precision {f['precision']:.3f}  recall {f['recall']:.3f}"
        line += f"  copies {r['features']['memorisation']['rate']:.3f}"
    return line + f"  (classifier held-out accuracy {r['classifier']['accuracy']:.4f})"


def _config(args: argparse.Namespace, extra: dict[str, Any] | None = None, under: dict[str, Any] | None = None) -> Any:
    from taxodiff import config

    overrides = {"seed": args.seed, "device": args.device, **(extra or {})}
    return config.load(args.config, {k: v for k, v in overrides.items() if v is not None}, under)


if __name__ == "__main__":
    sys.exit(main())
