// Package config holds the configuration of a training run (Config: data, model, optimizer,
// evaluation, output, device; the keys of configs/*.yaml), its defaults (the paper's settings) and
// its validation, and opens the configured data set (DataConfig.Open). It is plain data, shared by
// the trainer, the checkpoint format (which records the run's configuration) and the commands.
//
// Imports: vae (the model's configuration), data and nn; it must not import checkpoint, eval, train
// or anything above.
package config
