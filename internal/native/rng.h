// C boundary of the random generator state (rng.cpp). NULL on success, otherwise a malloc'd error.
#ifndef ESVAE_RNG_H
#define ESVAE_RNG_H

#ifdef __cplusplus
extern "C" {
#endif

// State of libtorch's default CPU generator as a new uint8 CPU tensor, and its restore.
char *esv_rng_get_state(void **out);
char *esv_rng_set_state(void *state);
// The same for the default generator of CUDA device `device`; an error without CUDA.
char *esv_cuda_rng_get_state(int device, void **out);
char *esv_cuda_rng_set_state(int device, void *state);

#ifdef __cplusplus
}
#endif
#endif
