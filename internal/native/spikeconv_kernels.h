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
#ifdef ESV_SPIKECONV_AVX512
// index_pixels_avx512: index_pixels for float32 and Ci a multiple of 16, 16 channels at a time: a
// compare gives the mask of the channels that fired, a compress packs their numbers. Each store
// writes 16 numbers from the pixel's count on: at most up to the pixel's Ci-th slot.
inline bool index_pixels_avx512(const float *x, int64_t Ci, int16_t *idx, int32_t *cnt, int64_t p0, int64_t p1) {
  const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f);
  const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  unsigned bad = 0;
  for (int64_t p = p0; p < p1; ++p) {
    const float *xr = x + p * Ci;
    int16_t *ix = idx + p * Ci;
    int32_t m = 0;
    for (int64_t c = 0; c < Ci; c += 16) {
      const __m512 v = _mm512_loadu_ps(xr + c);
      const __mmask16 nz = _mm512_cmp_ps_mask(v, zero, _CMP_NEQ_UQ);  // NaN: nonzero, not binary
      const __mmask16 on = _mm512_cmp_ps_mask(v, one, _CMP_EQ_OQ);
      bad |= static_cast<unsigned>(nz & ~on);
      const __m512i ch = _mm512_add_epi32(iota, _mm512_set1_epi32(static_cast<int>(c)));
      const __m512i packed = _mm512_maskz_compress_epi32(nz, ch);
      _mm256_storeu_si256(reinterpret_cast<__m256i *>(ix + m), _mm512_cvtepi32_epi16(packed));
      m += __builtin_popcount(static_cast<unsigned>(nz));
    }
    cnt[p] = m;
  }
  return bad == 0;
}
#endif

template <typename scalar_t>
bool index_pixels(const scalar_t *x, int64_t Ci, int16_t *idx, int32_t *cnt, int64_t p0, int64_t p1) {
#ifdef ESV_SPIKECONV_AVX512
  if (std::is_same<scalar_t, float>::value && Ci % 16 == 0)
    return index_pixels_avx512(reinterpret_cast<const float *>(x), Ci, idx, cnt, p0, p1);
#endif
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

// block_of: the channel block for Co output channels: the largest of 8, 4, 2, 1 vectors that divides
// Co, else 0 (Co below one vector, one block) or -1 (not handled: no multiple of the vector length).
template <typename scalar_t>
int block_of(int64_t Co) {
  constexpr int L = Vec<scalar_t>::n;
  for (int b = max_block<scalar_t>(); b >= L; b /= 2)
    if (Co % b == 0) return b;
  return Co < L ? 0 : -1;
}

// with_block calls f(std::integral_constant<int, b>) for a block b returned by block_of (the loops
// take the block as a template argument: its vectors stay in registers).
template <typename scalar_t, typename F>
void with_block(int b, const F &f) {
  constexpr int L = Vec<scalar_t>::n;
  switch (b) {
    case 8 * L: f(std::integral_constant<int, 8 * L>{}); break;
    case 4 * L: f(std::integral_constant<int, 4 * L>{}); break;
    case 2 * L: f(std::integral_constant<int, 2 * L>{}); break;
    case L: f(std::integral_constant<int, L>{}); break;
    case 0: f(std::integral_constant<int, 0>{}); break;
    default: break;
  }
}

template <typename scalar_t>
void forward(const SpikeGeom &g, const scalar_t *wt, const int16_t *idx, const int32_t *cnt, scalar_t *y, int64_t p0,
             int64_t p1) {
  with_block<scalar_t>(block_of<scalar_t>(g.Co), [&](auto cb) {
    forward_pixels<scalar_t, decltype(cb)::value>(g, wt, idx, cnt, y, p0, p1);
  });
}

template <typename scalar_t>
void weight_grad(const SpikeGeom &g, const scalar_t *gy, const int16_t *idx, const int32_t *cnt, scalar_t *dw,
                 int64_t p0, int64_t p1) {
  with_block<scalar_t>(block_of<scalar_t>(g.Co), [&](auto cb) {
    weight_grad_pixels<scalar_t, decltype(cb)::value>(g, gy, idx, cnt, dw, p0, p1);
  });
}

// The transposed convolution with K 3, stride 2, padding 1 and output padding 1 (every decoder
// layer of ESVAE), by 2x2 output blocks: block (n, i, j) is the outputs (2i + r, 2j + c), r, c in
// {0, 1}, and takes input pixel (i, j) through the taps (1,1), (1,2), (2,1), (2,2) (one tap each
// output), (i, j+1) through (1,0), (2,0), (i+1, j) through (0,1), (0,2), and (i+1, j+1) through
// (0,0) (o = 2 i - 1 + k). One walk over a pixel's active channels feeds all its taps: four walks
// a block instead of nine, four independent sums. blk: CB channels of a block at a time.
template <typename scalar_t, int CB>
struct Up2 {
  typedef typename Vec<scalar_t>::type vec;
  static constexpr int NV = CB / Vec<scalar_t>::n;

  static void forward(const SpikeGeom &g, const scalar_t *wt, const int16_t *idx, const int32_t *cnt, scalar_t *y,
                      int64_t b0, int64_t b1) {
    const int64_t Co = g.Co, Ci = g.Ci, H = g.H, W = g.W, Wo = g.Wo, TS = Ci * Co;
    int64_t j = b0 % W, i = (b0 / W) % H, n = b0 / (W * H);
    for (int64_t b = b0; b < b1; ++b, j = j + 1 == W ? (i = i + 1 == H ? (++n, 0) : i + 1, 0) : j + 1) {
      const bool right = j + 1 < W, down = i + 1 < H;
      scalar_t *y00 = y + ((n * g.Ho + 2 * i) * Wo + 2 * j) * Co;
      for (int64_t c0 = 0; c0 < Co; c0 += CB) {
        vec a00[NV], a01[NV], a10[NV], a11[NV];
        for (int v = 0; v < NV; ++v) a00[v] = a01[v] = a10[v] = a11[v] = vec{};
        const scalar_t *w = wt + c0;
        {
          const int16_t *ix = idx + b * Ci;
          for (int32_t e = 0, m = cnt[b]; e < m; ++e) {
            const scalar_t *r = w + static_cast<int64_t>(ix[e]) * Co;
            const vec *t4 = reinterpret_cast<const vec *>(r + 4 * TS), *t5 = reinterpret_cast<const vec *>(r + 5 * TS),
                      *t7 = reinterpret_cast<const vec *>(r + 7 * TS), *t8 = reinterpret_cast<const vec *>(r + 8 * TS);
            for (int v = 0; v < NV; ++v) {
              a00[v] += t4[v];
              a01[v] += t5[v];
              a10[v] += t7[v];
              a11[v] += t8[v];
            }
          }
        }
        if (right) {
          const int16_t *ix = idx + (b + 1) * Ci;
          for (int32_t e = 0, m = cnt[b + 1]; e < m; ++e) {
            const scalar_t *r = w + static_cast<int64_t>(ix[e]) * Co;
            const vec *t3 = reinterpret_cast<const vec *>(r + 3 * TS), *t6 = reinterpret_cast<const vec *>(r + 6 * TS);
            for (int v = 0; v < NV; ++v) {
              a01[v] += t3[v];
              a11[v] += t6[v];
            }
          }
        }
        if (down) {
          const int16_t *ix = idx + (b + W) * Ci;
          for (int32_t e = 0, m = cnt[b + W]; e < m; ++e) {
            const scalar_t *r = w + static_cast<int64_t>(ix[e]) * Co;
            const vec *t1 = reinterpret_cast<const vec *>(r + 1 * TS), *t2 = reinterpret_cast<const vec *>(r + 2 * TS);
            for (int v = 0; v < NV; ++v) {
              a10[v] += t1[v];
              a11[v] += t2[v];
            }
          }
        }
        if (right && down) {
          const int16_t *ix = idx + (b + W + 1) * Ci;
          for (int32_t e = 0, m = cnt[b + W + 1]; e < m; ++e) {
            const vec *t0 = reinterpret_cast<const vec *>(w + static_cast<int64_t>(ix[e]) * Co);
            for (int v = 0; v < NV; ++v) a11[v] += t0[v];
          }
        }
        vec *o00 = reinterpret_cast<vec *>(y00 + c0), *o01 = reinterpret_cast<vec *>(y00 + Co + c0),
            *o10 = reinterpret_cast<vec *>(y00 + Wo * Co + c0), *o11 = reinterpret_cast<vec *>(y00 + (Wo + 1) * Co + c0);
        for (int v = 0; v < NV; ++v) {
          o00[v] = a00[v];
          o01[v] = a01[v];
          o10[v] = a10[v];
          o11[v] = a11[v];
        }
      }
    }
  }

  static void weight_grad(const SpikeGeom &g, const scalar_t *gy, const int16_t *idx, const int32_t *cnt,
                          scalar_t *dw, int64_t b0, int64_t b1) {
    const int64_t Co = g.Co, Ci = g.Ci, H = g.H, W = g.W, Wo = g.Wo, TS = Ci * Co;
    int64_t j = b0 % W, i = (b0 / W) % H, n = b0 / (W * H);
    for (int64_t b = b0; b < b1; ++b, j = j + 1 == W ? (i = i + 1 == H ? (++n, 0) : i + 1, 0) : j + 1) {
      const bool right = j + 1 < W, down = i + 1 < H;
      const scalar_t *g00 = gy + ((n * g.Ho + 2 * i) * Wo + 2 * j) * Co;
      for (int64_t c0 = 0; c0 < Co; c0 += CB) {
        vec v00[NV], v01[NV], v10[NV], v11[NV];
        for (int v = 0; v < NV; ++v) {
          v00[v] = reinterpret_cast<const vec *>(g00 + c0)[v];
          v01[v] = reinterpret_cast<const vec *>(g00 + Co + c0)[v];
          v10[v] = reinterpret_cast<const vec *>(g00 + Wo * Co + c0)[v];
          v11[v] = reinterpret_cast<const vec *>(g00 + (Wo + 1) * Co + c0)[v];
        }
        scalar_t *d = dw + c0;
        {
          const int16_t *ix = idx + b * Ci;
          for (int32_t e = 0, m = cnt[b]; e < m; ++e) {
            scalar_t *r = d + static_cast<int64_t>(ix[e]) * Co;
            vec *t4 = reinterpret_cast<vec *>(r + 4 * TS), *t5 = reinterpret_cast<vec *>(r + 5 * TS),
                *t7 = reinterpret_cast<vec *>(r + 7 * TS), *t8 = reinterpret_cast<vec *>(r + 8 * TS);
            for (int v = 0; v < NV; ++v) {
              t4[v] += v00[v];
              t5[v] += v01[v];
              t7[v] += v10[v];
              t8[v] += v11[v];
            }
          }
        }
        if (right) {
          const int16_t *ix = idx + (b + 1) * Ci;
          for (int32_t e = 0, m = cnt[b + 1]; e < m; ++e) {
            scalar_t *r = d + static_cast<int64_t>(ix[e]) * Co;
            vec *t3 = reinterpret_cast<vec *>(r + 3 * TS), *t6 = reinterpret_cast<vec *>(r + 6 * TS);
            for (int v = 0; v < NV; ++v) {
              t3[v] += v01[v];
              t6[v] += v11[v];
            }
          }
        }
        if (down) {
          const int16_t *ix = idx + (b + W) * Ci;
          for (int32_t e = 0, m = cnt[b + W]; e < m; ++e) {
            scalar_t *r = d + static_cast<int64_t>(ix[e]) * Co;
            vec *t1 = reinterpret_cast<vec *>(r + 1 * TS), *t2 = reinterpret_cast<vec *>(r + 2 * TS);
            for (int v = 0; v < NV; ++v) {
              t1[v] += v10[v];
              t2[v] += v11[v];
            }
          }
        }
        if (right && down) {
          const int16_t *ix = idx + (b + W + 1) * Ci;
          for (int32_t e = 0, m = cnt[b + W + 1]; e < m; ++e) {
            vec *t0 = reinterpret_cast<vec *>(d + static_cast<int64_t>(ix[e]) * Co);
            for (int v = 0; v < NV; ++v) t0[v] += v11[v];
          }
        }
      }
    }
  }
};

// up2_block: the channel block of the 2x2 path (at most 4 vectors: four sums of it in registers),
// or 0 where Co is below one vector or no multiple of it (the general loops then).
template <typename scalar_t>
int up2_block(int64_t Co) {
  const int b = block_of<scalar_t>(Co);
  return b <= 0 ? 0 : b > 4 * Vec<scalar_t>::n ? 4 * Vec<scalar_t>::n : b;
}

template <typename scalar_t>
void forward_up2(const SpikeGeom &g, const scalar_t *wt, const int16_t *idx, const int32_t *cnt, scalar_t *y,
                 int64_t b0, int64_t b1) {
  with_block<scalar_t>(up2_block<scalar_t>(g.Co), [&](auto cb) {
    constexpr int B = decltype(cb)::value;
    if constexpr (B > 0 && B <= 4 * Vec<scalar_t>::n) Up2<scalar_t, B>::forward(g, wt, idx, cnt, y, b0, b1);
  });
}

// Up2Gather: the weight gradient of the Up2 transposed convolution by gathering, for the input
// pixels [b0, b1) (a tile: their output gradient stays in cache): for each input channel the list
// of the tile's pixels where it fired (a counting sort of the index), then for each channel the 9
// taps' sums of output-gradient rows over that list, in registers (loads only), added to dw once a
// tile. Measured faster than Up2::weight_grad's four read-modify-writes an entry for channel
// blocks of up to two vectors (AVX-512); tap t = kh*3 + kw reads the output (2i - 1 + kh, 2j - 1 + kw).
template <typename scalar_t, int CB>
struct Up2Gather {
  typedef typename Vec<scalar_t>::type vec;
  static constexpr int NV = CB / Vec<scalar_t>::n;
  // start: 2 * Ci + 2 int32 of scratch, list: (b1 - b0) * Ci int32, zero: CB zeros (the gradient row
  // of the outputs above the first row or left of the first column: none)
  static void run(const SpikeGeom &g, const scalar_t *gy, const int16_t *idx, const int32_t *cnt, scalar_t *dw,
                  int64_t b0, int64_t b1, int32_t *start, int32_t *list, const scalar_t *zero) {
    const int64_t Co = g.Co, Ci = g.Ci, H = g.H, W = g.W, Wo = g.Wo, TS = Ci * Co;
    // counting sort of the tile's entries by channel
    for (int64_t c = 0; c <= Ci; ++c) start[c] = 0;
    for (int64_t b = b0; b < b1; ++b) {
      const int16_t *ix = idx + b * Ci;
      for (int32_t e = 0, m = cnt[b]; e < m; ++e) ++start[ix[e] + 1];
    }
    for (int64_t c = 0; c < Ci; ++c) start[c + 1] += start[c];
    {
      // fill: positions advance in a copy of start
      int32_t *pos = start + Ci + 1;
      for (int64_t c = 0; c < Ci; ++c) pos[c] = start[c];
      int64_t j = b0 % W, i = (b0 / W) % H, n = b0 / (W * H);
      for (int64_t b = b0; b < b1; ++b, j = j + 1 == W ? (i = i + 1 == H ? (++n, 0) : i + 1, 0) : j + 1) {
        const int16_t *ix = idx + b * Ci;
        // code: the block's top-left output pixel, times 4, + 2 if a row above exists + 1 if a column left
        const int32_t code = static_cast<int32_t>(((n * g.Ho + 2 * i) * Wo + 2 * j) * 4 + (i > 0) * 2 + (j > 0));
        for (int32_t e = 0, m = cnt[b]; e < m; ++e) list[pos[ix[e]]++] = code;
      }
    }
    // output offsets (in pixels) of the 9 taps from a block's top-left output (2i, 2j): (kh-1, kw-1)
    int64_t off[9];
    for (int kh = 0; kh < 3; ++kh)
      for (int kw = 0; kw < 3; ++kw) off[kh * 3 + kw] = (kh - 1) * Wo + (kw - 1);
    for (int64_t ci = 0; ci < Ci; ++ci) {
      const int32_t *l = list + start[ci], m = start[ci + 1] - start[ci];
      if (m == 0) continue;
      for (int64_t c0 = 0; c0 < Co; c0 += CB) {
        vec acc[9][NV];
        for (int t = 0; t < 9; ++t)
          for (int v = 0; v < NV; ++v) acc[t][v] = vec{};
        for (int32_t e = 0; e < m; ++e) {
          const int32_t code = l[e];
          const scalar_t *base = gy + static_cast<int64_t>(code >> 2) * Co + c0;
          const bool top = code & 2, left = code & 1;
          for (int t = 0; t < 9; ++t) {
            const bool ok = (t >= 3 || top) && (t % 3 != 0 || left);
            const vec *s = reinterpret_cast<const vec *>(ok ? base + off[t] * Co : zero);
            for (int v = 0; v < NV; ++v) acc[t][v] += s[v];
          }
        }
        for (int t = 0; t < 9; ++t) {
          vec *d = reinterpret_cast<vec *>(dw + t * TS + ci * Co + c0);
          for (int v = 0; v < NV; ++v) d[v] += acc[t][v];
        }
      }
    }
  }
};

// kGatherTile: input pixels a tile of Up2Gather (1024: 512 KiB of output gradient at 32 floats).
constexpr int64_t kGatherTile = 1024;

template <typename scalar_t>
void weight_grad_up2(const SpikeGeom &g, const scalar_t *gy, const int16_t *idx, const int32_t *cnt, scalar_t *dw,
                     int64_t b0, int64_t b1) {
  constexpr int L = Vec<scalar_t>::n;
#ifdef ESV_SPIKECONV_AVX512
  // 9 taps x 2 vectors of sums fit the 32 registers of AVX-512 (not AVX2's 16)
  // (the lists hold output pixel numbers times 4 in int32)
  if ((up2_block<scalar_t>(g.Co) == 2 * L || up2_block<scalar_t>(g.Co) == L) && g.N * g.Ho * g.Wo < (int64_t{1} << 29)) {
    std::vector<int32_t> start(2 * g.Ci + 2), list(kGatherTile * g.Ci);
    std::vector<scalar_t> zero(2 * L + L, scalar_t(0));
    // 64-byte aligned zero row inside the buffer
    scalar_t *z = zero.data();
    while (reinterpret_cast<uintptr_t>(z) % 64 != 0) ++z;
    for (int64_t t0 = b0; t0 < b1; t0 += kGatherTile) {
      const int64_t t1 = std::min(b1, t0 + kGatherTile);
      if (up2_block<scalar_t>(g.Co) == 2 * L)
        Up2Gather<scalar_t, 2 * L>::run(g, gy, idx, cnt, dw, t0, t1, start.data(), list.data(), z);
      else
        Up2Gather<scalar_t, L>::run(g, gy, idx, cnt, dw, t0, t1, start.data(), list.data(), z);
    }
    return;
  }
#endif
  with_block<scalar_t>(up2_block<scalar_t>(g.Co), [&](auto cb) {
    constexpr int B = decltype(cb)::value;
    if constexpr (B > 0 && B <= 4 * L) Up2<scalar_t, B>::weight_grad(g, gy, idx, cnt, dw, b0, b1);
  });
}
