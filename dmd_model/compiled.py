"""The scoring path `DMD.infer` traced and frozen with TorchScript: the same kernels, a fraction of the per-call
overhead (at batch 1 a live window is ~1,000 small operators, and eager PyTorch pays Python dispatch for each).

    scorer = TracedScores(model)     # ~1 s: trace at the preset's sequence lengths, freeze the weights in
    out = scorer(language, visual, acoustic, lengths, present)   # -> DMDScores, as DMD.infer

Chosen by measurement against ONNX Runtime and ``torch.compile`` (docs/speed.md): ORT was faster at batch 1 only
and slower from batch 16 up; inductor needed minutes to compile on this 2-core machine; the frozen trace runs the
very kernels of `DMD.infer`, so it agrees with it exactly, and with the training forward to 1e-5
(tests/dmd/test_compiled.py).

What the trace fixes: the sequence lengths (`DMDConfig.seq_lens`, which the live window always resamples to; other
lengths are refused), the device, and the weights (frozen in as constants: build a new one after changing them).
The batch size stays free.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch

from .inference import DMDScores, scores

if TYPE_CHECKING:
    from .model import DMD

FIELDS = ("prediction", "homo_logits", "hetero_logits", "shared_fusion_logits", "homo_repr", "hetero_repr",
          "homo_edges", "hetero_edges", "present")
NAMES = ("language", "visual", "acoustic")


class _Scores(torch.nn.Module):
    """`inference.scores` (or another version of it, `scores_fn`) with tensor-tuple outputs, as the tracer needs."""

    def __init__(self, model: "DMD", scores_fn=scores):
        super().__init__()
        self.model = model
        self.scores_fn = scores_fn

    def forward(self, language, visual, acoustic, lengths, present):
        s = self.scores_fn(self.model, language, visual, acoustic, lengths, present)
        return tuple(getattr(s, k) for k in FIELDS)


class TracedScores:
    """`model`'s scoring path as a frozen TorchScript graph on `model`'s device.

    Args:
        model: a `DMD` in eval mode, on precomputed text features (the live and faithful presets).
        scores_fn: the scoring path to trace; another revision's `inference.scores` in `benchmarks.scoring_ab`.
    """

    def __init__(self, model: "DMD", scores_fn=scores):
        example = self._prepare(model)
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # tracer notices about shape-derived Python ints
            # one eager call first fills the encoders' positional tables, so the trace sees them as constants
            scores_fn(model, *example)
            traced = torch.jit.trace(_Scores(model, scores_fn).eval(), example, check_trace=False)
            self.graph = torch.jit.freeze(traced.eval())
            # TorchScript's profiling executor profiles the first call and optimises on the second (~0.5 s each
            # here); pay that now, not on the first live window. Later batch sizes reuse the optimised graph.
            for _ in range(2):
                self.graph(*example)

    def _prepare(self, model: "DMD") -> tuple:
        """Check the model, keep its config, and return example inputs (batch 3) at the preset's lengths."""
        what = type(self).__name__
        if model.training:
            raise RuntimeError(f"{what} takes the eval-mode scoring path: call model.eval() first")
        if model.text_encoder is not None:
            raise ValueError(f"{what} takes models on precomputed text features (no in-model text encoder)")
        self.cfg = cfg = model.cfg
        self.device = model.device
        self.seq_lens = tuple(cfg.seq_lens)
        b = 3  # any batch > 1: the trace keeps the batch size symbolic
        example = tuple(torch.zeros(b, cfg.seq_lens[m], cfg.input_dims[m], device=self.device) for m in range(3))
        return example + (torch.tensor([list(cfg.seq_lens)] * b, device=self.device),
                          torch.ones(b, 3, dtype=torch.bool, device=self.device))

    def __call__(self, language, visual, acoustic, lengths=None, present=None) -> DMDScores:
        """Arguments as `DMD.infer`; the inputs' sequence lengths must be the preset's `seq_lens`."""
        inputs = (language, visual, acoustic)
        bsz = language.shape[0]
        for m, x in enumerate(inputs):
            if x.dim() != 3 or x.shape[0] != bsz or x.shape[1] != self.seq_lens[m] or x.shape[2] != self.cfg.input_dims[m]:
                raise ValueError(f"{NAMES[m]} input has shape {tuple(x.shape)}; the traced graph takes "
                                 f"(B={bsz}, {self.seq_lens[m]}, {self.cfg.input_dims[m]})")
        dev = language.device
        if lengths is None:
            lengths = torch.tensor([list(self.seq_lens)], device=dev).expand(bsz, 3)
        if present is None:
            present = torch.ones(bsz, 3, dtype=torch.bool, device=dev)
        with torch.inference_mode():
            out = self.graph(language, visual, acoustic, lengths.to(dev, torch.long), present.to(dev, torch.bool))
        return DMDScores(**dict(zip(FIELDS, out)))


class InductorScores(TracedScores):
    """`model`'s scoring path compiled by ``torch.compile`` (inductor) with static shapes: the elementwise work
    between the matrix products (layer norms, residual adds, masks, activations) runs as generated, fused C++ loops.

    A candidate for throughput, not the live default: each new batch size compiles its own graph at its first call
    (25 to 90 s per size on this 2-core CPU; inductor's on-disk cache shortens later processes), and a process
    compiles at most ``torch._dynamo.config.cache_size_limit`` sizes (later ones run eagerly). Held to the training
    forward to 1e-5 by tests/dmd/test_compiled.py; timed by ``python -m benchmarks.model_speed --inductor``
    (docs/speed.md 3b: 1.06x to 1.10x the trace at live batch 64, slower at batch 1 and on mosi).
    """

    def __init__(self, model: "DMD", mode: str | None = None):
        example = self._prepare(model)
        with torch.inference_mode():
            scores(model, *example)  # fills the encoders' positional tables before compilation, as for the trace
        self.graph = torch.compile(_Scores(model).eval(), dynamic=False, mode=mode)


class GraphedScores:
    """`TracedScores` replayed as CUDA graphs: one graph per batch size, captured on first use, so a live window
    costs one graph launch instead of ~1,000 kernel launches (on a GPU, batch 1 is launch-bound).

    CUDA only (a CPU model raises `ValueError`). A graph reads and writes fixed memory: each call copies the
    inputs into the graph's own static buffers and returns views of its static outputs, valid until the next call
    with the same batch size (the live scorer copies them to the host at once). `max_graphs` bounds the captured
    sizes (each holds its activations); beyond it the frozen graph runs directly.

    Not yet measured: no GPU was lent to this project's sessions; tests/dmd/test_gpu.py holds it to the training
    forward to 1e-5 on a machine with CUDA and skips with the reason elsewhere.
    """

    def __init__(self, model: "DMD", max_graphs: int = 8, warmup: int = 3):
        if model.device.type != "cuda":
            raise ValueError(f"GraphedScores needs a model on CUDA (this one is on {model.device}); use TracedScores")
        self.traced = TracedScores(model)
        self.cfg, self.device, self.seq_lens = self.traced.cfg, self.traced.device, self.traced.seq_lens
        self.max_graphs, self.warmup = max_graphs, warmup
        self._graphs: dict[int, tuple] = {}  # batch size -> (graph, static inputs, static outputs)

    def _capture(self, bsz: int) -> tuple:
        cfg = self.cfg
        static = [torch.zeros(bsz, cfg.seq_lens[m], cfg.input_dims[m], device=self.device) for m in range(3)]
        static += [torch.tensor([list(cfg.seq_lens)] * bsz, device=self.device),
                   torch.ones(bsz, 3, dtype=torch.bool, device=self.device)]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.inference_mode(), torch.cuda.stream(side):
            for _ in range(self.warmup):  # the allocator and the profiling executor settle before capture
                self.traced.graph(*static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(graph):
            outputs = self.traced.graph(*static)
        return graph, static, outputs

    def __call__(self, language, visual, acoustic, lengths=None, present=None) -> DMDScores:
        bsz = language.shape[0]
        if bsz not in self._graphs and len(self._graphs) >= self.max_graphs:
            return self.traced(language, visual, acoustic, lengths, present)
        if bsz not in self._graphs:
            self._graphs[bsz] = self._capture(bsz)
        graph, static, outputs = self._graphs[bsz]
        with torch.inference_mode():
            for m, x in enumerate((language, visual, acoustic)):
                if x.shape != static[m].shape:
                    raise ValueError(f"{NAMES[m]} input has shape {tuple(x.shape)}; the graph takes "
                                     f"{tuple(static[m].shape)}")
                static[m].copy_(x)
            if lengths is None:
                static[3].copy_(torch.tensor([list(self.seq_lens)] * bsz, device=self.device))
            else:
                static[3].copy_(lengths)
            if present is None:
                static[4].fill_(True)
            else:
                static[4].copy_(present)
            graph.replay()
        return DMDScores(**dict(zip(FIELDS, outputs)))
