"""Model speed: our DMD against the authors' network, and the live scorer's forward.

    python -m benchmarks.model_speed [--reference /work/ref/DMD] [--batches 1,16,64] [--repeats 40]
                                     [--threads 1] [--device cpu|cuda] [--skip-reference] [--skip-live]
                                     [--inductor]

(a) ``mosi``: the authors' network (mdswyz/DMD, MOSI aligned config), built from the local checkout given by
    ``--reference`` and imported from there at run time (skipped, with the reason, when absent), holding the same
    weights as ours, copied in by name. Their outputs and ours (prediction, homo/hetero heads, shared-fusion head)
    are compared to 1e-5 first. Then, interleaved in one loop (the order rotates every repeat), each network's
    eval forward under ``torch.inference_mode``: theirs, our training forward ``DMD.forward``, our scoring path
    ``DMD.infer`` and its TorchScript trace ``TracedScores`` (both also compute the two GD-Units' edges, which
    theirs leaves to the trainer).
(b) ``live``: ``DMD.forward`` against ``DMD.infer`` and ``TracedScores`` (what the live scorer runs; on CUDA also
    ``GraphedScores``, its CUDA-graph replay), called the
    way the scorer calls them (lengths and presence given): batch 1 p50 and batch-64 windows/s.

``--inductor`` adds ``InductorScores`` (``torch.compile`` of the scoring path, static shapes) to both parts, checked
against the training forward first; its compile time per batch size is printed and not timed.

Prints min and p50 per batch size and the ratio of p50s (>1: ours faster). On a shared machine absolute times
drift from run to run; the ratios from one interleaved run are what compare.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

DEFAULT_REFERENCE = "/work/ref/DMD"
TOL = 1e-5


def timed(candidates: dict, repeats: int, warmup: int, sync) -> dict[str, list[float]]:
    """Interleaved timing: every repeat runs each candidate once, in an order that rotates per repeat."""
    import torch

    names = list(candidates)
    times = {n: [] for n in names}
    with torch.inference_mode():
        for _ in range(warmup):
            for n in names:
                candidates[n]()
        sync()
        for r in range(repeats):
            for n in names[r % len(names):] + names[: r % len(names)]:
                t0 = time.perf_counter()
                candidates[n]()
                sync()
                times[n].append(time.perf_counter() - t0)
    return times


def check_first_call(torch, label: str, fn, want: dict) -> None:
    """Call `fn` once (a compiling candidate compiles here, so its time is printed, not timed) and stop the benchmark
    when any output in `want` differs beyond the tolerance: timings of different results would not compare."""
    t0 = time.perf_counter()
    with torch.inference_mode():
        got = fn()
    first = time.perf_counter() - t0
    worst = max((getattr(got, k) - v).abs().max().item() for k, v in want.items())
    print(f"  {label} = {worst:.2e} (first call {first:.1f} s)")
    if worst > TOL:
        raise SystemExit(f"{label.strip()} = {worst:.2e}: beyond the tolerance {TOL:g}")


def summary(t: list[float]) -> tuple[float, float]:
    return min(t) * 1e3, statistics.median(t) * 1e3


def table(title: str, rows: list[tuple[int, dict[str, list[float]]]], base: str) -> None:
    """One line per batch: min/p50 per candidate, and base p50 / candidate p50."""
    print(title)
    for b, times in rows:
        cells = []
        ref_p50 = summary(times[base])[1]
        for name, t in times.items():
            lo, p50 = summary(t)
            ratio = "" if name == base else f" ({ref_p50 / p50:.2f}x)"
            cells.append(f"{name} min {lo:.3f} p50 {p50:.3f} ms{ratio}")
        print(f"  batch {b:3d}: " + " | ".join(cells))


def reps_for(batch: int, repeats: int) -> int:
    return repeats if batch <= 8 else max(10, repeats // 4)


def bench_reference(args, torch, dev, sync) -> None:
    from dmd_model.config import preset
    from dmd_model.model import DMD

    from dmd_model.compiled import InductorScores, TracedScores

    from .reference_dmd import build_reference, reference_outputs

    root = Path(args.reference)
    if not (root / "trains" / "singleTask" / "model" / "dmd.py").is_file():
        print(f"(a) mosi vs the authors' network: SKIPPED, no mdswyz/DMD checkout at {root} "
              "(pass --reference DIR)")
        return
    cfg = preset("mosi")
    torch.manual_seed(0)
    ours = DMD(cfg).to(dev).eval()
    ref = build_reference(ours, root)
    traced = TracedScores(ours)
    inductor = InductorScores(ours) if args.inductor else None
    n_ref = sum(p.numel() for p in ref.parameters())
    print(f"(a) mosi: ours {ours.num_parameters():,} parameters, the authors' {n_ref:,} (from {root}); "
          f"same weights copied by name")
    rows = []
    for b in args.batches:
        g = torch.Generator().manual_seed(b)
        x = [torch.randn(b, cfg.seq_lens[m], cfg.input_dims[m], generator=g).to(dev) for m in range(3)]
        with torch.inference_mode():
            theirs = reference_outputs(ref, *x)
            fwd = ours(*x)
            fast = ours.infer(*x)
        errs = []
        for k, v in theirs.items():
            errs.append(max((getattr(fwd, k) - v).abs().max().item(), (getattr(fast, k) - v).abs().max().item()))
        worst = max(errs)
        print(f"  batch {b:3d}: max |ours - theirs| over prediction, heads, fusion head = {worst:.2e} "
              f"({'OK' if worst <= TOL else 'MISMATCH'}, tolerance {TOL:g})")
        if worst > TOL:
            raise SystemExit("outputs differ from the reference beyond the tolerance: timings would not compare")
        cands = {"authors": lambda: ref(x[0], x[2], x[1]), "ours forward": lambda: ours(*x),
                 "ours infer": lambda: ours.infer(*x), "ours traced": lambda: traced(*x)}
        if inductor is not None:
            cands["ours inductor"] = lambda: inductor(*x)
        for name in ("ours traced", "ours inductor"):
            if name in cands:
                check_first_call(torch, f"batch {b:3d}: max |{name} - theirs|", cands[name], theirs)
        rows.append((b, timed(cands, reps_for(b, args.repeats), 3, sync)))
    table("  eval forward under inference_mode, interleaved (ratio: authors' p50 / ours):", rows, "authors")


def bench_live(args, torch, dev, sync) -> None:
    from dmd_model.config import preset
    from dmd_model.model import DMD

    from dmd_model.compiled import GraphedScores, InductorScores, TracedScores

    cfg = preset("live")
    torch.manual_seed(0)
    model = DMD(cfg).to(dev).eval()
    traced = TracedScores(model)
    inductor = InductorScores(model) if args.inductor else None
    graphed = GraphedScores(model) if dev.type == "cuda" else None  # CUDA graphs: on a GPU only
    print(f"(b) live: {model.num_parameters():,} parameters, seq_lens (L, V, A) {cfg.seq_lens}; inputs with "
          "lengths and presence, as the scorer passes them")
    rows = []
    for b in args.batches:
        g = torch.Generator().manual_seed(b)
        x = [torch.randn(b, cfg.seq_lens[m], cfg.input_dims[m], generator=g).to(dev) for m in range(3)]
        kw = {"lengths": torch.tensor([list(cfg.seq_lens)] * b, device=dev),
              "present": torch.ones(b, 3, dtype=torch.bool, device=dev)}
        cands = {"forward": lambda: model(*x, **kw), "infer": lambda: model.infer(*x, **kw),
                 "traced": lambda: traced(*x, **kw)}
        if graphed is not None:
            cands["graphed"] = lambda: graphed(*x, **kw)
        if inductor is not None:
            with torch.inference_mode():
                want = model(*x, **kw)
            cands["inductor"] = lambda: inductor(*x, **kw)
            check_first_call(torch, f"batch {b:3d}: max |inductor - forward| over prediction and edges",
                             cands["inductor"], {k: getattr(want, k) for k in ("prediction", "homo_edges", "hetero_edges")})
        rows.append((b, timed(cands, reps_for(b, args.repeats), 3, sync)))
    table("  (ratio: forward p50 / candidate p50):", rows, "forward")
    for b, times in rows:
        for name, t in times.items():
            p50 = summary(t)[1]
            print(f"  {name:>9s} batch {b:3d}: p50 {p50:.3f} ms -> {b / p50 * 1e3:.1f} windows/s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.model_speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", default=DEFAULT_REFERENCE,
                   help=f"local checkout of mdswyz/DMD (default {DEFAULT_REFERENCE}); part (a) is skipped without it")
    p.add_argument("--batches", default="1,16,64", help="comma-separated batch sizes (default 1,16,64)")
    p.add_argument("--repeats", type=int, default=40, help="timed runs per candidate at batch <= 8; a quarter above")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda; cuda is skipped, with the reason, without it")
    p.add_argument("--skip-reference", action="store_true", help="skip (a)")
    p.add_argument("--skip-live", action="store_true", help="skip (b)")
    p.add_argument("--inductor", action="store_true",
                   help="also time InductorScores (torch.compile, static shapes; compiles once per batch size, tens of "
                        "seconds each)")
    p.add_argument("--memory", choices=("default", "flat", "fast"), default="default",
                   help="allocator policy (realtime.memory, as run_demo.py --memory): 'default' leaves glibc's own "
                        "(the earlier rounds' figures); 'flat' is the page's, 'fast' a headless replay's or a scoring "
                        "server's (docs/speed.md 3d)")
    args = p.parse_args(argv)
    args.batches = [int(b) for b in args.batches.split(",")]
    from realtime.memory import benchmark_policy

    policy = benchmark_policy(args.memory)

    import torch

    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            print("SKIPPED: --device cuda was asked for, but CUDA is not available on this machine")
            return 0
        sync = torch.cuda.synchronize
        where = torch.cuda.get_device_name(dev)
    else:
        sync = lambda: None  # noqa: E731
        where = f"cpu, {args.threads} thread(s)"
    print(f"torch {torch.__version__} on {where}; eval mode under torch.inference_mode; min / p50 over interleaved "
          f"runs; compare ratios, not absolute times, on a shared machine; {policy}")
    if not args.skip_reference:
        bench_reference(args, torch, dev, sync)
    if not args.skip_live:
        bench_live(args, torch, dev, sync)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
