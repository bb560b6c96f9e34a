"""Where a DMD eval forward spends its time: torch.profiler over a preset's forward at a few batch sizes.

    python -m benchmarks.profile_forward [--preset live] [--batches 1,16,64] [--threads 1] [--path eager|fast|traced]

For each batch size prints (1) the time per top-level submodule of `DMD` (the paper's stages: projection, encoders,
decoders, heads, transformers, GD-Units, fusion), as the share of the profiled wall time, and (2) the aten ops with
the most self CPU time. Eval mode under ``torch.inference_mode``, random inputs at the preset's sequence lengths.
"""

from __future__ import annotations

import argparse
import time


def stage_hooks(model):
    """Wrap every direct child of `model` (and the GD-Units' `edges`) in a profiler range named ``stage:<name>``."""
    import torch

    handles, active = [], {}

    def pre(name):
        def hook(_mod, _inp):
            rf = torch.profiler.record_function(f"stage:{name}")
            rf.__enter__()
            active.setdefault(name, []).append(rf)
        return hook

    def post(name):
        def hook(_mod, _inp, _out):
            active[name].pop().__exit__(None, None, None)
        return hook

    for name, child in model.named_children():
        # containers are never called themselves: time their members, summed under the container's name
        members = child.values() if isinstance(child, torch.nn.ModuleDict) else (
            list(child) if isinstance(child, torch.nn.ModuleList) else [child])
        for mod in members:
            handles.append(mod.register_forward_pre_hook(pre(name)))
            handles.append(mod.register_forward_hook(post(name)))
    for gd_name in ("homo_gd", "hetero_gd"):
        gd = getattr(model, gd_name)
        plain = gd.edges

        def edges(*a, _plain=plain, _n=gd_name, **k):
            with torch.profiler.record_function(f"stage:{_n}.edges"):
                return _plain(*a, **k)
        gd.edges = edges
    return handles


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_forward", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="live", help="model preset (default live)")
    p.add_argument("--batches", default="1,16,64", help="comma-separated batch sizes (default 1,16,64)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--repeats", type=int, default=20, help="profiled forward passes per batch size (default 20)")
    p.add_argument("--top", type=int, default=15, help="aten ops listed (default 15)")
    p.add_argument("--path", choices=("eager", "fast", "traced"), default="eager",
                   help="eager: the training forward DMD.__call__; fast: DMD.infer, which calls the layers "
                        "functionally, and traced: its frozen TorchScript graph (dmd_model.compiled.TracedScores, "
                        "what the live scorer runs), so for both only the operator table is meaningful (default eager)")
    args = p.parse_args(argv)

    import torch
    from torch.profiler import ProfilerActivity, profile

    from dmd_model.config import preset
    from dmd_model.model import DMD

    torch.set_num_threads(args.threads)
    cfg = preset(args.preset)
    torch.manual_seed(0)
    model = DMD(cfg).eval()
    if args.path == "traced":
        from dmd_model.compiled import TracedScores

        fwd = TracedScores(model)
    else:
        fwd = model.infer if args.path == "fast" else model
    stage_hooks(model)
    print(f"preset {args.preset}, path {args.path}: torch {torch.__version__}, {args.threads} thread(s), "
          f"{args.repeats} profiled passes per batch")
    if args.path == "traced":
        print(f"frozen TorchScript graph: {len(list(fwd.graph.graph.nodes()))} nodes")
    for b in (int(x) for x in args.batches.split(",")):
        x = [torch.randn(b, cfg.seq_lens[m], cfg.input_dims[m]) for m in range(3)]
        with torch.inference_mode():
            for _ in range(5):
                fwd(*x)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                t0 = time.perf_counter()
                for _ in range(args.repeats):
                    fwd(*x)
                wall = (time.perf_counter() - t0) / args.repeats
        events = prof.key_averages()
        stages = sorted((e for e in events if e.key.startswith("stage:")), key=lambda e: -e.cpu_time_total)
        print(f"\nbatch {b}: {wall * 1e3:.3f} ms per forward under the profiler (its per-op overhead inflates "
              "small ops; read shares, not absolute times)")
        print(f"  {'stage':32s} {'ms/fwd':>9s} {'share':>7s}")
        staged = 0.0
        for e in stages:
            ms = e.cpu_time_total / 1e3 / args.repeats
            staged += ms  # stages never nest: the GD-Units' edges run outside their module's forward
            print(f"  {e.key[6:]:32s} {ms:9.3f} {ms / (wall * 1e3):7.1%}")
        rest = wall * 1e3 - staged
        print(f"  {'(outside submodules)':32s} {rest:9.3f} {rest / (wall * 1e3):7.1%}")
        ops = sorted((e for e in events if e.key.startswith("aten::")), key=lambda e: -e.self_cpu_time_total)
        total_self = sum(e.self_cpu_time_total for e in events if not e.key.startswith("stage:"))
        print(f"  {'aten op (self time)':32s} {'ms/fwd':>9s} {'share':>7s} {'calls/fwd':>10s}")
        for e in ops[: args.top]:
            ms = e.self_cpu_time_total / 1e3 / args.repeats
            print(f"  {e.key:32s} {ms:9.3f} {e.self_cpu_time_total / total_self:7.1%} {e.count / args.repeats:10.1f}")
        n_ops = sum(e.count for e in events if e.key.startswith("aten::")) / args.repeats
        print(f"  aten calls per forward (incl. nested): {n_ops:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
