// Package train trains the models (ESVAE and the baselines): the loop over batches, AdamW with
// saveable state, fp16 loss scaling, evaluation each epoch, checkpoints (written in package
// checkpoint's format) with optimizer state, step and RNG for an exact resume, resume and --init,
// the run folder with its image grids, metrics, plots and TensorBoard events, and data-parallel
// training (dist.go).
//
// One goroutine owns every tensor (Run locks it to its OS thread: libtorch's grad mode is per
// thread); data decoding happens in the data package's worker goroutines into plain []float32.
//
// Tensor lifetimes: whoever creates a tensor owns it and drops it on every path (defer nn.Drop);
// returning a tensor hands it on; nothing made in a training step outlives it except that step's
// (5,) metrics tensor, which waits on the device until the next flush (once per log interval, at
// every epoch end and before every checkpoint) and is then read in one transfer and dropped. The
// model's and the optimizer's tensors live as long as the run. gotch's finalizers are a safety net
// for error paths, not the way memory is returned: TestNoLeakOverLongRun counts live libtorch CPU
// storages over 2,000 steps, and the training tests also run with the garbage collector forced.
//
// Imports: checkpoint, config, eval (the per-epoch test MSE and FAD), vae, spiking, nn, data, vis
// and internal/*; it must not import bench, compare, selfcheck, serve or the commands.
package train
