// The loops of spikeconv.cpp. Included there once per instruction set, each time inside a namespace
// of its own and under a target pragma (AVX-512, AVX2, the build's baseline): include nothing here.
//
// x is binary and given as its index: for each input pixel q (N*H*W of them, N, H, W order), the
// cnt[q] channels where x is 1, idx[q*Ci ...] ascending. The weight is wt[kh][kw][ci][co]; the output
// and its gradient are N, Ho, Wo, Co in memory (channels last). A tap's input pixel for an output
// row oh is given by the table rows of SpikeGeom (spikeconv.cpp).


// Vec: 64 bytes of scalar_t as a GCC vector (one AVX-512 register, two AVX2 ones, four SSE ones),
// loaded and stored unaligned.
template <typename scalar_t>
struct Vec;
template <>
struct Vec<float> {
  typedef float type __attribute__((vector_size(64), aligned(4), may_alias));
  static constexpr int n = 16;
};
template <>
struct Vec<double> {
  typedef double type __attribute__((vector_size(64), aligned(8), may_alias));
  static constexpr int n = 8;
};

// max_block: output channels a walk over the index accumulates at once (in registers): 8 vectors.
template <typename scalar_t>
constexpr int max_block() {
  return 8 * Vec<scalar_t>::n;
}

// forward_pixels: y[p, :] for the output pixels p in [p0, p1), a block of output channels at a
// time: the sum of the weight rows of the active (tap, input channel) pairs. CB > 0: blocks of CB
// channels (a multiple of the vector length dividing Co); CB == 0: Co below the vector length.
template <typename scalar_t, int CB>
void forward_pixels(const SpikeGeom &g, const scalar_t *wt, const int16_t *idx, const int32_t *cnt, scalar_t *y,
                    int64_t p0, int64_t p1) {
  typedef typename Vec<scalar_t>::type vec;
  constexpr int L = Vec<scalar_t>::n, NV = CB > 0 ? CB / L : 1;
  const int64_t Co = g.Co, Ci = g.Ci, K = g.K, W = g.W, H = g.H;
  const int64_t width = CB > 0 ? CB : Co;
  // (n, oh, ow) of p, advanced with p (divisions per pixel cost more than the pixel's adds)
  int64_t ow = p0 % g.Wo, oh = (p0 / g.Wo) % g.Ho, n = p0 / (g.Wo * g.Ho);
  for (int64_t p = p0; p < p1; ++p, ow = ow + 1 == g.Wo ? (oh = oh + 1 == g.Ho ? (++n, 0) : oh + 1, 0) : ow + 1) {
    const int32_t nr = g.rn[oh], nc = g.cn[ow];
    for (int64_t c0 = 0; c0 < Co; c0 += width) {
      vec acc[NV];
      scalar_t sacc[L];
      for (int v = 0; v < NV; ++v) acc[v] = vec{};
      for (int k = 0; k < L; ++k) sacc[k] = 0;
      for (int32_t a = 0; a < nr; ++a) {
        const int64_t kh = g.rk[oh * K + a], ih = g.ri[oh * K + a];
        for (int32_t b = 0; b < nc; ++b) {
          const int64_t kw = g.ck[ow * K + b], iw = g.ci_[ow * K + b];
          const int64_t q = (n * H + ih) * W + iw;
          const int16_t *ix = idx + q * Ci;
          const int32_t m = cnt[q];
          const scalar_t *wtap = wt + (kh * K + kw) * Ci * Co + c0;
          for (int32_t j = 0; j < m; ++j) {
            const scalar_t *wr = wtap + static_cast<int64_t>(ix[j]) * Co;
            if (CB > 0) {
              const vec *wv = reinterpret_cast<const vec *>(wr);
              for (int v = 0; v < NV; ++v) acc[v] += wv[v];
            } else {
              for (int64_t k = 0; k < width; ++k) sacc[k] += wr[k];
            }
          }
        }
      }
      scalar_t *yo = y + p * Co + c0;
      if (CB > 0) {
        vec *yv = reinterpret_cast<vec *>(yo);
        for (int v = 0; v < NV; ++v) yv[v] = acc[v];
      } else {
        for (int64_t k = 0; k < width; ++k) yo[k] = sacc[k];
      }
    }
  }
}

// weight_grad_pixels adds to dw[kh][kw][ci][co] the gradient of the output pixels [p0, p1): each
// active (tap, input channel) pair's weight row gets the pixel's output gradient gy[p, :].
template <typename scalar_t, int CB>
void weight_grad_pixels(const SpikeGeom &g, const scalar_t *gy, const int16_t *idx, const int32_t *cnt,
                        scalar_t *dw, int64_t p0, int64_t p1) {
  typedef typename Vec<scalar_t>::type vec;
  constexpr int L = Vec<scalar_t>::n, NV = CB > 0 ? CB / L : 1;
  const int64_t Co = g.Co, Ci = g.Ci, K = g.K, W = g.W, H = g.H;
  const int64_t width = CB > 0 ? CB : Co;
  // (n, oh, ow) of p, advanced with p (divisions per pixel cost more than the pixel's adds)
  int64_t ow = p0 % g.Wo, oh = (p0 / g.Wo) % g.Ho, n = p0 / (g.Wo * g.Ho);
  for (int64_t p = p0; p < p1; ++p, ow = ow + 1 == g.Wo ? (oh = oh + 1 == g.Ho ? (++n, 0) : oh + 1, 0) : ow + 1) {
    const int32_t nr = g.rn[oh], nc = g.cn[ow];
    for (int64_t c0 = 0; c0 < Co; c0 += width) {
      const scalar_t *go = gy + p * Co + c0;
      vec gv[NV];
      if (CB > 0)
        for (int v = 0; v < NV; ++v) gv[v] = reinterpret_cast<const vec *>(go)[v];
      for (int32_t a = 0; a < nr; ++a) {
        const int64_t kh = g.rk[oh * K + a], ih = g.ri[oh * K + a];
        for (int32_t b = 0; b < nc; ++b) {
          const int64_t kw = g.ck[ow * K + b], iw = g.ci_[ow * K + b];
          const int64_t q = (n * H + ih) * W + iw;
          const int16_t *ix = idx + q * Ci;
          const int32_t m = cnt[q];
          scalar_t *dtap = dw + (kh * K + kw) * Ci * Co + c0;
          for (int32_t j = 0; j < m; ++j) {
            scalar_t *dr = dtap + static_cast<int64_t>(ix[j]) * Co;
            if (CB > 0) {
              vec *dv = reinterpret_cast<vec *>(dr);
              for (int v = 0; v < NV; ++v) dv[v] += gv[v];
            } else {
              for (int64_t k = 0; k < width; ++k) dr[k] += go[k];
            }
          }
        }
      }
    }
  }
}

// index_pixels writes the index of the pixels [p0, p1) of x (N*H*W pixels of Ci channels) and
// returns false if some value is neither 0 nor 1.
template <typename scalar_t>
bool index_pixels(const scalar_t *x, int64_t Ci, int16_t *idx, int32_t *cnt, int64_t p0, int64_t p1) {
  bool binary = true;
  for (int64_t p = p0; p < p1; ++p) {
    const scalar_t *xr = x + p * Ci;
    int16_t *ix = idx + p * Ci;
    int32_t m = 0;
    bool ok = true;
    for (int64_t c = 0; c < Ci; ++c) {
      const scalar_t v = xr[c];
      ix[m] = static_cast<int16_t>(c);
      m += v != scalar_t(0);
      ok &= (v == scalar_t(0)) | (v == scalar_t(1));
    }
    cnt[p] = m;
    binary &= ok;
  }
  return binary;
}

template <typename scalar_t, int CB>
struct Blocked {
  static void forward(const SpikeGeom &g, const scalar_t *wt, const int16_t *idx, const int32_t *cnt, scalar_t *y,
                      int64_t p0, int64_t p1) {
    forward_pixels<scalar_t, CB>(g, wt, idx, cnt, y, p0, p1);
  }
  static void weight_grad(const SpikeGeom &g, const scalar_t *gy, const int16_t *idx, const int32_t *cnt,
                          scalar_t *dw, int64_t p0, int64_t p1) {
    weight_grad_pixels<scalar_t, CB>(g, gy, idx, cnt, dw, p0, p1);
  }
};

// block_of: the channel block for Co output channels: the largest of 8, 4, 2, 1 vectors that divides
// Co, else 0 (Co below one vector, one block) or -1 (not handled: no multiple of the vector length).
template <typename scalar_t>
int block_of(int64_t Co) {
  constexpr int L = Vec<scalar_t>::n;
  for (int b = max_block<scalar_t>(); b >= L; b /= 2)
    if (Co % b == 0) return b;
  return Co < L ? 0 : -1;
}

template <typename scalar_t>
void forward(const SpikeGeom &g, const scalar_t *wt, const int16_t *idx, const int32_t *cnt, scalar_t *y, int64_t p0,
             int64_t p1) {
  constexpr int L = Vec<scalar_t>::n;
  switch (block_of<scalar_t>(g.Co)) {
    case 8 * L: Blocked<scalar_t, 8 * L>::forward(g, wt, idx, cnt, y, p0, p1); break;
    case 4 * L: Blocked<scalar_t, 4 * L>::forward(g, wt, idx, cnt, y, p0, p1); break;
    case 2 * L: Blocked<scalar_t, 2 * L>::forward(g, wt, idx, cnt, y, p0, p1); break;
    case L: Blocked<scalar_t, L>::forward(g, wt, idx, cnt, y, p0, p1); break;
    case 0: Blocked<scalar_t, 0>::forward(g, wt, idx, cnt, y, p0, p1); break;
    default: break;
  }
}

template <typename scalar_t>
void weight_grad(const SpikeGeom &g, const scalar_t *gy, const int16_t *idx, const int32_t *cnt, scalar_t *dw,
                 int64_t p0, int64_t p1) {
  constexpr int L = Vec<scalar_t>::n;
  switch (block_of<scalar_t>(g.Co)) {
    case 8 * L: Blocked<scalar_t, 8 * L>::weight_grad(g, gy, idx, cnt, dw, p0, p1); break;
    case 4 * L: Blocked<scalar_t, 4 * L>::weight_grad(g, gy, idx, cnt, dw, p0, p1); break;
    case 2 * L: Blocked<scalar_t, 2 * L>::weight_grad(g, gy, idx, cnt, dw, p0, p1); break;
    case L: Blocked<scalar_t, L>::weight_grad(g, gy, idx, cnt, dw, p0, p1); break;
    case 0: Blocked<scalar_t, 0>::weight_grad(g, gy, idx, cnt, dw, p0, p1); break;
    default: break;
  }
}
