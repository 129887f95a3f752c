"""Run every benchmark and write BENCHMARKS.md: ``python -m benchmarks [--quick] [--only synth,augment]``.

``--only model`` measures model quality instead (protocols x models x seeds) and writes
MODEL.md (see benchmarks/bench_model.py); it is not part of the default run (about twelve
hours on two cores). ``--protocols post --models wave`` measures one cell: its rows
replace those of the same protocol and model, and the other rows stay; ``--seeds 0``
measures one seed (the row says how many), and baselines already measured on more seeds
keep their rows.
``--only paper`` trains the authors' LSTM-FCN with their schedule on a GunPoint-like set
for 25 and 50 epochs (500, the authors' count, on seed 0) and writes its section of
MODEL.md.

Each ``benchmarks/bench_<stage>.py`` returns rows whose figures are ratios against a
reference measured in the same run, so the table compares across machines.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.common import Row

STAGES = ("synth", "recorder", "augment", "cluster", "datasets", "train", "memory", "scale")
HERE = Path(__file__).resolve().parent


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gib = float("nan")
    return f"{cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, Python {platform.python_version()}, {platform.system()} {platform.release()}"


def gpu_line() -> str:
    try:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    except Exception:  # noqa: BLE001 - a missing TF just means no GPU row
        return "none"
    return ", ".join(gpu.name for gpu in gpus) or "none"


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return ""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def table(rows: list[Row]) -> str:
    lines = [
        "| benchmark | figure | value | unit | reference | ratio | goal | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        reference = f"{row.reference} = {_fmt(row.reference_value)}" if row.reference else ""
        lines.append(
            f"| {row.benchmark} | {row.figure} | {_fmt(row.value)} | {row.unit} | {reference} | {_fmt(row.ratio)} | {row.goal} | {row.notes} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="short inputs: a smoke run, not figures to record"
    )
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated stages: " + ",".join((*STAGES, "model", "paper")),
    )
    parser.add_argument(
        "--protocols", default="", help="model stage: comma-separated protocols [default: all]"
    )
    parser.add_argument(
        "--models", default="", help="model stage: comma-separated models [default: all]"
    )
    parser.add_argument(
        "--seeds",
        default="",
        help="model stage: comma-separated seeds [default: 0,1,2]; e.g. --seeds 0 when time is short",
    )
    parser.add_argument(
        "--out", default=str(HERE.parent / "BENCHMARKS.md"), help="where to write the report"
    )
    args = parser.parse_args(argv)
    stages = [s for s in (args.only.split(",") if args.only else STAGES) if s]
    if "model" in stages:
        from benchmarks import bench_model

        started = time.perf_counter()
        print("== model (writes MODEL.md)", flush=True)
        model_md = (
            HERE.parent / "MODEL.md"
            if not args.quick
            else Path(args.out).with_name("MODEL-quick.md")
        )

        def write(results: dict) -> str:
            now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
            text = bench_model.markdown(
                results, machine=f"{machine_line()} ({now})", quick=args.quick
            )
            old = model_md.read_text(encoding="utf-8") if model_md.exists() else ""
            table, heading, written_up = old.partition("\n## ")  # keep the written-up parts
            text = bench_model.merged_table(table, text)
            model_md.write_text(text + heading + written_up, encoding="utf-8")
            return text

        protocols = tuple(p for p in args.protocols.split(",") if p) or bench_model.PROTOCOLS
        models = tuple(m for m in args.models.split(",") if m) or bench_model.MODELS
        try:
            seeds = tuple(int(s) for s in args.seeds.split(",") if s) or bench_model.SEEDS
        except ValueError:
            parser.error(f"--seeds {args.seeds!r}: give whole numbers, e.g. --seeds 0,1")
        print(
            write(
                bench_model.measure(
                    args.quick, seeds=seeds, protocols=protocols, models=models, after_each=write
                )
            )
        )
        print(f"   {time.perf_counter() - started:.1f} s; wrote {model_md}", flush=True)
        stages = [s for s in stages if s != "model"]
        if not stages:
            return 0
    if "paper" in stages:
        from benchmarks import bench_model

        started = time.perf_counter()
        print("== paper schedule (writes its section of MODEL.md)", flush=True)
        model_md = HERE.parent / ("MODEL-quick.md" if args.quick else "MODEL.md")
        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        section = bench_model.paper_markdown(
            bench_model.measure_paper(quick=args.quick), machine=f"{machine_line()} ({now})"
        )
        old = model_md.read_text(encoding="utf-8") if model_md.exists() else ""
        model_md.write_text(bench_model.with_section(old, section), encoding="utf-8")
        print(section, f"   {time.perf_counter() - started:.1f} s; wrote {model_md}", flush=True)
        stages = [s for s in stages if s != "paper"]
        if not stages:
            return 0
    results: dict[str, list[Row] | str] = {}
    for stage in stages:
        name = f"benchmarks.bench_{stage}"
        if importlib.util.find_spec(name) is None:
            results[stage] = "not written yet"
            continue
        print(f"== {stage}", flush=True)
        started = time.perf_counter()
        try:
            results[stage] = importlib.import_module(name).run(quick=args.quick)
        except Exception:  # noqa: BLE001 - one failing benchmark must not hide the others
            traceback.print_exc()
            results[stage] = "failed: " + traceback.format_exc().strip().splitlines()[-1]
        print(f"   {time.perf_counter() - started:.1f} s", flush=True)

    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        "# guitarlab benchmarks",
        "",
        f"Written by `make bench` (`python -m benchmarks{' --quick' if args.quick else ''}`) on {now}.",
        "",
        f"- Machine: {machine_line()}",
        f"- GPU: {gpu_line()}",
        "",
        "Every figure is a ratio against a reference measured in the same run; tests never assert times.",
        "",
    ]
    for stage in stages:
        out += [f"## {stage}", ""]
        result = results[stage]
        out += [result if isinstance(result, str) else table(result), ""]
    out += GPU_SECTION
    text = "\n".join(out) + "\n"
    if args.only and Path(args.out).exists():  # keep the sections this run did not measure
        text = merged_sections(Path(args.out).read_text(encoding="utf-8"), text, stages)
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return (
        0 if all(not isinstance(r, str) or r == "not written yet" for r in results.values()) else 1
    )


def _sections(text: str) -> tuple[str, dict[str, str]]:
    """``(text before the first '## ', {name: its section up to the next '## '})``."""
    head, *parts = text.split("\n## ")
    return head, {part.split("\n", 1)[0].strip(): part for part in parts}


def merged_sections(old: str, new: str, stages: list[str]) -> str:
    r"""``old`` with the sections of ``stages`` taken from ``new`` (added before ``GPU``
    when ``old`` has none): ``--only scale`` rewrites its section, never the others.

    Examples
    --------
    >>> old = "# b\n\nintro\n\n## synth\n\nS\n\n\n## GPU\n\nG\n"
    >>> merged_sections(old, "# b\n\n## scale\n\nX\n\n## GPU\n\nG\n", ["scale"])
    '# b\n\nintro\n\n## synth\n\nS\n\n\n## scale\n\nX\n\n## GPU\n\nG\n'
    """
    head, sections = _sections(old)
    _, fresh = _sections(new)
    for stage in stages:
        if stage in fresh:
            sections[stage] = fresh[stage]
    order = [name for name in sections if name != "GPU"] + (["GPU"] if "GPU" in sections else [])
    return head + "".join("\n## " + sections[name] for name in order)


GPU_SECTION = [
    "## GPU",
    "",
    "| benchmark | figure | value | unit | reference | ratio | goal | notes |",
    "|---|---|---|---|---|---|---|---|",
    "| train | training windows/s, post config (8 cells, 128/256/128) | _to fill_ | windows/s | bare model.fit | | >= 0.95x | run `make bench` on a GPU machine, or `python -m benchmarks --only train` |",
    "",
    "No GPU was available when this file was written. On a machine with one, `pip install -e '.[gpu]'`",
    "then `python -m benchmarks --only train` fills the train rows from the GPU (the code path is the same).",
]

if __name__ == "__main__":
    sys.exit(main())
