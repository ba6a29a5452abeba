// Package checkpoint owns esvae's checkpoint format: a libtorch archive (written atomically, with a
// checksum) of the model's parameters and buffers, the optimizer's state, the RNG states and a
// JSON record (Meta: where training continues, the run's configuration, versions, the loss
// scaler). Save and Load write and read it; NewModel builds the model a checkpoint describes, so
// that sample, reconstruct, eval and serve need not import the trainer.
//
// Imports: config, vae, nn and internal/native; it must not import train (the trainer hands its
// optimizer over as the Optimizer interface), eval or anything above.
package checkpoint
