"""PyTorch reference implementation of ESVAE (Efficient Spiking Variational Autoencoder).

Written from the paper (Zhan et al., arXiv 2310.14839) and a description of the authors' reference
implementation (repository QgZhan/ESVAE), not copied from it, in the layout of their FSVAE/ESVAE code:
images are (N, C, H, W), spike tensors (N, C, H, W, T) or (N, F, T) with time LAST, layers
loop over time steps one by one, and the non-differentiable spike functions are
`torch.autograd.Function`s with rectangular surrogate gradients.

Module and parameter names follow the reference checkpoint keys exactly
(encoder.{i}.weight, encoder.{i}.bn.running_mean, before_latent_layer.*, decoder_input.*,
decoder.{i}.*, final_layer.{0,1}.*, membrane_output_layer.coef, sample_layer.0.*), so a
state_dict of these classes has the same keys and shapes as an authors' checkpoint
(minus the unused prior.* / posterior.* entries).

This file is only used to generate test fixtures for the Go implementation; it is not
part of the Go build.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# Constants (spec, "Constants")
# ---------------------------------------------------------------------------
V_TH = 0.2          # firing threshold; also scales tdBN
TAU = 0.25          # membrane decay
A = 0.5             # surrogate half-width
ALPHA = 1.0         # tdBN alpha
BN_EPS = 1e-5
BN_MOMENTUM = 0.1
MMD_LAMBDA = 0.001
READOUT_DECAY = 0.8
MMD_KERNEL_MUL = 2.0
MMD_KERNEL_NUM = 5


# ---------------------------------------------------------------------------
# Spike functions with surrogate gradients
# ---------------------------------------------------------------------------
class SpikeFn(torch.autograd.Function):
    """o = H(u - V_th), strict >.

    Backward (reference quirk): dO/du = 1/(2a) where |u| < a, i.e. the window is centred
    on u = 0, NOT on V_th.
    """

    @staticmethod
    def forward(ctx, u):
        ctx.save_for_backward(u)
        return (u > V_TH).to(u.dtype)

    @staticmethod
    def backward(ctx, grad):
        (u,) = ctx.saved_tensors
        window = (u.abs() < A).to(u.dtype) / (2 * A)
        return grad * window


class PoissonFn(torch.autograd.Function):
    """z = H(v), v = r - u (strict >). Backward: dz/dv = 1/(2a) where |v| < a."""

    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return (v > 0).to(v.dtype)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        window = (v.abs() < A).to(v.dtype) / (2 * A)
        return grad * window


# ---------------------------------------------------------------------------
# LIF neuron
# ---------------------------------------------------------------------------
class LIFSpike(nn.Module):
    """Leaky integrate-and-fire over the last (time) dimension.

        u_t = tau * u_{t-1} * (1 - o_{t-1}) + x_t      (u_{-1} = 0, o_{-1} = 0)
        o_t = H(u_t - V_th)

    Nothing is detached: autograd flows through u_{t-1} and through o_{t-1} in the
    reset term.

    After each forward, `self.stats` holds (firing rate, min |u - V_th|) for diagnostics
    (the margin tells how close any membrane came to flipping a spike).
    """

    def __init__(self):
        super().__init__()
        self.stats = None

    def forward(self, x):
        T = x.shape[-1]
        u = torch.zeros_like(x[..., 0])
        o = torch.zeros_like(u)
        outs = []
        margin = None
        for t in range(T):
            u = TAU * u * (1 - o) + x[..., t]
            o = SpikeFn.apply(u)
            outs.append(o)
            with torch.no_grad():
                m = (u - V_TH).abs().min()
                margin = m if margin is None else torch.minimum(margin, m)
        out = torch.stack(outs, dim=-1)
        with torch.no_grad():
            self.stats = (out.mean().item(), margin.item())
        return out


# ---------------------------------------------------------------------------
# Threshold-dependent batch norm
# ---------------------------------------------------------------------------
class tdBatchNorm(nn.BatchNorm2d):
    """tdBN over (N, C, H, W, T): statistics per channel over N, H, W and T.

        y = alpha * V_th * (x - mean) / sqrt(var + eps) * gamma + beta
        training: mean, biased var of the batch;
                  running_mean = (1-m) running_mean + m mean
                  running_var  = (1-m) running_var  + m var n/(n-1)   (n = elements per channel)
        eval:     running statistics.

    Subclasses BatchNorm2d only for its parameters/buffers (weight, bias, running_mean,
    running_var, num_batches_tracked) so the state_dict keys match the reference.
    """

    def __init__(self, num_features, eps=BN_EPS, momentum=BN_MOMENTUM, alpha=ALPHA):
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.alpha = alpha

    def forward(self, x):
        dims = [0, 2, 3, 4]
        if self.training:
            self.num_batches_tracked += 1
            mean = x.mean(dims)
            var = x.var(dims, unbiased=False)
            n = x.numel() / x.size(1)
            with torch.no_grad():
                m = self.momentum
                self.running_mean.copy_((1 - m) * self.running_mean + m * mean)
                self.running_var.copy_((1 - m) * self.running_var + m * var * n / (n - 1))
        else:
            mean = self.running_mean
            var = self.running_var
        shape = (1, -1, 1, 1, 1)
        y = self.alpha * V_TH * (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        return y * self.weight.view(shape) + self.bias.view(shape)


# ---------------------------------------------------------------------------
# Time-distributed layers (same weights at every step) followed by optional bn and LIF
# ---------------------------------------------------------------------------
class tdConv(nn.Conv3d):
    """Conv3d with kernel (3,3,1), stride (s,s,1), padding (1,1,0): a 2-D 3x3 conv per step.
    Weight (out, in, 3, 3, 1)."""

    def __init__(self, in_ch, out_ch, stride=1, bn=None, spike=None):
        super().__init__(in_ch, out_ch, kernel_size=(3, 3, 1), stride=(stride, stride, 1),
                         padding=(1, 1, 0), bias=True)
        self.bn = bn
        self.spike = spike

    def forward(self, x):
        x = F.conv3d(x, self.weight, self.bias, self.stride, self.padding)
        if self.bn is not None:
            x = self.bn(x)
        if self.spike is not None:
            x = self.spike(x)
        return x


class tdConvTranspose(nn.ConvTranspose3d):
    """ConvTranspose3d with kernel (3,3,1), stride (s,s,1), padding (1,1,0),
    output_padding (op,op,0). Weight (in, out, 3, 3, 1)."""

    def __init__(self, in_ch, out_ch, stride=1, output_padding=0, bn=None, spike=None):
        super().__init__(in_ch, out_ch, kernel_size=(3, 3, 1), stride=(stride, stride, 1),
                         padding=(1, 1, 0), output_padding=(output_padding, output_padding, 0),
                         bias=True)
        self.bn = bn
        self.spike = spike

    def forward(self, x):
        x = F.conv_transpose3d(x, self.weight, self.bias, self.stride, self.padding,
                               self.output_padding)
        if self.bn is not None:
            x = self.bn(x)
        if self.spike is not None:
            x = self.spike(x)
        return x


class tdLinear(nn.Linear):
    """Linear map per step on (N, F, T); weight (out, in). tdBN sees (N, F, 1, 1, T)."""

    def __init__(self, in_f, out_f, bn=None, spike=None):
        super().__init__(in_f, out_f, bias=True)
        self.bn = bn
        self.spike = spike

    def forward(self, x):
        y = F.linear(x.transpose(1, 2), self.weight, self.bias).transpose(1, 2)
        if self.bn is not None:
            y = self.bn(y[:, :, None, None, :])[:, :, 0, 0, :]
        if self.spike is not None:
            y = self.spike(y)
        return y


class MembraneOutputLayer(nn.Module):
    """m = sum_t x_t * 0.8^(T-1-t); coef buffer of shape (1,1,1,1,T)."""

    def __init__(self, T):
        super().__init__()
        coef = torch.tensor([READOUT_DECAY ** (T - 1 - t) for t in range(T)],
                            dtype=torch.float64)
        self.register_buffer("coef", coef.to(torch.get_default_dtype()).view(1, 1, 1, 1, T))

    def forward(self, x):
        return torch.sum(x * self.coef, dim=-1)


# ---------------------------------------------------------------------------
# MMD^2 with a multi-bandwidth RBF kernel (reference MMD_loss(kernel_type='rbf'))
# ---------------------------------------------------------------------------
def mmd_rbf(source, target, kernel_mul=MMD_KERNEL_MUL, kernel_num=MMD_KERNEL_NUM):
    """S = [source; target] (2N rows), D = pairwise squared distances,
    b = sum(D) / ((2N)^2 - 2N) WITHOUT gradient, divided by kernel_mul^(kernel_num//2) = 4,
    K = sum_{i=0..4} exp(-D / (b * 2^i)),
    MMD^2 = mean(K_qq) + mean(K_pp) - mean(K_qp) - mean(K_pq)."""
    n = source.size(0)
    total = torch.cat([source, target], dim=0)
    m = total.size(0)
    diff = total.unsqueeze(0) - total.unsqueeze(1)
    d = (diff ** 2).sum(2)
    with torch.no_grad():
        bandwidth = d.sum() / (m * m - m)
        bandwidth = bandwidth / (kernel_mul ** (kernel_num // 2))
    k = sum(torch.exp(-d / (bandwidth * kernel_mul ** i)) for i in range(kernel_num))
    xx = k[:n, :n].mean()
    yy = k[n:, n:].mean()
    xy = k[:n, n:].mean()
    yx = k[n:, :n].mean()
    return xx + yy - xy - yx


# ---------------------------------------------------------------------------
# The networks
# ---------------------------------------------------------------------------
class ESVAE(nn.Module):
    """ESVAE for 32x32 inputs (MNIST, Fashion-MNIST, CIFAR-10)."""

    hidden_dims = [32, 64, 128, 256]
    image_size = 32

    def __init__(self, in_channels, latent_dim, T):
        super().__init__()
        self.in_channels = in_channels
        self.latent_dim = latent_dim
        self.T = T
        hd = self.hidden_dims
        flat = hd[-1] * 4  # 2x2 spatial after the encoder

        # encoder.i: tdConv 3x3 s2 p1, tdBN, LIF
        layers, c = [], in_channels
        for h in hd:
            layers.append(tdConv(c, h, stride=2, bn=tdBatchNorm(h), spike=LIFSpike()))
            c = h
        self.encoder = nn.Sequential(*layers)
        # before_latent_layer: tdLinear flat -> L, tdBN, LIF  -> e (N, L, T)
        self.before_latent_layer = tdLinear(flat, latent_dim, bn=tdBatchNorm(latent_dim),
                                            spike=LIFSpike())
        # decoder_input: tdLinear L -> flat, tdBN, LIF
        self.decoder_input = tdLinear(latent_dim, flat, bn=tdBatchNorm(flat), spike=LIFSpike())
        # decoder.i: tdConvTranspose 3x3 s2 p1 op1, tdBN, LIF
        rev = hd[::-1]
        self.decoder = nn.Sequential(*[
            tdConvTranspose(rev[i], rev[i + 1], stride=2, output_padding=1,
                            bn=tdBatchNorm(rev[i + 1]), spike=LIFSpike())
            for i in range(len(rev) - 1)])
        # final_layer.0: 32->32 s2 op1, tdBN, LIF; final_layer.1: 32->C_in s1, no bn, no spike
        self.final_layer = nn.Sequential(
            tdConvTranspose(rev[-1], rev[-1], stride=2, output_padding=1,
                            bn=tdBatchNorm(rev[-1]), spike=LIFSpike()),
            tdConvTranspose(rev[-1], in_channels, stride=1, output_padding=0, bn=None, spike=None),
        )
        self.membrane_output_layer = MembraneOutputLayer(T)
        # sample_layer: Linear L -> L then sigmoid (the "bottleneck")
        self.sample_layer = nn.Sequential(nn.Linear(latent_dim, latent_dim), nn.Sigmoid())

    # -- encoder ------------------------------------------------------------
    def encode(self, x):
        """x (N, C, H, W) -> (e (N, L, T) spikes, r_q = mean_t e_t (N, L)).
        Direct input encoding: x_t = x for every t."""
        xs = x.unsqueeze(-1).repeat(1, 1, 1, 1, self.T)
        h = self.encoder(xs)
        h = torch.flatten(h, start_dim=1, end_dim=3)  # (N, C*2*2, T), C-order (c, h, w)
        e = self.before_latent_layer(h)
        r_q = e.mean(-1)
        return e, r_q

    @staticmethod
    def sample_posterior(r, u):
        """z_t = H(r - u_t), u (N, L, T) ~ U(0,1). Also used for the prior rate."""
        return PoissonFn.apply(r.unsqueeze(-1) - u)

    # -- decoder ------------------------------------------------------------
    def decode(self, z):
        """z (N, L, T) spikes -> x_hat (N, C, H, W) = tanh(sum_t y_t 0.8^(T-1-t))."""
        n = z.shape[0]
        h = self.decoder_input(z)
        h = h.view(n, self.hidden_dims[-1], 2, 2, self.T)
        h = self.decoder(h)
        h = self.final_layer(h)
        h = self.membrane_output_layer(h)
        return torch.tanh(h)

    # -- prior --------------------------------------------------------------
    def prior_rate(self, noise):
        """r_p = sigmoid(W n + b), n ~ N(0, I) of shape (N, L)."""
        return self.sample_layer(noise)

    # -- loss ---------------------------------------------------------------
    @staticmethod
    def loss(x_hat, x, r_q, r_p):
        """loss = mean MSE(x_hat, x) + lambda * MMD^2(r_q, r_p). Returns (loss, mse, mmd)."""
        mse = F.mse_loss(x_hat, x)
        mmd = mmd_rbf(r_q, r_p)
        return mse + MMD_LAMBDA * mmd, mse, mmd

    def forward(self, x, u_post, noise):
        """One training-style pass with given noise. Returns a dict of intermediate values."""
        e, r_q = self.encode(x)
        z = self.sample_posterior(r_q, u_post)
        x_hat = self.decode(z)
        r_p = self.prior_rate(noise)
        loss, mse, mmd = self.loss(x_hat, x, r_q, r_p)
        return dict(e=e, r_q=r_q, z=z, x_hat=x_hat, r_p=r_p, loss=loss, mse=mse, mmd=mmd)

    def generate(self, noise, u):
        """n -> r_p -> z_t = H(r_p - u_t) -> decode."""
        r_p = self.prior_rate(noise)
        z = self.sample_posterior(r_p, u)
        return r_p, z, self.decode(z)


class ESVAELarge(ESVAE):
    """ESVAE for 64x64 inputs (CelebA): five encoder convs 32..512, flatten 2048."""

    hidden_dims = [32, 64, 128, 256, 512]
    image_size = 64
