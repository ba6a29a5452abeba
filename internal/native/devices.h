// Devices and the libtorch the process loaded: the CUDA part of libtorch loaded at run time, the
// NVIDIA driver queried through libcuda (dlopen), the build configuration. No CUDA headers needed.
#ifndef ESVAE_DEVICES_H
#define ESVAE_DEVICES_H
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

// esv_load_cuda loads libtorch_cuda.so from the folder that the loaded libtorch_cpu.so comes from,
// when it is there and not loaded yet (so a binary linked against a CPU libtorch uses the GPU of a
// CUDA build of the same version). Returns NULL, or a message (owned by the caller) saying why the
// CUDA part exists but could not be loaded.
char *esv_load_cuda(void);
// esv_cuda_loaded reports whether libtorch_cuda.so is in the process.
int esv_cuda_loaded(void);
// esv_libtorch_path is the file of the loaded libtorch_cpu.so (caller frees), or NULL.
char *esv_libtorch_path(void);
// esv_show_config is at::show_config() (caller frees).
char *esv_show_config(void);
// esv_cuda_driver_version: the NVIDIA driver's CUDA version as 1000*major + 10*minor, 0 without a driver.
int esv_cuda_driver_version(void);
// esv_cuda_device_props fills name, total memory and compute capability of CUDA device i through the
// driver API; returns NULL or an error message (caller frees).
char *esv_cuda_device_props(int i, char *name, int name_len, size_t *total_mem, int *major, int *minor);

#ifdef __cplusplus
}
#endif
#endif
