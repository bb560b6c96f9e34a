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
    """`inference.scores` with tensor-tuple outputs, as the tracer needs."""

    def __init__(self, model: "DMD"):
        super().__init__()
        self.model = model

    def forward(self, language, visual, acoustic, lengths, present):
        s = scores(self.model, language, visual, acoustic, lengths, present)
        return tuple(getattr(s, k) for k in FIELDS)


class TracedScores:
    """`model`'s scoring path as a frozen TorchScript graph on `model`'s device.

    Args:
        model: a `DMD` in eval mode, on precomputed text features (the live and faithful presets).
    """

    def __init__(self, model: "DMD"):
        if model.training:
            raise RuntimeError("TracedScores traces the eval-mode scoring path: call model.eval() first")
        if model.text_encoder is not None:
            raise ValueError("TracedScores takes models on precomputed text features (no in-model text encoder)")
        self.cfg = cfg = model.cfg
        self.device = model.device
        self.seq_lens = tuple(cfg.seq_lens)
        b = 3  # any batch > 1: the trace keeps the batch size symbolic
        example = tuple(torch.zeros(b, cfg.seq_lens[m], cfg.input_dims[m], device=self.device) for m in range(3))
        example += (torch.tensor([list(cfg.seq_lens)] * b, device=self.device),
                    torch.ones(b, 3, dtype=torch.bool, device=self.device))
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # tracer notices about shape-derived Python ints
            # one eager call first fills the encoders' positional tables, so the trace sees them as constants
            scores(model, *example)
            traced = torch.jit.trace(_Scores(model).eval(), example, check_trace=False)
            self.graph = torch.jit.freeze(traced.eval())
            # TorchScript's profiling executor profiles the first call and optimises on the second (~0.5 s each
            # here); pay that now, not on the first live window. Later batch sizes reuse the optimised graph.
            for _ in range(2):
                self.graph(*example)

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
