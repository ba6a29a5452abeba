// Package data owns the ESVAE data sets: it reads MNIST, Fashion-MNIST, CIFAR-10 (binary version) and CelebA
// from their usual distribution files, decodes and augments images into plain []float32 in (C, H, W) order
// scaled to [-1, 1], and batches them with worker goroutines in a seeded, resumable order (see Loader).
//
// The package is pure Go: it knows nothing about tensors. The trainer copies each Batch into a tensor.
//
// Transforms follow the reference implementation (torchvision on PIL images, spec section "Data"):
//   - MNIST, Fashion-MNIST: 28x28 grey resized to 32x32 (bilinear), no augmentation.
//   - CIFAR-10: 32x32 RGB; the training split gets a random horizontal flip.
//   - CelebA: random horizontal flip (training split only), center crop 148x148, resize to 64x64 (bilinear,
//     antialiased like PIL when shrinking).
//
// Pixels become x = 2*(p/255) - 1 (float32). Resizing reimplements Pillow's bilinear resample for 8-bit
// images (fixed-point weights, two passes each rounded to 8 bits), so MNIST and Fashion-MNIST inputs equal
// the reference's bit for bit (checked against Pillow 13.0.0). CelebA can still differ by a few grey levels
// because Go's JPEG decoder (no "fancy" chroma upsampling, another IDCT) is not libjpeg.
//
// Imports: none of the project's packages (it sits at the bottom, beside vis); it must not import
// nn, vae, train or eval.
package data
