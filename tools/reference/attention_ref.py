"""PyTorch reference of the two spiking attention modules of ESVAE's Table V, written from a
description of the authors' released code (not copied from any repository), in the authors' layout (time LAST,
(N, C, H, W, T)) and with their module and key names:

- TAID_decoding (Qiu et al., ICLR 2023 Tiny Paper): replaces `membrane_output_layer`; keys
  `membrane_output_layer.conv.weight` (T, T, 1) and the unused `membrane_output_layer.conv_c.weight`
  (1, 1, 4).
- TCSAModule, "PFA" (Deng et al., KBS 2024): on the direct-encoded input, before the encoder; keys
  `PFA.TS_conv.{weight,bias}`, `PFA.TC_FC.{weight,bias}`, `PFA.SC_FC.{weight,bias}`. It computes
  per time step, as the authors' code does (the Go model uses that its input is the same at every
  step; this reference does not).

The backbones are esvae_ref.ESVAE and baselines_ref.FSVAE. Only used to generate test fixtures.
"""

import torch
import torch.nn as nn

import baselines_ref as B
import esvae_ref as R


class TAID_decoding(nn.Module):
    """y[n, c, h, w] = sum_t sigmoid(conv(mean_hw x))[n, t, c] x[n, c, h, w, t] (the caller applies
    tanh). conv: Conv1d(T, T, kernel_size_t, 'same', no bias) mixing time steps (T is its channel
    axis, the image channels its length); conv_c: created, never used (quirk kept)."""

    def __init__(self, kernel_size_t=1, kernel_size_c=4, T=16, channel=1):
        super().__init__()
        self.conv = nn.Conv1d(T, T, kernel_size_t, padding="same", bias=False)
        self.conv_c = nn.Conv1d(channel, channel, kernel_size_c, padding="same", bias=False)

    def forward(self, x):
        m = x.mean(dim=(2, 3)).transpose(1, 2)  # (N, C, T) -> (N, T, C)
        w = torch.sigmoid(self.conv(m))  # (N, T, C)
        w = w.transpose(1, 2)[:, :, None, None, :]  # (N, C, 1, 1, T)
        return (x * w).sum(-1)


class TCSAModule(nn.Module):
    """PFA: a rank-R CP attention map A (N, T, C, H, W) from spatial (TS_conv), temporal (TC_FC)
    and channel (SC_FC) factors, each a sigmoid; output relu(A * x)."""

    def __init__(self, H=32, W=32, T=16, C=3, kernel_sizeTS=3, rank=64):
        super().__init__()
        self.rank = rank
        self.TS_conv = nn.Conv2d(T, rank, kernel_sizeTS, stride=1, padding=kernel_sizeTS // 2, bias=True)
        self.TC_FC = nn.Linear(C, rank)
        self.SC_FC = nn.Linear(T, rank)

    def forward(self, x):
        xt = x.permute(0, 4, 1, 2, 3)  # (N, T, C, H, W)
        N, T, C, H, W = xt.shape
        Rk = self.rank
        s = torch.sigmoid(self.TS_conv(xt.mean(2)))  # (N, R, H, W)
        s = s.permute(1, 0, 2, 3).reshape(Rk, N, H * W)  # (R, N, HW)
        p = xt.mean(dim=(3, 4))  # (N, T, C)
        tau = torch.sigmoid(self.TC_FC(p)).permute(2, 0, 1)  # (N, T, R) -> (R, N, T)
        chi = torch.sigmoid(self.SC_FC(p.transpose(1, 2))).permute(2, 0, 1)  # (N, C, R) -> (R, N, C)
        A = torch.einsum("rnk,rnt,rnc->ntck", s, tau, chi).reshape(N, T, C, H, W)
        out = torch.relu(A * xt)
        return out.permute(0, 2, 3, 4, 1)  # (N, C, H, W, T)


def _encode_pfa(self, x):
    """encode(PFA(x)) with x repeated over time (the direct encoding) before PFA."""
    xs = x.unsqueeze(-1).repeat(1, 1, 1, 1, self.T)
    h = self.encoder(self.PFA(xs))
    h = torch.flatten(h, start_dim=1, end_dim=3)
    e = self.before_latent_layer(h)
    return e, e.mean(-1)


def attach(model, readout, attention, rank=64):
    """Give model (esvae_ref.ESVAE or baselines_ref.FSVAE, 32x32) TAID and/or PFA. Modules are added
    after the backbone's (PyTorch appends new children to the state_dict's end)."""
    if readout == "taid":
        model.membrane_output_layer = TAID_decoding(1, 4, model.T, 1)
    if attention == "pfa":
        assert model.image_size == 32, "the authors build PFA for the 32x32 model only"
        model.PFA = TCSAModule(32, 32, model.T, model.in_channels, 3, rank)
        model.encode = _encode_pfa.__get__(model)
    return model


def esvae(in_channels, latent_dim, T, readout="membrane", attention="none", rank=64):
    return attach(R.ESVAE(in_channels, latent_dim, T), readout, attention, rank)


def fsvae(in_channels, latent_dim, T, k, readout="membrane", attention="none", rank=64):
    return attach(B.FSVAE(in_channels, latent_dim, T, k), readout, attention, rank)
