// C boundary of the checkpoint archive (archive.cpp). Same conventions as native.h: NULL on
// success, otherwise a malloc'd error message the caller frees.
#ifndef ESVAE_ARCHIVE_H
#define ESVAE_ARCHIVE_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// esv_archive_serialize serializes n named tensors (CPU copies) plus "__checksum__" with
// torch::serialize::OutputArchive into memory: on success *buf_out is a malloc'd block of *len_out
// bytes (the caller frees it), the exact bytes of the archive file.
char *esv_archive_serialize(const char **names, void **tensors, int n, void **buf_out,
                            int64_t *len_out);

// esv_archive_load reads every tensor of the archive at path onto the CPU and verifies
// "__checksum__". On success *names_out and *tensors_out are malloc'd arrays of *n_out entries
// (each name malloc'd, each tensor a new handle), the checksum entry left out. *damaged is set to
// 1 when the file reads but the checksum is missing or differs, 0 otherwise.
char *esv_archive_load(const char *path, int *n_out, char ***names_out, void ***tensors_out,
                       int *damaged);

#ifdef __cplusplus
}
#endif
#endif
