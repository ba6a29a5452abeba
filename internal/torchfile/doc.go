// Package torchfile checks the zip archives of PyTorch (torch.save files) and libtorch (serialize
// archives, TorchScript modules) in Go, before gotch's unpickler or libtorch's C++ reader sees them:
// the zip structure, the record names, the pickles, and the tensors' claims against the bytes that the
// records hold. The C++ reader trusts all of these: a tensor larger than its record reads past the end
// of a buffer, and a malformed pickle can leave its stack empty. A file that passes is well formed; it
// may still fail to load for other reasons, which the readers report as errors.
//
// Imports: none of the project's packages (standard library only).
package torchfile
