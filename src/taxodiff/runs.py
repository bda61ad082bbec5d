"""Run directories as records: config, metrics (JSON lines), checkpoints (safetensors + JSON), figures.

    runs/<name>/
      config.yaml               the resolved config: enough to rebuild the model
      metrics.jsonl             one JSON object per logged training step
      checkpoints/step-000800/  model.safetensors, ema.safetensors, optim.safetensors, state.json
      checkpoints/latest        name of the newest complete checkpoint
      samples/<tag>.safetensors  generated samples (and the checkpoint step that drew them)
      figures/, eval.json       sample grids; scores by sampling tag

Every file is written atomically (temporary file, then rename); a checkpoint directory is complete
before ``latest`` points at it. Nothing is ever unpickled.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from taxodiff import __version__
from taxodiff.errors import TaxodiffError

FORMAT = "taxodiff-checkpoint-1"


def cache_dir() -> Path:
    """Where derived data are cached (trained domain classifiers, decoded image sets): ``TAXODIFF_CACHE``, or
    ~/.cache/taxodiff."""
    return Path(os.environ.get("TAXODIFF_CACHE", Path.home() / ".cache" / "taxodiff"))


@contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """An exclusive lock on the file ``path`` (made if missing) while the block runs: processes that compute the
    same cached thing take turns, so one computes it and the others find it (two study workers, two commands).
    Where the lock cannot be had (no ``fcntl`` on Windows, a read-only folder, a file system without locks) the
    block runs unlocked: cached files are written atomically either way."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX
        fcntl = None  # type: ignore[assignment]
    with contextlib.ExitStack() as stack:
        if fcntl is not None:
            with contextlib.suppress(OSError):
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                f = stack.enter_context(open(path, "a"))  # noqa: SIM115 - closed by the stack
                fcntl.flock(f, fcntl.LOCK_EX)
                stack.callback(fcntl.flock, f, fcntl.LOCK_UN)
        yield


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, data: bytes | str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give them the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON file's mapping, or one line saying why it cannot be read."""
    from taxodiff.config.loader import read_text

    p = Path(path)
    try:
        data = json.loads(read_text(p, "file"))
    except (json.JSONDecodeError, RecursionError) as e:
        raise TaxodiffError(f"{str(p)!r} is not valid JSON ({getattr(e, 'msg', 'nested too deeply')})") from None
    if not isinstance(data, dict):
        raise TaxodiffError(f"{str(p)!r} holds JSON {type(data).__name__} where a mapping is expected")
    return data


def append_jsonl(path: str | Path, obj: dict[str, Any]) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(obj) + "\n")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file ([] if there is none)."""
    from taxodiff.config.loader import read_text

    p = Path(path)
    if not p.exists():
        return []
    try:
        rows = [json.loads(line) for line in read_text(p, "file").splitlines() if line.strip()]
    except (json.JSONDecodeError, RecursionError) as e:
        raise TaxodiffError(f"{str(p)!r} is not valid JSON lines ({getattr(e, 'msg', 'nested too deeply')})") from None
    if not all(isinstance(r, dict) for r in rows):
        raise TaxodiffError(f"{str(p)!r} is not valid JSON lines of this kind: every line must be a mapping")
    return rows


# -- checkpoints ----------------------------------------------------------------------------------------
def save_checkpoint(
    run_dir: Path, step: int, tensors: dict[str, dict[str, Any]], state: dict[str, Any], keep: int = 2
) -> Path:
    """Write ``tensors`` (file stem -> {name: tensor}) and ``state`` as checkpoints/step-NNNNNN, atomically."""
    from safetensors.torch import save_file

    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:06d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}."))
    try:
        for stem, named in tensors.items():
            save_file(
                {k: v.detach().contiguous().cpu() for k, v in named.items()},
                str(tmp / f"{stem}.safetensors"),
                metadata={"format": FORMAT, "step": str(step)},
            )
        meta = {"format": FORMAT, "version": __version__, "step": step, **state}
        (tmp / "state.json").write_text(json.dumps(meta, indent=2))
        final = root / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write(root / "latest", name + "\n")
    for old in sorted(p for p in root.glob("step-*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint ``checkpoints/latest`` names (None if there is no pointer); a pointer naming anything but
    a checkpoint of this directory is refused."""
    from taxodiff.config.loader import read_text

    pointer = run_dir / "checkpoints" / "latest"
    if not pointer.exists():
        return None
    name = read_text(pointer, "file").strip()
    path = run_dir / "checkpoints" / name
    if not re.fullmatch(r"step-\d{6,}", name) or not (path / "state.json").is_file():
        raise TaxodiffError(f"{str(pointer)!r} names {name[:60]!r}, which is not a checkpoint of this run")
    return path


def load_checkpoint(
    path: Path, stems: tuple[str, ...] = ("model",)
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Read a checkpoint directory: ({stem: {name: tensor}}, state). Refuses anything not ours."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    state = read_json(path / "state.json")
    if state.get("format") != FORMAT:
        raise TaxodiffError(f"{str(path)!r} is not a taxodiff checkpoint (format {state.get('format')!r})")
    tensors = {}
    for stem in stems:
        f = path / f"{stem}.safetensors"
        if not f.exists():
            raise TaxodiffError(f"checkpoint {str(path)!r} lacks {f.name}")
        try:
            tensors[stem] = load_file(str(f))
        except SafetensorError as e:
            raise TaxodiffError(f"{str(f)!r} is not a valid safetensors file ({e})") from None
    return tensors, state


def resolve_checkpoint(path: str | Path) -> Path:
    """A run directory (its latest checkpoint) or a checkpoint directory -> checkpoint directory."""
    p = Path(path)
    if not p.exists():
        raise TaxodiffError(f"checkpoint or run directory {str(p)!r} does not exist")
    if (p / "state.json").exists():
        return p
    found = latest_checkpoint(p)
    if found is None:
        raise TaxodiffError(f"{str(p)!r} holds no taxodiff checkpoint (expected checkpoints/latest or state.json)")
    return found


# -- samples -------------------------------------------------------------------------------------------------
def save_samples(
    run_dir: Path, tag: str, samples: dict[str, Any], settings: str = "", cost: dict[str, Any] | None = None
) -> Path:
    """``samples/<tag>.safetensors``, atomically; ``settings`` (JSON of what drew them) and ``cost`` (what drawing
    them took) in its metadata."""
    from safetensors.torch import save

    path = Path(run_dir) / "samples" / f"{tag}.safetensors"
    meta = {"settings": settings, "cost": json.dumps(cost or {})}
    atomic_write(path, save({k: v.contiguous() for k, v in samples.items()}, metadata=meta))
    return path


def samples_cost(path: Path) -> dict[str, Any]:
    """What drawing saved samples took ({} if the file does not say)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as f:
            return json.loads((f.metadata() or {}).get("cost") or "{}")
    except (SafetensorError, OSError, json.JSONDecodeError):
        return {}


def samples_settings(path: Path) -> str | None:
    """The settings recorded with saved samples (None if there are none or the file is unreadable)."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), "pt") as f:
            return (f.metadata() or {}).get("settings")
    except (SafetensorError, OSError):
        return None


def load_samples(path: Path) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except SafetensorError as e:
        raise TaxodiffError(f"{str(path)!r} is not a valid safetensors file ({e})") from None


def stored_config(run_dir: str | Path) -> tuple[Path, Any, dict[str, Any]]:
    """(checkpoint directory, config, state) of a trained run, checked without importing torch."""
    from taxodiff import config

    ckpt = resolve_checkpoint(run_dir)
    state = read_json(ckpt / "state.json")
    if state.get("format") != FORMAT:
        raise TaxodiffError(f"{str(ckpt)!r} is not a taxodiff checkpoint")
    if not isinstance(state.get("config"), dict):
        raise TaxodiffError(f"checkpoint {str(ckpt)!r} has no stored config: not a taxodiff model")
    try:
        cfg = config.resolve(state["config"])
    except TaxodiffError as e:
        raise TaxodiffError(f"checkpoint {str(ckpt)!r} holds a config this version cannot read ({e})") from None
    return ckpt, cfg, state
