"""Fidelity to the authors' code (mdswyz/DMD) where the rest of the suite would not notice a drift: small cases
whose expected values are computed by hand in the test, each able to fail for one specific departure."""

import math

import pytest
import torch

from dmd_model.transformer import TransformerEncoder


def hand_pe(p: int) -> list[float]:
    """fairseq's sinusoidal table for dim 4: half 2, w = [1, 10000^-1], [sin(p w0), sin(p w1), cos(p w0), cos(p w1)];
    position 0 (padding) is the zero vector."""
    if p == 0:
        return [0.0] * 4
    return [math.sin(p), math.sin(p * 1e-4), math.cos(p), math.cos(p * 1e-4)]


def test_positions_are_absolute_with_padding_zero():
    """fairseq make_positions: a step whose channel 0 is exactly 0 gets position 0 (zero vector); every other step
    keeps its absolute index 1..T. Sample 0 has a leading and an inner zero frame: positions [0, 2, 0, 4, 5], not
    the renumbered [0, 1, 0, 2, 3]."""
    enc = TransformerEncoder(4, 2, layers=0).eval()
    x = torch.ones(5, 2, 4)
    x[0, 0, 0] = 0.0  # leading zero frame (channel 0 only decides)
    x[2, 0, 0] = 0.0  # inner zero frame
    x[3, 1, 1:] = 0.0  # zeros in other channels do not make padding
    with torch.no_grad():
        emb = enc._embed(x)
    positions = [[0, 2, 0, 4, 5], [1, 2, 3, 4, 5]]
    for b in range(2):
        for t in range(5):
            want = torch.tensor([2.0 * v for v in x[t, b].tolist()]) + torch.tensor(hand_pe(positions[b][t]))
            torch.testing.assert_close(emb[t, b], want, rtol=0, atol=1e-6)
