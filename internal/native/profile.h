// libtorch's own operator profiler around a stretch of work, written as a Chrome trace.
#ifndef ESVAE_PROFILE_H
#define ESVAE_PROFILE_H

#ifdef __cplusplus
extern "C" {
#endif

// esv_profile_begin starts recording every libtorch operator this thread runs (forward and, on
// the CPU, the backward the autograd engine runs on it); esv_profile_end stops and writes the
// trace (chrome://tracing, Perfetto) to the path given to begin. One recording at a time.
char *esv_profile_begin(const char *path);
char *esv_profile_end(void);

#ifdef __cplusplus
}
#endif
#endif
