"""PyTorch reference of the two baselines of ESVAE's Table I, written from a
description of the ESVAE authors' code (repository QgZhan/ESVAE; not copied from any repository):

- FSVAE (Kamata et al., AAAI 2022) as the ESVAE reference builds it: ESVAE's backbone without
  `sample_layer`, an autoregressive Bernoulli posterior Q and prior P (three tdLinear layers each,
  tdBN with alpha = 2, LIF), k output copies per latent sampled by copying one random copy, the
  gradient-free prefix runs in training (training-mode tdBN on each prefix), scheduled sampling of
  P's input, and the PSP-filtered "MMD" loss.
- The conventional VAE on the same backbone (VanillaVAE / VanillaVAELarge).

Layout as the authors' code: time LAST ((N, F, T)), per-step loops. The random draws are inputs
(copy indices j, scheduled-sampling coins and noise, the VAE's eps) so that fixtures are exact.
Only used to generate test fixtures; not part of the Go build.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

import esvae_ref as R

TAU_S = 2.0


class tdLinearBN(R.tdLinear):
    """tdLinear with tdBN (alpha given) and LIF."""

    def __init__(self, in_f, out_f, alpha):
        super().__init__(in_f, out_f, bn=R.tdBatchNorm(out_f, alpha=alpha), spike=R.LIFSpike())


def pick(out, j, L, k):
    """out (N, k*L) -> (N, L): unit l*k + j[n, l] (one copy per latent)."""
    return out.view(out.shape[0], L, k).gather(2, j.unsqueeze(2)).squeeze(2)


class PosteriorBernoulliSTBP(nn.Module):
    """Q: input at step t is [e_t ; z_{t-1}] (2L channels), z_{-1} = 0."""

    def __init__(self, L, k):
        super().__init__()
        self.L, self.k = L, k
        self.register_buffer("initial_input", torch.zeros(1, L, 1))
        self.layers = nn.Sequential(tdLinearBN(2 * L, 2 * L, 2.0), tdLinearBN(2 * L, 4 * L, 2.0),
                                    tdLinearBN(4 * L, k * L, 2.0))

    def forward(self, e, j):
        """e (N, L, T) encoder spikes, j (N, L, T) int64 copy indices -> z (N, L, T), q_z (N, L, k, T)."""
        N, L, T = e.shape
        hist = self.initial_input.expand(N, L, 1).clone()
        with torch.no_grad():  # prefix runs: batch norm in the current mode, no gradient
            for t in range(T - 1):
                out = self.layers(torch.cat([e[..., : t + 1].detach(), hist], 1))  # (N, kL, t+1)
                z_t = pick(out[..., -1], j[..., t], L, self.k)
                hist = torch.cat([hist, z_t.unsqueeze(-1)], -1)
        q = self.layers(torch.cat([e, hist.detach()], 1))  # (N, kL, T), e keeps its gradient
        q_z = q.view(N, L, self.k, T)
        z = q_z.gather(2, j.unsqueeze(2)).squeeze(2)
        return z, q_z


class PriorBernoulliSTBP(nn.Module):
    """P: input at step t is z_{t-1}, z_{-1} = 0."""

    def __init__(self, L, k):
        super().__init__()
        self.L, self.k = L, k
        self.register_buffer("initial_input", torch.zeros(1, L, 1))
        self.layers = nn.Sequential(tdLinearBN(L, 2 * L, 2.0), tdLinearBN(2 * L, 4 * L, 2.0),
                                    tdLinearBN(4 * L, k * L, 2.0))
        self.p = 0.0

    def forward(self, z, coins=None, ss=None, scheduled=True):
        """z (N, L, T) posterior samples (detached here). Scheduled sampling in training: at step
        t >= 5 with coins[t] < p, P's prediction 1[mean_k + 0.001 ss[..., t] > 0.5] replaces z_t in
        P's input. Returns p_z (N, L, k, T)."""
        z = z.detach()
        N, L, T = z.shape
        hist = self.initial_input.expand(N, L, 1).clone()
        if not (self.training and scheduled):
            inp = torch.cat([hist, z[..., :-1]], -1)
        else:
            with torch.no_grad():
                for t in range(T - 1):
                    if t >= 5 and coins[t] < self.p:
                        out = self.layers(hist)[..., -1]  # (N, kL), training-mode BN on the prefix
                        prob = out.view(N, L, self.k).mean(2)
                        tok = (prob + 0.001 * ss[..., t] > 0.5).to(z.dtype)
                        hist = torch.cat([hist, tok.unsqueeze(-1)], -1)
                    else:
                        hist = torch.cat([hist, z[..., t : t + 1]], -1)
            inp = hist
        return self.layers(inp).view(N, L, self.k, T)

    def sample(self, j, T):
        """Generation (eval mode): j (B, L, T) copy indices -> z (B, L, T)."""
        B, L = j.shape[0], self.L
        hist = self.initial_input.expand(B, L, 1).clone()
        for t in range(T):
            out = self.layers(hist)[..., -1]
            hist = torch.cat([hist, pick(out, j[..., t], L, self.k).unsqueeze(-1)], -1)
        return hist[..., 1:]


def psp(y, tau_s=TAU_S):
    """PSP_t = PSP_{t-1} + (y_t - PSP_{t-1}) / tau_s, PSP_{-1} = 0, along the last dim."""
    syn = torch.zeros_like(y[..., 0])
    out = []
    for t in range(y.shape[-1]):
        syn = syn + (y[..., t] - syn) / tau_s
        out.append(syn)
    return torch.stack(out, -1)


class FSVAE(R.ESVAE):
    """FSVAE on ESVAE's backbone; the inherited sample_layer is removed."""

    def __init__(self, in_channels, latent_dim, T, k=20):
        super().__init__(in_channels, latent_dim, T)
        del self.sample_layer
        self.k = k
        self.prior = PriorBernoulliSTBP(latent_dim, k)
        self.posterior = PosteriorBernoulliSTBP(latent_dim, k)

    def forward(self, x, j, coins=None, ss=None, scheduled=True):
        e, _ = self.encode(x)
        z, q_z = self.posterior(e, j)
        x_hat = self.decode(z)
        p_z = self.prior(z, coins, ss, scheduled)
        mse = F.mse_loss(x_hat, x)
        dist = ((psp(q_z.mean(2)) - psp(p_z.mean(2))) ** 2).mean()
        return dict(e=e, z=z, q_z=q_z, p_z=p_z, x_hat=x_hat, mse=mse, dist=dist, loss=mse + dist)

    def generate(self, j):
        z = self.prior.sample(j, self.T)
        return z, self.decode(z)


class FSVAELarge(FSVAE):
    hidden_dims = [32, 64, 128, 256, 512]
    image_size = 64


class VanillaVAE(nn.Module):
    """Conventional VAE on the same backbone (the authors' VanillaVAE)."""

    hidden_dims = [32, 64, 128, 256]
    image_size = 32

    def __init__(self, in_channels, latent_dim):
        super().__init__()
        hd = self.hidden_dims
        mods, c = [], in_channels
        for h in hd:
            mods.append(nn.Sequential(nn.Conv2d(c, h, 3, stride=2, padding=1), nn.BatchNorm2d(h),
                                      nn.LeakyReLU()))
            c = h
        self.encoder = nn.Sequential(*mods)
        flat = hd[-1] * 4
        self.fc_mu = nn.Linear(flat, latent_dim)
        self.fc_var = nn.Linear(flat, latent_dim)
        self.decoder_input = nn.Linear(latent_dim, flat)
        rev = hd[::-1]
        self.decoder = nn.Sequential(*[
            nn.Sequential(nn.ConvTranspose2d(rev[i], rev[i + 1], 3, stride=2, padding=1, output_padding=1),
                          nn.BatchNorm2d(rev[i + 1]), nn.LeakyReLU())
            for i in range(len(rev) - 1)])
        self.final_layer = nn.Sequential(
            nn.ConvTranspose2d(rev[-1], rev[-1], 3, stride=2, padding=1, output_padding=1),
            nn.BatchNorm2d(rev[-1]), nn.LeakyReLU(),
            nn.ConvTranspose2d(rev[-1], in_channels, 3, stride=1, padding=1), nn.Tanh())

    def encode(self, x):
        h = torch.flatten(self.encoder(x), start_dim=1)
        return self.fc_mu(h), self.fc_var(h)

    def decode(self, z):
        h = self.decoder_input(z).view(z.shape[0], self.hidden_dims[-1], 2, 2)
        return self.final_layer(self.decoder(h))

    def forward(self, x, eps, kld_weight):
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * eps
        x_hat = self.decode(z)
        mse = F.mse_loss(x_hat, x)
        kld = torch.mean(-0.5 * torch.sum(1 + logvar - mu ** 2 - logvar.exp(), dim=1))
        return dict(mu=mu, logvar=logvar, z=z, x_hat=x_hat, mse=mse, kld=kld, loss=mse + kld_weight * kld)


class VanillaVAELarge(VanillaVAE):
    hidden_dims = [32, 64, 128, 256, 512]
    image_size = 64
