"""Forward-latency benchmark of a DMD preset.

    python -m benchmarks.scorer_latency [--preset live] [--threads 2] [--repeats 200] [--device cpu|cuda]
                              [--path forward|infer|traced]

Prints the parameter count, then for batch 1 and batch 64: min / p50 / p99 latency (ms) over `--repeats` timed
forward passes (after warm-up) in eval mode under ``torch.inference_mode``, and windows per second at p50.
Inputs are random tensors at the preset's sequence lengths. ``--path`` picks what is timed: the training forward
(default, the reference), the scoring path ``DMD.infer``, or its TorchScript trace ``TracedScores`` (what the live
scorer runs); ``python -m benchmarks.model_speed`` times them side by side. Runs on CUDA too when available (or asked for).
"""

from __future__ import annotations

import argparse
import time


def measure(model, inputs, repeats: int, warmup: int, sync) -> list[float]:
    import torch

    with torch.inference_mode():
        for _ in range(warmup):
            model(*inputs)
        sync()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(*inputs)
            sync()
            times.append(time.perf_counter() - t0)
    return sorted(times)


def percentile(sorted_times: list[float], q: float) -> float:
    i = min(len(sorted_times) - 1, max(0, round(q / 100 * (len(sorted_times) - 1))))
    return sorted_times[i]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scorer_latency", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="live", help="model preset (default live)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2, this machine's cores)")
    p.add_argument("--repeats", type=int, default=200, help="timed forward passes per batch size (default 200)")
    p.add_argument("--batches", default="1,64", help="comma-separated batch sizes (default 1,64)")
    p.add_argument("--device", default=None, help="cpu or cuda; default: cpu, plus cuda when available")
    p.add_argument("--path", default="forward", choices=("forward", "infer", "traced"),
                   help="forward (training forward, default), infer (DMD.infer) or traced (TracedScores)")
    args = p.parse_args(argv)

    import torch

    from dmd_model.config import preset
    from dmd_model.model import DMD

    torch.set_num_threads(args.threads)
    cfg = preset(args.preset)
    devices = [args.device] if args.device else (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    torch.manual_seed(0)
    model = DMD(cfg).eval()
    print(f"preset {args.preset}: {model.num_parameters():,} parameters; seq_lens (L, V, A) {cfg.seq_lens}; "
          f"torch {torch.__version__}, {args.threads} CPU threads; path {args.path}")
    for dev in devices:
        m = model.to(dev)
        if args.path == "infer":
            m = m.infer
        elif args.path == "traced":
            from dmd_model.compiled import TracedScores

            m = TracedScores(m)
        sync = torch.cuda.synchronize if dev.startswith("cuda") else (lambda: None)
        name = torch.cuda.get_device_name(0) if dev.startswith("cuda") else "cpu"
        for b in (int(x) for x in args.batches.split(",")):
            x = [torch.randn(b, cfg.seq_lens[i], cfg.input_dims[i], device=dev) for i in range(3)]
            reps = args.repeats if b <= 8 else max(20, args.repeats // 4)
            t = measure(m, x, reps, warmup=10, sync=sync)
            p50 = percentile(t, 50)
            print(f"{name:>10s} batch {b:4d}: min {t[0] * 1e3:8.3f} ms  p50 {p50 * 1e3:8.3f} ms  "
                  f"p99 {percentile(t, 99) * 1e3:8.3f} ms  -> {b / p50:9.1f} windows/s at p50  ({reps} runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
